"""The graph rewriter on branching, convolutional, nested and shared-layer models.

With every quantizer set to pass-through (``float``), a converted model must
compute what the FP32 model computes: the graph, the weights and the BN folding
are then all that is tested.
"""

import keras
import numpy as np
import pytest
from models import (
    bn_before_convs,
    branching_bn,
    conv1d_families,
    conv2d_families,
    nested_shared,
    random_inputs,
    shared_bn_heads,
)

import qconvert

PASS_THROUGH = """
version: 1
description: every quantizer a pass-through
defaults:
  kernel: float
  bias: float
  activation: {relu: float, leaky_relu: float, tanh: float, sigmoid: float, linear: float}
  batchnorm: fold
"""

SIX_BIT = """
version: 1
defaults:
  kernel: quantized_bits(6, 0, alpha=1)
  bias: quantized_bits(6, 0, alpha=1)
  activation: {relu: quantized_relu(6), leaky_relu: quantized_relu(6), tanh: quantized_tanh(6), sigmoid: quantized_sigmoid(6)}
  batchnorm: fold
"""


def _types(model):
    return {layer.name: type(layer).__name__ for layer in model.layers}


@pytest.mark.parametrize("build", [branching_bn, conv2d_families, conv1d_families, nested_shared])
def test_pass_through_reproduces_fp32_outputs(build, write_rules):
    fp32 = build()
    qmodel, report = qconvert.convert(fp32, write_rules(PASS_THROUGH))
    x = random_inputs(fp32, 64)
    np.testing.assert_allclose(np.asarray(qmodel(x)), np.asarray(fp32(x)), rtol=1e-4, atol=1e-5)
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in qmodel._flatten_layers())
    assert report.totals.leftovers == 0


def test_branching_model_structure(write_rules):
    fp32 = branching_bn()
    qmodel, report = qconvert.convert(fp32, write_rules(SIX_BIT))
    types = _types(qmodel)
    assert types["stem"] == "QDense" and types["branch_b2"] == "QDense"
    assert "stem_bn" not in types and "branch_b2_bn" not in types  # folded
    assert types["stem_relu"] == types["leaky"] == "QActivation"
    assert types["add"] == "Add" and types["skip"] == "Concatenate"
    # fused activations split and named like the seed does
    assert types["relu"] == "QActivation" and types["tanh"] == "QActivation" and types["softmax"] == "Activation"
    leaky = qmodel.get_layer("leaky").activation
    assert type(leaky).__name__ == "quantized_relu" and leaky.negative_slope == pytest.approx(0.125)
    assert qmodel.get_layer("branch_b2").use_bias  # folding gave it a bias
    rows = {r.name: r for r in report.layers}
    assert rows["stem_bn"].action == "fold" and "folded into stem" in rows["stem_bn"].note
    assert rows["softmax"].action == "unquantizable"


def test_bn_folding_is_exact_in_float(write_rules):
    """Folded weights compute what Dense + BN computed, to float rounding."""
    fp32 = branching_bn()
    qmodel, _ = qconvert.convert(fp32, write_rules(PASS_THROUGH))
    stem_in = keras.Model(fp32.inputs, fp32.get_layer("stem_bn").output)
    stem_out = keras.Model(qmodel.inputs, qmodel.get_layer("stem").output)
    x = random_inputs(fp32, 32)
    np.testing.assert_allclose(np.asarray(stem_out(x)), np.asarray(stem_in(x)), rtol=1e-5, atol=1e-5)



@pytest.mark.parametrize("build", [shared_bn_heads, bn_before_convs])
def test_bn_that_cannot_fold_backward_folds_forward_exactly_in_float(build, write_rules):
    """A BatchNormalization on the input, after a shared Dense or after a ReLU folds into the Dense or valid
    convolution after it: the model computes what it computed, to float rounding, and the table says so."""
    fp32 = build()
    qmodel, report = qconvert.convert(fp32, write_rules(PASS_THROUGH))
    assert not [layer for layer in qmodel.layers if isinstance(layer, keras.layers.BatchNormalization)]
    x = random_inputs(fp32, 64)
    for got, want in zip(keras.tree.flatten(qmodel(x)), keras.tree.flatten(fp32(x))):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-5)
    folded = {r.name: r.note for r in report.layers if r.type_before == "BatchNormalization"}
    assert folded and all(note.startswith("folded forward into ") for note in folded.values()), folded


