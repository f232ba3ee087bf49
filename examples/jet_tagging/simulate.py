"""Realistic jets, offline: the hls4ml jet data set's 16 high-level features, simulated with Pythia 8 and FastJet.

The hls4ml LHC jet set (Duarte et al. 2018, arXiv:1804.06913, section 3; made as in Coleman et al. 2017,
arXiv:1709.08705) describes each jet by 16 substructure observables. This script makes jets of the same five
classes and the same 16 features from the ``pythia8mc`` and ``fastjet`` wheels of PyPI, so that benchmarks,
tests and the README's jet figures have physics-like jets without the network (``pip install -e ".[sim]"``).

How a jet is made
-----------------
* **Events** (Pythia 8, default Monash tune with MPI, showers and hadronization): pp at 13 TeV,
  ``PhaseSpace:pTHatMin/Max`` = 995/1005 GeV. g: ``HardQCD:gg2gg`` and ``HardQCD:qqbar2gg``; q: ``HardQCD:qq2qq``
  and ``HardQCD:qqbar2qqbarNew``; W: ``WeakDoubleBoson:ffbar2WW``; Z: ``WeakDoubleBoson:ffbar2gmZgmZ`` with
  ``WeakZ0:gmZmode = 2`` (Z only); t: ``Top:gg2ttbar`` and ``Top:qqbar2ttbar``. W and Z decay to quarks only
  (``onMode = off``, ``onIfAny = 1 2 3 4 5``), so the top decays t → b q q̄'.
* **Jets** (FastJet): anti-kT, R = 0.8, on the visible final-state particles (``isFinal() and isVisible()``:
  no neutrinos). The jet kept is the hardest one with |η| < 2.5; the event is kept when its pT is 800–1200 GeV
  and it lies within ΔR < 0.8 (rapidity–azimuth) of one of the event's partons or bosons of its class: for g and
  q an outgoing parton of the hard process that is a gluon (g) or a quark (q), for W, Z and t the last copy of
  the W, Z or top in the event record (after its recoil against the shower, before its decay).
* **Grooming**: the modified mass-drop tagger, as fastjet contrib's ``SoftDrop`` with β = 0 and z_cut = 0.1
  (scalar-z symmetry, the harder branch followed, no mass-drop condition: the same as contrib's
  ``ModifiedMassDropTagger(0.1)``), run on the jet reclustered with Cambridge/Aachen.
* **Features**, on the groomed jet for the ``_mmdt`` ones, by fastjet contrib's EnergyCorrelator classes (the
  wheel exposes them through its awkward interface; nothing is recomputed here) with the default
  ``pt_R`` measure: energies are transverse momenta p_T,i, angles ΔR_ij in rapidity–azimuth, and the normalized
  generalized ECFs are  e_2^(β) = Σ_{i<j} z_i z_j ΔR_ij^β  and  e_3^(β) = Σ_{i<j<k} z_i z_j z_k (ΔR_ij ΔR_ik ΔR_jk)^β
  with z_i = p_T,i / Σ_k p_T,k (Larkoski, Salam, Thaler 2013, arXiv:1305.0007), and  ₁e_3^(β), ₂e_3^(β) the
  same sums with only the smallest, or the product of the two smallest, of the three ΔR^β (Moult, Necib,
  Thaler 2016, arXiv:1609.07483).

  ===============================  =====================================================  ====================
  feature                          definition                                             contrib class
  ===============================  =====================================================  ====================
  zlogz                            Σ_i z_i ln z_i, z_i = p_T,i / p_T,jet, ungroomed jet    (numpy)
  c1_b0/b1/b2_mmdt                 C_1^(β) = e_2^(β), β = 0, 1, 2                          EnergyCorrelatorC1
  c2_b1/b2_mmdt                    C_2^(β) = e_3^(β) / (e_2^(β))²                          EnergyCorrelatorC2
  d2_b1/b2_mmdt                    D_2^(β) = e_3^(β) / (e_2^(β))³                          EnergyCorrelatorD2
  d2_a1_b1/b2_mmdt                 D_2^(α,β) = e_3^(α) / (e_2^(β))^(3α/β), α = 1           ...GeneralizedD2
  m2_b1/b2_mmdt                    M_2^(β) = ₁e_3^(β) / ₁e_2^(β)                           EnergyCorrelatorM2
  n2_b1/b2_mmdt                    N_2^(β) = ₂e_3^(β) / (₁e_2^(β))²                        EnergyCorrelatorN2
  mass_mmdt                        invariant mass of the groomed jet, GeV                  SoftDrop
  multiplicity                     number of constituents of the ungroomed jet             (numpy)
  ===============================  =====================================================  ====================

  (D_2^(α,β) is from Larkoski, Moult, Neill 2014, arXiv:1409.6298; with α = β = 1 it is D_2^(1), so
  d2_a1_b1_mmdt equals d2_b1_mmdt by definition, as the names in the hls4ml set imply.) A jet whose groomed jet is a single
  particle has no C_2/D_2/N_2 (0/0) and is dropped: 1 of 837 jets in a sample of 300 q, g and W events each.

The data set
------------
Jets are generated in chunks of ``--chunk`` jets; chunk k of class c runs its own Pythia with the seed
``SeedSequence([seed, c, k])`` gives, so a chunk is the same whichever process makes it and in whatever order,
and each chunk is cached (``--cache``, one .npz per chunk named by its class, seed, index, size and a hash of
the settings): re-runs and larger sets reuse what is there. The first ``--jets`` jets of each class are split
60/20/20 into train/validation/test by scikit-learn's ``train_test_split``, stratified, with ``random_state =
seed``. As the seed's case study does with the OpenML set, the features are standardized with scikit-learn's
``StandardScaler`` fitted on the train split; its ``mean_`` and ``scale_`` are stored as ``scaler_mean`` and
``scaler_scale`` (raw features = X * scaler_scale + scaler_mean). The .npz that ``qconvert --data`` reads holds
``X_train``, ``y_train``, ``X_val``, ``y_val``, ``X_test``, ``y_test`` (float32 features, integer labels 0–4 in the
order of ``class_names`` = g, q, W, Z, t), ``feature_names``, ``class_names``, the scaler, and ``meta`` (a JSON
string: settings, versions, events and seconds per class).

The committed set
-----------------
``jets_pythia.npz`` beside this file (1.1 MB): 4,000 jets per class, 20,000 in all (12,000 / 4,000 / 4,000),
seed 0, pythia8mc 8.317.2, fastjet 3.5.2.0, made by

    nice -n 10 python examples/jet_tagging/simulate.py -n 4000 -j 2      # 40 chunks of 500 jets

on 2 CPU cores shared with five other jobs (load 8–11): 3,041 s wall (51 min); per class, the seconds its
chunks took on their process and the events generated: g 1,673 s / 4,464, q 1,117 s / 4,253, W 935 s / 4,292,
Z 937 s / 4,145, t 1,300 s / 4,209 (0.30 s a jet on average). Before it, ``--timing 300`` on one process
(same machine, load about 8) measured per event: g 130 ms (0.87 jets an event, so 150 ms a jet), q 78 ms (0.94,
82 ms), W 57 ms (0.93, 61 ms), Z 50 ms (0.96, 52 ms), t 121 ms (0.96, 126 ms), plus about 2 s of Pythia
initialization per chunk (a profile of 100 t events: about 40 % Pythia, 20 % copying its particles out in
Python, 40 % FastJet's clustering, grooming and ECFs). Its estimate, 31 min on one process or 16 min on two
free cores, became 51 min on two processes under the machine's load.

Per class (raw features, all 20,000 jets): median mass_mmdt g 61, q 11, W 79 (mode 80–85), Z 90 (mode
90–95), t 170 GeV (mode 175–180); mean multiplicity g 97, q 60, W 53, Z 55, t 89; mean D_2^(1) g 1.52,
q 1.48, W 1.19, Z 1.22, t 1.31 and N_2^(1) g 0.33, q 0.31, W 0.25, Z 0.25, t 0.29. The seed's FP32 network
(16→64→32→32→5, Adam 1e-3, batch 1024, 20 epochs) reaches 63.9 % on the test split (mean of 3 seeds, ±0.2);
trained to convergence (up to 200 epochs, early stopping on the validation loss, patience 20) 68.6 % (±0.2);
the hls4ml OpenML set gives it about 76 %. Most confusions: q with g, W and Z; W with Z.

    python examples/jet_tagging/simulate.py --timing 300            # ms per event and per jet, per class
    python examples/jet_tagging/simulate.py -n 4000 -j 2 -o jets_pythia.npz
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np

try:
    import awkward as ak
    import fastjet
    import pythia8mc
except ImportError as _exc:  # the wheels are an optional extra
    _MISSING: ImportError | None = _exc
else:
    _MISSING = None

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the modules beside this one, also when a test loads this file by its path

from jet_dataset import CLASSES, FEATURES, build_dataset, sanity_table, write_npz  # noqa: E402
from pythia_events import _COMMON, _MATCH_IDS, PROCESSES, _rap_phi, event_content  # noqa: E402

# (feature, contrib function as the fastjet wheel names it, beta, alpha) for the energy-correlation features
_ECF_FEATURES = (("c1_b0_mmdt", "c1", 0.0, 0.0), ("c1_b1_mmdt", "c1", 1.0, 0.0), ("c1_b2_mmdt", "c1", 2.0, 0.0),
                 ("c2_b1_mmdt", "c2", 1.0, 0.0), ("c2_b2_mmdt", "c2", 2.0, 0.0),
                 ("d2_b1_mmdt", "d2", 1.0, 0.0), ("d2_b2_mmdt", "d2", 2.0, 0.0),
                 ("d2_a1_b1_mmdt", "generalizedd2", 1.0, 1.0), ("d2_a1_b2_mmdt", "generalizedd2", 2.0, 1.0),
                 ("m2_b1_mmdt", "m2", 1.0, 0.0), ("m2_b2_mmdt", "m2", 2.0, 0.0),
                 ("n2_b1_mmdt", "n2", 1.0, 0.0), ("n2_b2_mmdt", "n2", 2.0, 0.0))
JET_R, ETA_MAX, PT_MIN, PT_MAX, MATCH_R = 0.8, 2.5, 800.0, 1200.0, 0.8
ZCUT, SD_BETA = 0.1, 0.0
_RECLUSTER_R = 10.0  # C/A radius that merges a whole R = 0.8 jet into one: the full C/A tree of its constituents
_BATCH = 50  # events clustered together through fastjet's awkward interface
_SETTINGS_HASH = hashlib.sha256(json.dumps([_COMMON, PROCESSES, _MATCH_IDS, JET_R, ETA_MAX, PT_MIN, PT_MAX, MATCH_R,
                                            ZCUT, SD_BETA, FEATURES]).encode()).hexdigest()[:10]

class MissingDependency(RuntimeError):
    """pythia8mc, fastjet or awkward is not installed; :func:`main` reports it in one line, exit code 2."""


def require() -> None:
    """Raise :class:`MissingDependency` (one line) unless the simulation wheels are importable."""
    if _MISSING is not None:
        raise MissingDependency(f"simulate.py needs pythia8mc and fastjet ({_MISSING.name} is missing): "
                                'pip install -e ".[sim]"')


def chunk_seed(seed: int, cls: str, index: int) -> int:
    """Pythia's ``Random:seed`` (1 … 900,000,000) of chunk ``index`` of class ``cls`` for base ``seed``."""
    state = np.random.SeedSequence([seed, CLASSES.index(cls), index]).generate_state(1)[0]
    return int(state % 900_000_000) + 1


