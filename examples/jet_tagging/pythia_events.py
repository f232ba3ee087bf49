"""What simulate.py asks of Pythia 8 and reads from its events: the settings every event shares, each
class's processes, the partons or bosons a jet of each class is matched to, and an event's read-out (its
visible final-state four-momenta, the rapidity and azimuth of its match targets).

Needs numpy only: the Pythia object comes from simulate.make_pythia, which checks for the pythia8mc
wheel. simulate.py's docstring ("How a jet is made") gives the physics.
"""

from __future__ import annotations

import numpy as np

_COMMON = ("Beams:eCM = 13000.", "PhaseSpace:pTHatMin = 995.", "PhaseSpace:pTHatMax = 1005.",
           "Next:numberCount = 0", "Print:quiet = on")
_HADRONIC_W = ("24:onMode = off", "24:onIfAny = 1 2 3 4 5")
PROCESSES = {
    "g": ("HardQCD:gg2gg = on", "HardQCD:qqbar2gg = on"),
    "q": ("HardQCD:qq2qq = on", "HardQCD:qqbar2qqbarNew = on"),
    "W": ("WeakDoubleBoson:ffbar2WW = on", *_HADRONIC_W),
    "Z": ("WeakDoubleBoson:ffbar2gmZgmZ = on", "WeakZ0:gmZmode = 2", "23:onMode = off", "23:onIfAny = 1 2 3 4 5"),
    "t": ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", *_HADRONIC_W),
}
# |PDG id| a jet of the class is matched to; g and q in the hard process, W, Z and t in the event record
_MATCH_IDS = {"g": (21,), "q": (1, 2, 3, 4, 5, 6), "W": (24,), "Z": (23,), "t": (6,)}


def _rap_phi(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rapidity and azimuth of four-momenta ``p`` (..., 4) = (px, py, pz, E); NaN rapidity along the beam (a
    zero-pT jet of one photon, never selected)."""
    px, py, pz, e = p[..., 0], p[..., 1], p[..., 2], p[..., 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        return 0.5 * np.log((e + pz) / (e - pz)), np.arctan2(py, px)


def event_content(pythia, cls: str) -> tuple[np.ndarray, np.ndarray]:
    """The current event's visible final-state four-momenta (n, 4) in GeV and the (y, φ) of its match targets (k, 2)."""
    event, process = pythia.event, pythia.process
    parts = event.particles()  # copies: ids, status and momenta only (no links to the record)
    visible = np.array([(q.px(), q.py(), q.pz(), q.e()) for q in parts if q.isFinal() and q.isVisible()], dtype=float)
    ids = _MATCH_IDS[cls]
    hard = [(i, q) for i, q in enumerate(process.particles()) if q.idAbs() in ids]
    if cls in ("g", "q"):  # the outgoing partons of the hard process
        found = [q for _, q in hard if q.statusAbs() == 23]
    else:  # the event record starts with a copy of the process record: follow the resonance to its last copy
        found = [event[event[i].iBotCopyId()] for i, q in hard if q.statusAbs() == 22 and event[i].id() == q.id()]
    mom = np.array([(q.px(), q.py(), q.pz(), q.e()) for q in found], dtype=float).reshape(-1, 4)
    return visible.reshape(-1, 4), np.stack(_rap_phi(mom), axis=-1)
