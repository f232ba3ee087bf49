"""RTL without Vivado: the da4ml trace is exact (half-to-even rounding, every layer family) without compiling it.

Exhaustive checks of the half-to-even rounding, then the traced logic of convolutions, pooling, Add and
Concatenate, depthwise and separable convolutions, the data movers and the shipped jet model, each equal to
Keras bit for bit in da4ml's software interpreter, which runs the same traced logic as the RTL without
Verilator or yosys. The Verilator and yosys checks are in test_rtl.py.
"""

import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from kit import keras_logits as _keras_logits

import qconvert
from qconvert.export.rtl.trace import round_half_even, trace_model

ROOT = Path(__file__).resolve().parent.parent


def _interpreted(traced, x: np.ndarray) -> np.ndarray:
    """da4ml's software interpreter on the traced logic (what the RTL computes, without compiling it)."""
    from da4ml.trace import comb_trace

    return comb_trace(traced.inp, traced.out).predict(x.reshape(len(x), -1))


def test_round_half_even_exhaustive():
    """Every value of a signed 10-bit type, rounded to 2 fraction bits: exactly numpy's half-to-even, saturated."""
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    inp = FixedVariableArrayInput(1)
    x = inp.quantize(1, 3, 6)  # step 2^-6, range [-8, 8)
    for k, i, f, low, high in [(1, 1, 2, -2.0, 1.75), (0, 2, 2, 0.0, 3.75), (1, 3, 1, -8.0, 7.5)]:
        sol = comb_trace(inp, round_half_even(x, k, i, f))
        values = np.arange(-512, 512)[:, None] / 64
        expect = np.clip(np.round(values * 2**f) / 2**f, low, high)
        assert np.array_equal(sol.predict(values), expect), (k, i, f)


def test_round_half_even_of_a_constant_is_exact():
    """A value the trace knows to be constant (a neuron whose kernel column is all zeros after pruning, x·0 + b)
    is rounded at trace time, half to even, like the wires."""
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    inp = FixedVariableArrayInput(1)
    x = inp.quantize(1, 3, 6)
    for const, f, expect in [(0.375, 2, 0.5), (0.625, 2, 0.5), (-0.375, 2, -0.5), (0.1875, 3, 0.25), (1.0, 2, 1.0)]:
        c = x * 0 + const  # da4ml folds it to a constant
        sol = comb_trace(inp, [x, round_half_even(c, 1, 3, f)])
        assert np.array_equal(sol.predict(np.array([[0.5]]))[:, 1], [expect]), (const, f)


def _conv_model() -> keras.Model:
    from qkeras.qconvolutional import QConv1D, QConv2D
    from qkeras.qlayers import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    q = {"kernel_quantizer": quantized_bits(4, 0, alpha=1), "bias_quantizer": quantized_bits(4, 0, alpha=1)}
    inp = keras.Input((6, 6, 2))
    x = QActivation(quantized_bits(8, 2, alpha=1), name="input_q")(inp)
    a = QConv2D(3, 3, padding="same", name="conv_a", **q)(x)
    a = QActivation(quantized_relu(4, 1), name="relu_a")(a)
    b = QConv2D(3, 1, name="conv_b", **q)(x)
    b = QActivation(quantized_relu(4, 1), name="relu_b")(b)
    x = keras.layers.Add(name="add")([a, b])
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Reshape((9, 3), name="seq")(x)
    x = QConv1D(4, 2, strides=2, name="conv1d", **q)(x)
    x = QActivation(quantized_relu(4, 1), name="relu_c")(x)
    x = keras.layers.AveragePooling1D(2, name="avg")(x)
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Concatenate(name="cat")([x, keras.layers.Flatten(name="flat2")(a)])
    out = QDense(3, name="out", **q)(x)
    return keras.Model(inp, out)


def test_conv_pool_add_concat_trace_is_exact():
    """Conv2D (same), pointwise Conv2D, Add, MaxPooling2D, Reshape, Conv1D (strides), AveragePooling1D, Concatenate:
    the traced logic equals Keras bit for bit; the input quantizer sets the input type."""
    model = _conv_model()
    x = np.random.default_rng(0).normal(0, 1.2, (300, 6, 6, 2))
    traced = trace_model(model)
    assert traced.input_source == "input quantizer (input_q)"
    xq = np.asarray(keras.ops.convert_to_numpy(traced.input_quantizer(x.astype("float32"))), dtype="float64")
    assert np.array_equal(_interpreted(traced, xq), _keras_logits(model, "out", x))


