"""Property-style: every layer family of the README's hls4ml table, in small random models at two presets, is
bit-exact through the QONNX export (qonnx's execute_onnx against Keras, logits and every layer) — or refused
in one line naming the layer.

One chain of blocks per preset (``qonnx_families.py``, the hls4ml tests' chain), random weights and BN
statistics, 1,000 inputs sampled in the input quantizer's range; the oracle is the QKeras model. With
``QCONVERT_QONNX_FAMILY_RESULTS=path.json`` the results are saved: ``benchmarks/qonnx_table.py`` renders the
README table from them.
"""

import os
from pathlib import Path

import pytest

pytest.importorskip("qonnx")

from hls4ml_families import PRESETS, families, save
from qonnx_families import run_family_check, unfolded_batchnorm


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    work = tmp_path_factory.mktemp("qonnx_families")
    runs = run_family_check(work)
    unfolded = {p: unfolded_batchnorm(p, work) for p in PRESETS}
    if os.environ.get("QCONVERT_QONNX_FAMILY_RESULTS"):
        save(runs, unfolded, Path(os.environ["QCONVERT_QONNX_FAMILY_RESULTS"]))
    return {o.preset: o for o in runs}, unfolded


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_family_is_bit_exact_or_refused_naming_the_layer(outcomes, preset):
    o = outcomes[0][preset]
    assert set(o.families) == {f.name for f in families()}  # every family has a result
    for family, status in o.families.items():
        assert status == "exact" or status.startswith(f"refused: layer '{family}"), (family, status, o.limits)
    assert o.n_samples >= 1000
    assert o.logits_exact_fraction == 1.0 and o.argmax_agreement == 1.0, o.limits
    assert o.limits.startswith("none")
    assert "Conv" in o.ops["conv2d_same"] and "Quant" in o.ops["conv2d_same"]
    assert o.ops["dense_relu"] == ["Add", "MatMul", "Quant", "Relu"]


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_an_unfolded_batchnorm_is_exported_as_tensorflow_computes_it(outcomes, preset):
    """The float BN itself is bit-identical (TensorFlow's constants, its order of operations); the float values it
    makes are not on a grid, so the next layer's float32 sums round differently, and the report says so."""
    bn = outcomes[1][preset]
    assert bn["bn_exact"] == 1.0
    assert bn["logits_exact"] == 1.0 or ("layer 'logits' (QDense)" in bn["limits"] and "float32 rounding" in bn["limits"])