def make_pythia(cls: str, seed: int):
    """A Pythia initialized for class ``cls`` with ``Random:seed = seed``; raises RuntimeError if init fails."""
    require()
    pythia = pythia8mc.Pythia("", False)
    for line in (*_COMMON, *PROCESSES[cls], "Random:setSeed = on", f"Random:seed = {seed}"):
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia refused the setting {line!r}")
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialize for class {cls}")
    return pythia


def _delta_r(y1, phi1, y2, phi2) -> np.ndarray:
    dphi = np.mod(phi1 - phi2 + np.pi, 2 * np.pi) - np.pi
    return np.hypot(y1 - y2, dphi)


def _jagged(parts: list[np.ndarray]):
    counts = np.array([len(p) for p in parts], dtype=np.int64)
    flat = np.concatenate(parts) if parts else np.zeros((0, 4))
    return ak.unflatten(ak.zip({"px": flat[:, 0], "py": flat[:, 1], "pz": flat[:, 2], "E": flat[:, 3]}), counts)


def _flat_momenta(records) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) momenta and per-list counts of a jagged awkward array of px/py/pz/E records."""
    counts = ak.to_numpy(ak.num(records, axis=1))
    flat = ak.flatten(records, axis=1)
    return np.stack([ak.to_numpy(flat[f]) for f in ("px", "py", "pz", "E")], axis=-1).astype(float), counts


def _split(flat: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
    return np.split(flat, np.cumsum(counts)[:-1]) if len(counts) else []


def select_jets(events: list[np.ndarray], targets: list[np.ndarray]) -> list[np.ndarray | None]:
    """Per event, the constituents (n, 4) of its selected jet, or None.

    Anti-kT R = 0.8 on ``events`` (each (n, 4) px, py, pz, E in GeV); the hardest jet with |η| < 2.5 is kept
    when 800 ≤ pT ≤ 1200 GeV and ΔR(jet, target) < 0.8 for a row of ``targets`` ((k, 2) rapidity, φ).
    """
    require()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cs = fastjet.ClusterSequence(_jagged(events), fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R))
        jets, counts = _flat_momenta(cs.inclusive_jets())
        index = cs.constituent_index()
    pt = np.hypot(jets[:, 0], jets[:, 1])
    eta = np.arcsinh(jets[:, 2] / np.maximum(pt, 1e-12))
    y, phi = _rap_phi(jets)
    out: list[np.ndarray | None] = []
    start = 0
    for ev, (n, tgt) in enumerate(zip(counts, targets)):
        rows = np.arange(start, start + n)
        start += n
        rows = rows[np.abs(eta[rows]) < ETA_MAX]
        if not len(rows) or not len(tgt):
            out.append(None)
            continue
        j = rows[np.argmax(pt[rows])]
        if not PT_MIN <= pt[j] <= PT_MAX or _delta_r(y[j], phi[j], tgt[:, 0], tgt[:, 1]).min() >= MATCH_R:
            out.append(None)
            continue
        out.append(events[ev][ak.to_numpy(index[ev][j - (start - n)])])
    return out


def groom(jets: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """mMDT (SoftDrop β = 0, z_cut = 0.1) on each jet's constituents (n, 4): groomed masses (GeV) and constituents."""
    require()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cs = fastjet.ClusterSequence(_jagged(jets), fastjet.JetDefinition(fastjet.cambridge_algorithm, _RECLUSTER_R))
        sd = cs.exclusive_jets_softdrop_grooming(njets=1, beta=SD_BETA, symmetry_cut=ZCUT, R0=JET_R)
    flat, counts = _flat_momenta(sd.constituents)
    return ak.to_numpy(sd.msoftdrop).astype(float), _split(flat, counts)