def test_depthwise_and_separable_trace_is_exact():
    """QDepthwiseConv2D (depth multiplier 2, strides, 'same'), QSeparableConv2D and QSeparableConv1D: bit for bit."""
    from qkeras.qconvolutional import QDepthwiseConv2D, QSeparableConv1D, QSeparableConv2D
    from qkeras.qlayers import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    w4 = quantized_bits(4, 0, alpha=1)
    inp = keras.Input((6, 6, 2))
    x = QActivation(quantized_bits(6, 2, alpha=1), name="input_q")(inp)
    x = QDepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, depthwise_quantizer=w4,
                         bias_quantizer=w4, name="dw")(x)
    x = QActivation(quantized_relu(4, 1), name="relu_dw")(x)
    x = QSeparableConv2D(3, 2, depthwise_quantizer=w4, pointwise_quantizer=w4, bias_quantizer=w4, name="sep2")(x)
    x = QActivation(quantized_relu(4, 1), name="relu_sep")(x)
    x = keras.layers.Reshape((-1, 3), name="seq")(x)
    x = QSeparableConv1D(2, 2, padding="same", depthwise_quantizer=w4, pointwise_quantizer=w4, bias_quantizer=w4,
                         name="sep1")(x)
    out = QDense(2, kernel_quantizer=w4, bias_quantizer=w4, name="out")(keras.layers.Flatten(name="flat")(x))
    model = keras.Model(inp, out)
    x = np.random.default_rng(0).normal(0, 1.5, (200, 6, 6, 2))
    traced = trace_model(model)
    xq = np.asarray(keras.ops.convert_to_numpy(traced.input_quantizer(x.astype("float32"))), dtype="float64")
    assert np.array_equal(_interpreted(traced, xq), _keras_logits(model, "out", x))


def test_data_movers_trace_is_exact():
    """ZeroPadding, Cropping, UpSampling, Permute around a Conv2D: the traced logic equals Keras bit for bit."""
    from qkeras.qconvolutional import QConv2D
    from qkeras.qlayers import QActivation, QDense
    from qkeras.quantizers import quantized_bits

    q = {"kernel_quantizer": quantized_bits(4, 0, alpha=1), "bias_quantizer": quantized_bits(4, 0, alpha=1)}
    inp = keras.Input((4, 5, 2))
    x = QActivation(quantized_bits(6, 2, alpha=1), name="input_q")(inp)
    x = keras.layers.ZeroPadding2D(((1, 0), (2, 1)), name="pad")(x)
    x = keras.layers.UpSampling2D((2, 1), name="up")(x)
    x = QConv2D(3, 3, name="conv", **q)(x)
    x = keras.layers.Cropping2D(((1, 2), (0, 1)), name="crop")(x)
    x = keras.layers.Permute((2, 1, 3), name="perm")(x)
    x = keras.layers.Reshape((-1, 3), name="seq")(x)
    x = keras.layers.ZeroPadding1D(2, name="pad1")(x)
    x = keras.layers.UpSampling1D(2, name="up1")(x)
    x = keras.layers.Cropping1D((1, 3), name="crop1")(x)
    model = keras.Model(inp, QDense(2, name="out", **q)(keras.layers.Flatten(name="flat")(x)))
    x = np.random.default_rng(0).normal(0, 1.5, (200, 4, 5, 2))
    traced = trace_model(model)
    xq = np.asarray(keras.ops.convert_to_numpy(traced.input_quantizer(x.astype("float32"))), dtype="float64")
    assert np.array_equal(_interpreted(traced, xq), _keras_logits(model, "out", x))


@pytest.mark.slow
def test_seed_jet_tagger_trace_is_exact():
    """The shipped jet model at 6 bits (no input quantizer: 16 bits from the data range), 2,000 synthetic jets."""
    sys.path.insert(0, str(ROOT / "examples" / "jet_tagging"))
    try:
        from make_model import synthetic_jets
    finally:
        sys.path.pop(0)
    from qconvert.export.inputs import round_to_type

    qmodel, _ = qconvert.convert(ROOT / "examples" / "jet_tagging" / "keras_model_fp32.h5", "6bit")
    x, _ = synthetic_jets(2000)
    traced = trace_model(qmodel, x=x)
    assert traced.input_source == "data range" and traced.logits_layer == "output"
    xq = round_to_type(x, traced.input_type)
    assert np.array_equal(_interpreted(traced, xq), _keras_logits(qmodel, "output", xq))
