"""examples/jet_tagging/simulate.py: Pythia 8 + FastJet jets with the hls4ml set's 16 features.

A handful of real events per class (Pythia and fastjet, no stand-ins); the features are checked against
computations written here from the definitions: a naive Cambridge/Aachen clustering and mMDT declustering for
the groomed jet, brute-force loops over pairs and triples for the energy-correlation functions.
"""

import importlib.util
import itertools
import math
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("simulate", ROOT / "examples/jet_tagging/simulate.py")
sim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sim)

SEED = 11
N_JETS = 5  # per class: enough for a stratified 60/20/20 split of 5 classes


@pytest.fixture(scope="module")
def made():
    """N_JETS jets of each class with their constituents: {class: generate(...) result}."""
    return {cls: sim.generate(cls, sim.chunk_seed(SEED, cls, 0), N_JETS, max_events=40, keep_jets=True)
            for cls in sim.CLASSES}


def _col(name: str) -> int:
    return sim.FEATURES.index(name)


def _pt(p):
    return math.hypot(p[0], p[1])


def _y_phi(p):
    return 0.5 * math.log((p[3] + p[2]) / (p[3] - p[2])), math.atan2(p[1], p[0])


def _dr(a, b):
    (ya, pa), (yb, pb) = _y_phi(a), _y_phi(b)
    dphi = abs(pa - pb)
    dphi = min(dphi, 2 * math.pi - dphi)
    return math.hypot(ya - yb, dphi)


def _naive_mmdt(constituents: np.ndarray, zcut: float = 0.1) -> list[int]:
    """Indices of the constituents mMDT keeps: Cambridge/Aachen by repeatedly merging the closest pair in
    (y, φ) with four-momenta added, then declustering from the top, following the harder branch until
    min(pT1, pT2) / (pT1 + pT2) > zcut."""
    nodes = [(p.copy(), [i]) for i, p in enumerate(constituents)]  # (momentum, leaves)
    tree = {}  # frozenset of leaves -> (left leaves, right leaves)
    while len(nodes) > 1:
        best = min(itertools.combinations(range(len(nodes)), 2), key=lambda ij: _dr(nodes[ij[0]][0], nodes[ij[1]][0]))
        a, b = nodes[best[0]], nodes[best[1]]
        merged = (a[0] + b[0], a[1] + b[1])
        tree[frozenset(merged[1])] = ((a[0], a[1]), (b[0], b[1]))
        nodes = [n for k, n in enumerate(nodes) if k not in best] + [merged]
    leaves = nodes[0][1]
    while len(leaves) > 1:
        (p1, l1), (p2, l2) = tree[frozenset(leaves)]
        if min(_pt(p1), _pt(p2)) / (_pt(p1) + _pt(p2)) > zcut:
            break
        leaves = l1 if _pt(p1) > _pt(p2) else l2
    return sorted(leaves)


def _brute_force_ecfs(c: np.ndarray) -> dict[str, float]:
    """The 13 ECF features from their definitions, by loops over pairs and triples of constituents (n, 4)."""
    total = sum(_pt(p) for p in c)
    z = [_pt(p) / total for p in c]
    n = len(c)
    dr = [[_dr(c[i], c[j]) for j in range(n)] for i in range(n)]
    e2 = {b: 0.0 for b in (0, 1, 2)}
    e3, e3_1, e3_2 = {1: 0.0, 2: 0.0}, {1: 0.0, 2: 0.0}, {1: 0.0, 2: 0.0}
    for i, j in itertools.combinations(range(n), 2):
        for b in e2:
            e2[b] += z[i] * z[j] * dr[i][j] ** b
    for i, j, k in itertools.combinations(range(n), 3):
        w = z[i] * z[j] * z[k]
        for b in (1, 2):
            angles = sorted((dr[i][j] ** b, dr[i][k] ** b, dr[j][k] ** b))
            e3[b] += w * angles[0] * angles[1] * angles[2]
            e3_1[b] += w * angles[0]
            e3_2[b] += w * angles[0] * angles[1]
    out = {f"c1_b{b}_mmdt": e2[b] for b in (0, 1, 2)}
    for b in (1, 2):
        out[f"c2_b{b}_mmdt"] = e3[b] / e2[b] ** 2
        out[f"d2_b{b}_mmdt"] = e3[b] / e2[b] ** 3
        out[f"d2_a1_b{b}_mmdt"] = e3[1] / e2[b] ** (3 / b)
        out[f"m2_b{b}_mmdt"] = e3_1[b] / e2[b]
        out[f"n2_b{b}_mmdt"] = e3_2[b] / e2[b] ** 2
    return out