def test_bn_before_a_same_padded_conv_or_an_activation_stays_float(write_rules):
    """Folded forward, a "same" convolution's zero padding would be the BN's shift: not folded, said so."""
    inp = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, activation="relu", name="c1")(inp)
    x = keras.layers.BatchNormalization(name="bn_same")(x)
    x = keras.layers.Conv2D(3, 3, padding="same", name="c2")(x)
    x = keras.layers.BatchNormalization(name="bn_act")(keras.layers.ReLU(name="r")(x))
    out = keras.layers.Dense(2, name="out")(keras.layers.Activation("tanh", name="t")(x))
    qmodel, report = qconvert.convert(keras.Model(inp, out), write_rules(SIX_BIT))
    rows = {r.name: r for r in report.layers}
    for name in ("bn_same", "bn_act"):
        assert type(qmodel.get_layer(name)).__name__ == "BatchNormalization"
        assert rows[name].leftover and "cannot fold" in rows[name].note

def test_every_conv_family_becomes_its_q_layer(write_rules):
    qmodel, _ = qconvert.convert(conv2d_families(), write_rules(SIX_BIT))
    types = _types(qmodel)
    assert (types["conv"], types["dw"], types["sep"], types["deconv"]) == (
        "QConv2D", "QDepthwiseConv2D", "QSeparableConv2D", "QConv2DTranspose")
    assert types["sigmoid"] == "QActivation" and types["conv_relu"] == "QActivation"
    sep = qmodel.get_layer("sep")
    assert str(sep.depthwise_quantizer_internal) == str(sep.pointwise_quantizer_internal)  # depthwise/pointwise default to kernel
    q1, _ = qconvert.convert(conv1d_families(), write_rules(SIX_BIT))
    assert (_types(q1)["c1"], _types(q1)["s1"], _types(q1)["s1_tanh"]) == ("QConv1D", "QSeparableConv1D", "QActivation")


def test_nested_models_are_recursed_and_shared_layers_stay_shared(write_rules):
    fp32 = nested_shared()
    qmodel, report = qconvert.convert(fp32, write_rules(SIX_BIT))
    inner = qmodel.get_layer("inner")
    assert isinstance(inner, keras.Sequential)
    assert [type(l).__name__ for l in inner.layers] == ["QDense", "QActivation"]
    shared = qmodel.get_layer("shared")
    assert type(shared).__name__ == "QDense"
    assert len(shared._inbound_nodes) == 2  # one layer, called twice
    np.testing.assert_array_equal(shared.get_weights()[0], fp32.get_layer("shared").get_weights()[0])
    assert "inner/inner_fc" in {r.name for r in report.layers}


def test_keep_and_name_rules(write_rules):
    rules = write_rules(SIX_BIT + """
rules:
  - match: {name: branch_a}
    keep: true
  - match: {name: head}
    kernel: {quantizer: quantized_bits, bits: 8, integer: 0, alpha: 1}
  - match: {activation: tanh}
    activation: quantized_tanh(4)
""")
    qmodel, _report = qconvert.convert(branching_bn(), rules)
    assert type(qmodel.get_layer("branch_a")).__name__ == "Dense"
    assert qmodel.get_layer("branch_a").get_config()["activation"] == "relu"  # kept whole, not split
    assert qmodel.get_layer("head").kernel_quantizer_internal.bits == 8
    assert qmodel.get_layer("head").bias_quantizer_internal.bits == 6  # from defaults
    assert qmodel.get_layer("tanh").activation.bits == 4


