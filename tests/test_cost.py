"""Hardware cost without synthesis: EBOPs (HGQ2's count) by hand, the seed's 174,425, multiplies and DSPs."""

import keras
import numpy as np
import pytest
from models import seed_fp32

import qconvert
from qconvert.model.cost import magnitude_bits, model_cost, value_bits
from qconvert.rules import loads_rules

SEED_6BIT_16BIT_INPUT = """
version: 1
input: quantized_bits(16, 6)
defaults:
  kernel: quantized_bits(6, 0, alpha=1)
  bias: quantized_bits(6, 0, alpha=1)
  activation: quantized_relu(6)
"""


def _fill(model, value=0.96875):
    """Weights no quantizer rounds to zero, so every multiply is there; 31/32 needs all 5 magnitude bits of
    ``quantized_bits(6, 0)``."""
    for layer in model.layers:
        layer.set_weights([np.full(w.shape, value, dtype="float32") for w in layer.get_weights()])
    return model


def test_magnitude_bits_leave_out_the_sign():
    from qkeras.quantizers import quantized_bits, quantized_relu

    assert magnitude_bits(quantized_bits(6, 0, alpha=1)) == 5
    assert magnitude_bits(quantized_bits(16, 6)) == 15
    assert magnitude_bits(quantized_bits(8, 0, keep_negative=False)) == 8
    assert magnitude_bits(quantized_relu(6)) == 6
    assert magnitude_bits(None) == 32


def test_ebops_of_a_tiny_layer_by_hand():
    """4 inputs (signed 8-bit: 7 magnitude bits) → 3 outputs, 6-bit weights (at most 5 magnitude bits).

    Kernel columns: zeros (cost nothing), powers of two (one bit each: a shift), full-width values (31/32 and
    29/32: five bits) and 1/32 (one bit); one bias is zero, the others are powers of two.
    """
    kernel = np.array([[0.0, 0.5, 0.96875],
                       [0.0, 0.25, -0.90625],
                       [0.0, -0.125, 0.03125],
                       [0.5, 0.0, -0.5]], dtype="float32")  # fmt: skip
    bias = np.array([0.0, 0.5, -0.25], dtype="float32")
    inp = keras.Input((4,))
    x = keras.layers.Dense(3, name="tiny")(inp)
    fp32 = keras.Model(inp, x)
    fp32.get_layer("tiny").set_weights([kernel, bias])
    rules = loads_rules("version: 1\ninput: quantized_bits(8, 3)\ndefaults:\n  kernel: quantized_bits(6, 0, alpha=1)\n"
                        "  bias: quantized_bits(6, 0, alpha=1)\n")
    qmodel, _ = qconvert.convert(fp32, rules)
    cost = model_cost(qmodel)["tiny"]
    assert cost.multiplies == 8
    weight_bits = 1 + 1 + 1 + 1 + 1 + 1 + 5 + 5  # six powers of two, 31/32, 29/32
    assert cost.ebops == weight_bits * 7 + 2 * 1  # = 114


def test_value_bits_are_those_of_the_narrowest_format_holding_each_value():
    from qkeras.quantizers import quantized_bits

    assert value_bits(np.array([0.0, 0.5, -0.75, 11 / 16, 31 / 32, 3.0, -6.0, 1 / 1024]), np.inf).tolist() == \
        [0, 1, 2, 4, 5, 2, 2, 1]
    assert value_bits(np.array([0.1, 2**-30 * 3]), 5).tolist() == [5, 2]  # not dyadic (or too long): the cap
    # every value of quantized_bits(6, 0) costs at most its 5 magnitude bits, and some value costs each of 1..5
    grid = np.asarray(quantized_bits(6, 0, alpha=1)(np.linspace(-1.2, 1.2, 513).astype("float32")))
    assert sorted(set(value_bits(grid, np.inf).tolist())) == [0, 1, 2, 3, 4, 5]