@pytest.mark.slow  # Pythia events: about 25 s of CPU for the module
def test_every_class_yields_jets_in_the_cuts(made):
    for cls, r in made.items():
        assert r["features"].shape == (N_JETS, 16) and np.isfinite(r["features"]).all(), cls
        assert r["events"] <= 3 * N_JETS, (cls, r["events"])  # nearly every event gives a matched jet
        for jet in r["jets"]:
            p = jet.sum(axis=0)
            pt = math.hypot(p[0], p[1])
            assert 800 <= pt <= 1200 and abs(math.asinh(p[2] / pt)) < 2.5, (cls, pt)
            assert all(_dr(q, p) < 1.0 for q in jet)  # constituents of an R = 0.8 jet


@pytest.mark.slow
def test_ungroomed_features_are_their_definitions(made):
    for r in made.values():
        for feats, jet in zip(r["features"], r["jets"]):
            assert feats[_col("multiplicity")] == len(jet)
            z = np.hypot(jet[:, 0], jet[:, 1]) / math.hypot(*jet[:, :2].sum(axis=0))
            assert feats[_col("zlogz")] == pytest.approx(float(np.sum(z * np.log(z))), rel=1e-12)


@pytest.mark.slow
def test_groomed_jet_equals_a_naive_ca_mmdt(made):
    """fastjet contrib's SoftDrop(β = 0, z_cut = 0.1) keeps the same constituents as the naive mMDT here,
    and mass_mmdt is the invariant mass of their sum."""
    for cls in ("W", "t", "q"):
        r = made[cls]
        for feats, jet in list(zip(r["features"], r["jets"]))[:2]:
            keep = jet[_naive_mmdt(jet)]
            p = keep.sum(axis=0)
            mass = math.sqrt(max(p[3] ** 2 - p[0] ** 2 - p[1] ** 2 - p[2] ** 2, 0.0))
            assert feats[_col("mass_mmdt")] == pytest.approx(mass, rel=1e-9, abs=1e-6), cls
            masses, groomed = sim.groom([jet])
            assert masses[0] == pytest.approx(mass, rel=1e-9, abs=1e-6)
            assert sorted(map(tuple, np.round(groomed[0], 9))) == sorted(map(tuple, np.round(keep, 9)))


@pytest.mark.slow
def test_energy_correlators_equal_brute_force_loops(made):
    """Each ECF feature from fastjet contrib equals the sums over pairs and triples written out here, on the
    groomed jet (the smallest jet of each class, to keep the triple loop short)."""
    for cls, r in made.items():
        jet = min(r["jets"], key=len)
        _, groomed = sim.groom([jet])
        feats = sim.jet_features([jet])[0]
        expected = _brute_force_ecfs(groomed[0])
        for name, value in expected.items():
            assert feats[_col(name)] == pytest.approx(value, rel=1e-7), (cls, name)


@pytest.mark.slow
def test_mass_agrees_with_the_small_angle_ecf_relation(made):
    """For massless constituents m² = 2 Σ_{i<j} pT_i pT_j (cosh Δy_ij − cos Δφ_ij) ≈ Σ_{i<j} pT_i pT_j ΔR_ij²
    = (Σ pT)² e_2^(2), so mass_mmdt ≈ (the groomed jet's scalar pT sum) × √c1_b2_mmdt up to O(ΔR²): within 2 %
    once the hadrons are made massless (E = |p|), within 15 % with their masses (which add to m²)."""
    checked = 0
    for r in made.values():
        for jet in r["jets"]:
            massless = jet.copy()
            massless[:, 3] = np.linalg.norm(jet[:, :3], axis=1)
            for constituents, tolerance in ((massless, 0.02), (jet, 0.15)):
                feats = sim.jet_features([constituents])[0]
                if feats[_col("mass_mmdt")] < 30:
                    continue
                _, groomed = sim.groom([constituents])
                sum_pt = np.hypot(groomed[0][:, 0], groomed[0][:, 1]).sum()
                estimate = sum_pt * math.sqrt(feats[_col("c1_b2_mmdt")])
                assert estimate == pytest.approx(feats[_col("mass_mmdt")], rel=tolerance)
                checked += 1
    assert checked >= 20


@pytest.mark.slow
def test_boson_and_top_jets_peak_at_their_masses(made):
    for cls, peak in (("W", 80.4), ("Z", 91.2), ("t", 173.0)):
        median = float(np.median(made[cls]["features"][:, _col("mass_mmdt")]))
        assert abs(median - peak) < 0.25 * peak, (cls, median)