def test_uncovered_layers_are_listed_and_strict_refuses(write_rules):
    rules = write_rules("version: 1\ndefaults:\n  activation: quantized_relu(6)\n")
    qmodel, report = qconvert.convert(branching_bn(), rules)
    leftovers = {r.name for r in report.leftovers}
    assert {"stem", "branch_a", "stem_bn", "tanh"} <= leftovers
    assert type(qmodel.get_layer("stem")).__name__ == "Dense"
    with pytest.raises(qconvert.ConversionError, match="strict"):
        qconvert.convert(branching_bn(), rules, strict=True)


def test_rule_matching_no_layer_is_an_error(write_rules):
    rules = write_rules(SIX_BIT + "rules:\n  - match: {name: nonexistent}\n    keep: true\n")
    with pytest.raises(qconvert.RuleError) as err:
        qconvert.convert(branching_bn(), rules)
    assert err.value.line == 9 and err.value.key == "rules[0].match"
    assert "matches no layer" in str(err.value)


def test_input_quantizer_is_inserted_after_the_input(write_rules):
    rules = write_rules(SIX_BIT + "input: quantized_bits(8, 3, alpha=1)\n")
    qmodel, report = qconvert.convert(branching_bn(), rules)
    first = qmodel.get_layer("features_quant")
    assert type(first).__name__ == "QActivation" and first.activation.bits == 8
    assert qmodel.get_layer("stem").input is first.output
    stem = {r.name: r for r in report.layers}["stem"]
    assert stem.bops == pytest.approx(8 * 16 * (6 * 8 + 6 + 8 + 3))  # 8-bit inputs now


def test_batchnorm_quantize_mode_gives_qbatchnormalization(write_rules):
    rules = write_rules(SIX_BIT + """
rules:
  - match: {type: BatchNormalization}
    batchnorm: quantize
    gamma: quantized_bits(8, 2)
    beta: quantized_bits(8, 2)
""")
    fp32 = branching_bn()
    qmodel, report = qconvert.convert(fp32, rules)
    bn = qmodel.get_layer("stem_bn")
    assert type(bn).__name__ == "QBatchNormalization"
    assert bn.gamma_quantizer_internal.bits == 8 and bn.beta_quantizer_internal.bits == 8
    for got, want in zip(bn.get_weights(), fp32.get_layer("stem_bn").get_weights()):
        np.testing.assert_array_equal(got, want)
    assert {r.name: r for r in report.layers}["stem_bn"].action == "quantize"
    assert "features" not in {r.name for r in report.layers}  # the InputLayer is not a row


def test_bn_that_cannot_fold_stays_float_and_is_a_leftover(write_rules):
    inp = keras.Input((4,))
    x = keras.layers.Dense(4, activation="relu", name="d")(inp)  # activation before BN: no exact fold
    out = keras.layers.BatchNormalization(name="bn")(x)
    qmodel, report = qconvert.convert(keras.Model(inp, out), write_rules(SIX_BIT))
    assert type(qmodel.get_layer("bn")).__name__ == "BatchNormalization"
    row = {r.name: r for r in report.layers}["bn"]
    assert row.leftover and "cannot fold" in row.note


def test_batchnorm_quantize_without_role_quantizers_keeps_qkeras_defaults(write_rules):
    """What ``rules show`` announces is what the model gets: QBatchNormalization, QKeras's own quantizers."""
    rules = write_rules(SIX_BIT + """
rules:
  - match: {type: BatchNormalization}
    batchnorm: quantize
""")
    qmodel, report = qconvert.convert(branching_bn(), rules)
    bn = qmodel.get_layer("stem_bn")
    assert type(bn).__name__ == "QBatchNormalization"
    import qkeras

    default = qkeras.QBatchNormalization()
    assert bn.get_config()["gamma_quantizer"] == default.get_config()["gamma_quantizer"]
    row = {r.name: r for r in report.layers}["stem_bn"]
    assert row.action == "quantize" and row.type_after == "QBatchNormalization"