def test_conv_weights_count_once_per_output_position():
    inp = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, name="conv")(inp)  # 4 x 4 output positions
    fp32 = _fill(keras.Model(inp, x), 0.875)  # 7/8: the 3 magnitude bits of quantized_bits(4, 0)
    kernel = fp32.get_layer("conv").get_weights()[0]
    kernel[0, 0, :, :] = 0.0  # 6 of 54 weights pruned
    fp32.get_layer("conv").set_weights([kernel, np.full(3, 0.25, "float32")])
    rules = loads_rules("version: 1\ninput: quantized_bits(5, 2)\ndefaults:\n  kernel: quantized_bits(4, 0, alpha=1)\n"
                        "  bias: quantized_bits(4, 0, alpha=1)\n")
    qmodel, _ = qconvert.convert(fp32, rules)
    cost = model_cost(qmodel)["conv"]
    assert cost.multiplies == 16 * 48
    assert cost.ebops == 16 * 48 * 4 * 3 + 16 * 3 * 1  # the biases, 0.25, one bit each


def test_seed_6bit_with_a_signed_16bit_input_is_174425_ebops():
    """The issue's check, the figure HGQ2's own trace reports for the same network."""
    _qmodel, report = qconvert.convert(_fill(seed_fp32()), loads_rules(SEED_6BIT_16BIT_INPUT))
    # the oracle: HGQ2's formula over the network's own shapes (fan-in × units multiplies of b_in' × b_w', plus
    # b_bias' per output), written from the Keras model, not from qconvert's cost module
    fp32 = seed_fp32()
    widths = {"fc1": 15, "fc2": 6, "fc3": 6, "output": 6}  # magnitude bits reaching each Dense: 16-bit input, relu(6)
    expected = {}
    for name, b_in in widths.items():
        fan_in, units = fp32.get_layer(name).kernel.shape
        expected[name] = fan_in * units * b_in * 5 + units * 5  # quantized_bits(6, 0): 5 bits below the sign
    assert sum(expected.values()) == report.totals.ebops == 174_425
    assert {r.name: r.ebops for r in report.layers if r.ebops} == expected
    assert {r.name: r.ebops for r in report.layers if r.ebops} == {"fc1": 77_120, "fc2": 61_600, "fc3": 30_880, "output": 4_825}
    assert report.totals.multiplies == 1024 + 2048 + 1024 + 160
    assert report.totals.dsp == 0  # 6-bit products: LUTs


def test_dsp_estimate_at_16_bits():
    text = SEED_6BIT_16BIT_INPUT.replace("(6, 0", "(16, 6").replace("quantized_relu(6)", "quantized_relu(16, 6)")
    _, report = qconvert.convert(_fill(seed_fp32()), loads_rules(text))
    assert report.totals.dsp == 1024 + 2048 + 1024 + 160  # one DSP per multiply, hls4ml Latency, reuse 1


def test_pruned_weights_cost_nothing():
    fp32 = _fill(seed_fp32())
    kernel, bias = fp32.get_layer("fc2").get_weights()
    kernel[:, :16] = 0.0  # half of fc2's multiplies
    fp32.get_layer("fc2").set_weights([kernel, bias])
    _, report = qconvert.convert(fp32, loads_rules(SEED_6BIT_16BIT_INPUT))
    assert report.totals.ebops == 174_425 - 1024 * 6 * 5
    assert report.totals.multiplies == 4256 - 1024


def test_report_shows_the_cost_columns_and_renders_in_a_notebook():
    _, report = qconvert.convert(_fill(seed_fp32()), loads_rules(SEED_6BIT_16BIT_INPUT))
    doc = report.to_dict()
    assert doc["layers"][1]["ebops"] == 77_120 and doc["totals"]["ebops"] == 174_425 and doc["totals"]["dsp"] == 0
    markdown = report._repr_markdown_()
    assert "| EBOPs | DSP |" in markdown and "77.12k" in markdown and "EBOPs 174.43k" in markdown


@pytest.mark.parametrize("kind", ["DepthwiseConv2D", "SeparableConv2D"])
def test_every_weighted_family_gets_ebops(kind):
    inp = keras.Input((5, 5, 2))
    layer = getattr(keras.layers, kind)(kernel_size=3, name="c") if kind == "DepthwiseConv2D" else \
        keras.layers.SeparableConv2D(4, 3, name="c")
    fp32 = _fill(keras.Model(inp, layer(inp)))
    qmodel, _ = qconvert.convert(fp32, "6bit")
    cost = model_cost(qmodel)["c"]
    assert cost.multiplies == cost.macs and cost.ebops > 0