def test_the_committed_set_looks_like_jets():
    """jets_pythia.npz: ≥ 4,000 jets a class, and the physics one expects of them (raw features)."""
    with np.load(ROOT / "examples/jet_tagging/jets_pythia.npz") as npz:
        x = np.concatenate([npz[k] for k in ("X_train", "X_val", "X_test")]) * npz["scaler_scale"] + npz["scaler_mean"]
        y = np.concatenate([npz[k] for k in ("y_train", "y_val", "y_test")])
        assert tuple(npz["class_names"]) == sim.CLASSES and tuple(npz["feature_names"]) == sim.FEATURES
    assert np.bincount(y).min() >= 4000
    stat = {cls: x[y == i] for i, cls in enumerate(sim.CLASSES)}
    median_mass = {cls: float(np.median(f[:, _col("mass_mmdt")])) for cls, f in stat.items()}
    for cls, (low, high) in {"W": (75, 86), "Z": (85, 97), "t": (160, 185), "q": (0, 40), "g": (0, 80)}.items():
        assert low < median_mass[cls] < high, (cls, median_mass[cls])
    mean = {cls: f.mean(axis=0) for cls, f in stat.items()}
    assert mean["g"][_col("multiplicity")] > 1.2 * mean["q"][_col("multiplicity")]
    for two_prong in ("W", "Z"):
        for one_prong in ("q", "g"):
            for name in ("d2_b1_mmdt", "n2_b1_mmdt"):
                assert mean[two_prong][_col(name)] < mean[one_prong][_col(name)], (two_prong, one_prong, name)


@pytest.mark.slow
def test_same_seed_same_jets_other_seed_other_jets(made):
    again = sim.generate("W", sim.chunk_seed(SEED, "W", 0), N_JETS, max_events=40)
    np.testing.assert_array_equal(again["features"], made["W"]["features"])
    other = sim.generate("W", sim.chunk_seed(SEED, "W", 1), N_JETS, max_events=40)
    assert not np.allclose(other["features"], made["W"]["features"])


@pytest.mark.slow
def test_chunks_are_cached_and_reused(tmp_path):
    log: list[str] = []
    first = sim.simulate(2, seed=SEED, chunk=1, cache=tmp_path, classes=("Z",), log=log.append)
    assert len(list(tmp_path.glob("Z_*.npz"))) == 2 and log
    log.clear()
    second = sim.simulate(2, seed=SEED, chunk=1, cache=tmp_path, classes=("Z",), log=log.append)
    assert log == []  # nothing generated again
    np.testing.assert_array_equal(first["Z"]["features"], second["Z"]["features"])
    assert first["Z"]["features"].shape == (2, 16)
    # chunk k has its own seed: chunk 0 is what generate() gives with that seed
    alone = sim.generate("Z", sim.chunk_seed(SEED, "Z", 0), 1, max_events=50)
    np.testing.assert_array_equal(alone["features"], first["Z"]["features"][:1])


@pytest.mark.slow
def test_the_npz_is_what_qconvert_reads(made, tmp_path):
    from qconvert.train.data import load_data

    arrays = sim.build_dataset({cls: r["features"] for cls, r in made.items()}, seed=SEED)
    path = tmp_path / "jets.npz"
    sim.write_npz(path, arrays)
    data = load_data(path)
    assert data.label_kind == "integer" and data.n_classes == 5
    assert data.x_train.dtype == np.float32 and data.x_train.shape[1] == 16
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (15, 5, 5)
    assert sorted(np.bincount(data.y_test).tolist()) == [1] * 5  # stratified
    with np.load(path) as npz:
        assert tuple(npz["feature_names"]) == sim.FEATURES and tuple(npz["class_names"]) == sim.CLASSES
        # standardized on the train split; the scaler gives the raw features back
        np.testing.assert_allclose(npz["X_train"].mean(axis=0), 0, atol=1e-5)
        raw = npz["X_train"] * npz["scaler_scale"] + npz["scaler_mean"]
        pool = np.concatenate([r["features"] for r in made.values()])
        assert all(np.isclose(pool, row, rtol=1e-5, atol=1e-4).all(axis=1).any() for row in raw)


def test_missing_wheels_fail_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(sim, "_MISSING", ImportError("No module named 'pythia8mc'", name="pythia8mc"))
    assert sim.main(["-n", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pythia8mc" in err and 'pip install -e ".[sim]"' in err
