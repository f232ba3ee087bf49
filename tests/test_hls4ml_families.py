"""Property-style: every layer family qconvert converts or passes through, in small random models, at two
presets and both io types, is bit-exact in the hls4ml emulation — or refused with a reason.

One chain of blocks per (preset, io type) (``hls4ml_families.py``), random weights and BN statistics,
1,000 inputs sampled in the input quantizer's range; the oracle is the QKeras model, logits bit for bit.
With ``QCONVERT_FAMILY_RESULTS=path.json`` the results are saved: ``benchmarks/hls4ml_table.py``
renders the README table from them.
"""

import os
from pathlib import Path

import pytest
from hls4ml_families import IO_TYPES, PRESETS, families, run_family_check, save, unfolded_batchnorm


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    work = tmp_path_factory.mktemp("families")
    runs = run_family_check(work, jobs=1)
    unfolded = {p: unfolded_batchnorm(p, work) for p in PRESETS}
    if os.environ.get("QCONVERT_FAMILY_RESULTS"):
        save(runs, unfolded, Path(os.environ["QCONVERT_FAMILY_RESULTS"]))
    return {(o.preset, o.io_type): o for o in runs}, unfolded


@pytest.mark.slow
@pytest.mark.parametrize("io_type", IO_TYPES)
@pytest.mark.parametrize("preset", PRESETS)
def test_every_family_is_bit_exact_or_refused_with_a_reason(outcomes, preset, io_type):
    o = outcomes[0][(preset, io_type)]
    assert set(o.families) == {f.name for f in families()}  # every family has a result
    for family, status in o.families.items():
        assert status == "exact" or status.startswith("refused: "), (family, status, o.limits)
        if io_type == "io_parallel":
            assert status == "exact", (family, status)
    assert o.n_samples >= 1000
    assert o.logits_exact_fraction == 1.0 and o.argmax_agreement == 1.0, o.limits
    assert o.limits.startswith("none")


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_an_unfolded_batchnorm_is_reported_as_not_bit_exact(outcomes, preset):
    assert outcomes[1][preset].startswith("not bit-exact: ") and "18 bits" in outcomes[1][preset]
