"""Must show: the seed's FP32 jet tagger + rules/6bit.yaml = the seed's hand-written 6-bit model."""

import numpy as np
import pytest
from models import random_inputs, seed_6bit, seed_fp32

import qconvert

# The initializer only matters for fresh weights; the converted QDense keeps the
# FP32 layer's (wrapped by QKeras in QInitializer), the seed's has QDense's default.
_INITIALIZERS = ("kernel_initializer",)


def _config(layer):
    config = layer.get_config()
    for key in _INITIALIZERS:
        config.pop(key, None)
    if "activation" in config and hasattr(config["activation"], "get_config"):
        act = config["activation"]
        config["activation"] = (type(act).__name__, act.get_config())
    return config


@pytest.fixture(scope="module")
def converted(request):
    fp32 = seed_fp32()
    qmodel, report = qconvert.convert(fp32, request.config.rootpath / "rules" / "6bit.yaml")
    return fp32, qmodel, report


def test_layers_and_quantizers_equal_the_handwritten_model(converted):
    _, qmodel, _ = converted
    expected = seed_6bit()
    assert type(qmodel).__name__ == "Sequential"
    assert [(type(l).__name__, l.name) for l in qmodel.layers] == [(type(l).__name__, l.name) for l in expected.layers]
    for got, want in zip(qmodel.layers, expected.layers):
        assert _config(got) == _config(want), got.name


def test_fp32_weights_are_carried_over(converted):
    fp32, qmodel, _ = converted
    for name in ("fc1", "fc2", "fc3", "output"):
        for got, want in zip(qmodel.get_layer(name).get_weights(), fp32.get_layer(name).get_weights()):
            np.testing.assert_array_equal(got, want)


def test_outputs_equal_the_handwritten_model_with_the_same_weights(converted):
    fp32, qmodel, _ = converted
    expected = seed_6bit()
    for name in ("fc1", "fc2", "fc3", "output"):
        expected.get_layer(name).set_weights(fp32.get_layer(name).get_weights())
    x = random_inputs(fp32, 256)
    np.testing.assert_array_equal(np.asarray(qmodel(x)), np.asarray(expected(x)))


def test_input_model_is_untouched(converted):
    fp32, _, _ = converted
    assert [type(l).__name__ for l in fp32.layers] == ["Dense"] * 4
    assert fp32.get_layer("output").get_config()["activation"] == "softmax"


def test_report_lists_every_layer_and_says_softmax_stays_float(converted):
    _, _, report = converted
    rows = {r.name: r for r in report.layers}
    assert list(rows) == ["fc1", "relu1", "fc2", "relu2", "fc3", "relu3", "output", "softmax"]
    assert rows["fc1"].kernel == "quantized_bits(6,0,alpha=1)" and rows["fc1"].bias == "quantized_bits(6,0,alpha=1)"
    assert rows["relu2"].activation == "quantized_relu(6)"
    assert rows["softmax"].type_after == "Activation" and "no quantizer for softmax" in rows["softmax"].note
    assert report.totals.leftovers == 0
    assert report.totals.params == sum(r.params for r in report.layers) == 64 * 17 + 32 * 65 + 32 * 33 + 5 * 33


def test_bit_operations_follow_the_formula(converted):
    """BOPs = MACs × (b_w·b_a + b_w + b_a + log2(fan-in)); fc2 sees 6-bit relu1 outputs."""
    _, _, report = converted
    rows = {r.name: r for r in report.layers}
    macs = 64 * 32
    assert rows["fc2"].bops == pytest.approx(macs * (6 * 6 + 6 + 6 + np.log2(64)))
    assert rows["fc2"].bops_fp32 == pytest.approx(macs * (32 * 32 + 64 + np.log2(64)))
    assert rows["fc2"].bops_ap_fixed_16_6 == pytest.approx(macs * (16 * 16 + 32 + np.log2(64)))
    # fc1 reads the unquantized input: 32-bit activations against 6-bit weights
    assert rows["fc1"].bops == pytest.approx(16 * 64 * (6 * 32 + 6 + 32 + 4))
    assert report.totals.bops == pytest.approx(sum(r.bops for r in report.layers))
    assert report.totals.bops < report.totals.bops_ap_fixed_16_6 < report.totals.bops_fp32


def test_converting_twice_changes_nothing(converted, request):
    _, qmodel, _ = converted
    again, report = qconvert.convert(qmodel, request.config.rootpath / "rules" / "6bit.yaml")
    assert [(type(l).__name__, l.name) for l in again.layers] == [(type(l).__name__, l.name) for l in qmodel.layers]
    for a, b in zip(again.layers, qmodel.layers):
        assert _config(a) == _config(b)
    x = random_inputs(qmodel, 128)
    np.testing.assert_array_equal(np.asarray(again(x)), np.asarray(qmodel(x)))
    assert report.totals.leftovers == 0