def energy_correlators(jets: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The 13 ECF features of each jet (constituents (n, 4)), by fastjet contrib: {feature name: (n_jets,)}."""
    require()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cs = fastjet.ClusterSequence(_jagged(jets), fastjet.JetDefinition(fastjet.cambridge_algorithm, _RECLUSTER_R))
        return {name: ak.to_numpy(cs.exclusive_jets_energy_correlator(njets=1, func=func, beta=beta, alpha=alpha))
                .astype(float) for name, func, beta, alpha in _ECF_FEATURES}


def jet_features(jets: list[np.ndarray]) -> np.ndarray:
    """The 16 features (in :data:`FEATURES` order) of each jet given by its constituents (n, 4): (n_jets, 16)."""
    if not jets:
        return np.zeros((0, len(FEATURES)))
    mass, groomed = groom(jets)
    values = energy_correlators(groomed)
    values["mass_mmdt"] = mass
    values["multiplicity"] = np.array([len(c) for c in jets], dtype=float)
    zlogz = []
    for c in jets:
        z = np.hypot(c[:, 0], c[:, 1]) / np.hypot(c[:, 0].sum(), c[:, 1].sum())
        zlogz.append(float(np.sum(z * np.log(z))))
    values["zlogz"] = np.array(zlogz)
    return np.stack([values[f] for f in FEATURES], axis=-1)


def generate(cls: str, seed: int, n_jets: int, max_events: int, strict: bool = True, keep_jets: bool = False) -> dict:
    """Up to ``n_jets`` jets of class ``cls`` from at most ``max_events`` events with Pythia seed ``seed``.

    Returns {"features": (n, 16) float64, "events": events generated, "dropped": jets dropped because a feature
    is not finite (a groomed jet of one particle), "seconds": wall time}, and with ``keep_jets`` "jets": the
    constituents (m, 4) of each jet.
    With ``strict``, fewer than ``n_jets`` jets raises RuntimeError.
    """
    start = time.perf_counter()
    pythia = make_pythia(cls, seed)
    rows: list[np.ndarray] = []
    kept: list[np.ndarray] = []
    n_found, n_events, n_dropped = 0, 0, 0
    while n_found < n_jets and n_events < max_events:
        events, targets = [], []
        need = n_jets - n_found  # about one jet per event: do not run far past the last jet needed
        for _ in range(min(_BATCH, max_events - n_events, need + need // 8 + 1)):
            n_events += 1
            if pythia.next():
                visible, tgt = event_content(pythia, cls)
                events.append(visible)
                targets.append(tgt)
        jets = [j for j in select_jets(events, targets) if j is not None]
        if jets:
            feats = jet_features(jets)
            good = np.isfinite(feats).all(axis=1)
            rows.append(feats[good])
            kept.extend(j for j, g in zip(jets, good) if g)
            n_found += int(good.sum())
            n_dropped += int((~good).sum())
    features = np.concatenate(rows)[:n_jets] if rows else np.zeros((0, len(FEATURES)))
    if strict and len(features) < n_jets:
        raise RuntimeError(f"class {cls}: only {len(features)} of {n_jets} jets in {max_events} events")
    out = {"features": features, "events": n_events, "dropped": n_dropped, "seconds": time.perf_counter() - start}
    if keep_jets:
        out["jets"] = kept[:n_jets]
    return out


def _chunk_path(cache: Path, cls: str, seed: int, index: int, size: int) -> Path:
    return cache / f"{cls}_seed{seed}_chunk{index:04d}_n{size}_{_SETTINGS_HASH}.npz"


def _make_chunk(cache: str, cls: str, seed: int, index: int, size: int) -> tuple[str, int, float]:
    """Generate chunk ``index`` of ``cls`` into the cache (atomically); returns (path, events, seconds)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = _chunk_path(Path(cache), cls, seed, index, size)
    result = generate(cls, chunk_seed(seed, cls, index), size, max_events=50 * size)
    fd, tmp = tempfile.mkstemp(dir=cache, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        np.savez(fh, features=result["features"], events=result["events"], seconds=result["seconds"])
    os.replace(tmp, out)
    return str(out), result["events"], result["seconds"]


def simulate(n_per_class: int, *, seed: int = 0, jobs: int = 1, chunk: int = 500, cache: Path,
             classes: tuple[str, ...] = CLASSES, log=print) -> dict[str, dict]:
    """``n_per_class`` jets of each of ``classes``, made chunk by chunk (cached) on ``jobs`` processes.

    Returns {class: {"features": (n_per_class, 16), "events": events generated, "seconds": CPU-process seconds}}
    counting the chunks used, whether made now or earlier.
    """
    require()
    cache.mkdir(parents=True, exist_ok=True)
    n_chunks = -(-n_per_class // chunk)
    todo = [(cls, k) for k in range(n_chunks) for cls in classes
            if not _chunk_path(cache, cls, seed, k, chunk).exists()]
    if todo:
        log(f"generating {len(todo)} chunk(s) of {chunk} jets on {jobs} process(es); cache {cache}")
        if jobs <= 1:
            for cls, k in todo:
                _, events, seconds = _make_chunk(str(cache), cls, seed, k, chunk)
                log(f"  {cls} chunk {k}: {events} events, {seconds:.0f} s")
        else:
            with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
                futures = {pool.submit(_make_chunk, str(cache), cls, seed, k, chunk): (cls, k) for cls, k in todo}
                for future in as_completed(futures):
                    _, events, seconds = future.result()
                    cls, k = futures[future]
                    log(f"  {cls} chunk {k}: {events} events, {seconds:.0f} s")
    out = {}
    for cls in classes:
        parts = [np.load(_chunk_path(cache, cls, seed, k, chunk)) for k in range(n_chunks)]
        out[cls] = {"features": np.concatenate([p["features"] for p in parts])[:n_per_class],
                    "events": int(sum(int(p["events"]) for p in parts)),
                    "seconds": float(sum(float(p["seconds"]) for p in parts))}
    return out


def timing(n_events: int, seed: int, n_per_class: int, jobs: int, log=print) -> None:
    """Seconds per event and jets per event of each class on one process, and the estimated total."""
    total = 0.0
    for cls in CLASSES:
        start = time.perf_counter()
        make_pythia(cls, chunk_seed(seed, cls, 10_000))
        init = time.perf_counter() - start
        r = generate(cls, chunk_seed(seed, cls, 10_001), 10**9, max_events=n_events, strict=False)
        per_event, eff = r["seconds"] / r["events"], len(r["features"]) / r["events"]
        per_jet = per_event / max(eff, 1e-9)
        total += per_jet * n_per_class
        log(f"{cls}: {1000 * per_event:.1f} ms/event, {eff:.2f} jets/event, {1000 * per_jet:.1f} ms/jet "
            f"(init {init:.1f} s, {r['events']} events)")
    log(f"estimate for {n_per_class} jets/class: {total / 60:.1f} min on 1 process, "
        f"{total / 60 / max(jobs, 1):.1f} min on {jobs}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--jets", type=int, default=4000, help="jets per class (default 4000)")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="processes (default 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=500, help="jets per cached chunk (default 500)")
    ap.add_argument("--cache", type=Path, default=HERE / "sim_cache", help="chunk cache folder")
    ap.add_argument("-o", "--output", type=Path, default=HERE / "jets_pythia.npz")
    ap.add_argument("--timing", type=int, metavar="EVENTS", help="only time EVENTS events per class and estimate")
    args = ap.parse_args(argv)
    if args.jets < 1 or args.jobs < 1 or args.chunk < 1:
        ap.error("--jets, --jobs and --chunk must be at least 1")
    try:
        require()
    except MissingDependency as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.timing:
        timing(args.timing, args.seed, args.jets, args.jobs)
        return 0
    start = time.perf_counter()
    made = simulate(args.jets, seed=args.seed, jobs=args.jobs, chunk=args.chunk, cache=args.cache)
    features = {c: made[c]["features"] for c in CLASSES}
    arrays = build_dataset(features, seed=args.seed)
    meta = {"jets_per_class": args.jets, "seed": args.seed, "chunk": args.chunk, "settings_hash": _SETTINGS_HASH,
            "pythia8mc": pythia8mc.__version__ if hasattr(pythia8mc, "__version__") else "8.317",
            "fastjet": fastjet.__version__, "pythia_common": _COMMON, "processes": PROCESSES,
            "events": {c: made[c]["events"] for c in CLASSES},
            "process_seconds": {c: round(made[c]["seconds"], 1) for c in CLASSES}}
    arrays["meta"] = np.array(json.dumps(meta))
    write_npz(args.output, arrays)
    print(sanity_table(features))
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
