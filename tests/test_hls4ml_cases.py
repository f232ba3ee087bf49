"""hls4ml handoff: the six models of issue 9, rebuilt small, each with its correct result.

Each was a silent mismatch ("limits: none" beside a wrong emulation), a crash, or a refusal without a
reason. The oracle is the QKeras model: logits bit for bit, on 1,000 inputs sampled in the input
type's range. Every compiled project costs seconds of g++, so these are marked slow.
"""

from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import qconvert
from qconvert.cli import cli
from qconvert.errors import ExportError, VerificationError
from qconvert.export import Hls4mlOptions, export

RULES = Path(__file__).resolve().parent.parent / "rules"
L = keras.layers


def exported(model, rules, prj, **options):
    qmodel, report = qconvert.convert(model, rules)
    return qmodel, report, export(qmodel, Hls4mlOptions(prj, **options))


def assert_bit_identical(result):
    logits = result.logits_exact_fraction if result.logits_exact_fraction is not None else result.exact_fraction
    assert logits == 1.0, result.limits
    assert result.argmax_agreement >= 0.99
    assert all(f == 1.0 for name, f in result.layers_exact.items() if name != "softmax"), result.layers_exact
    if result.softmax is None:
        assert result.limits.startswith("none")


def padded_pool_model():
    keras.utils.set_random_seed(2)
    inp = keras.Input((9, 9, 2))
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
    x = L.MaxPooling2D(2, padding="same", name="pool")(x)
    x = L.Flatten(name="flat")(x)
    return keras.Model(inp, L.Dense(3, activation="softmax", name="out")(x))


@pytest.mark.slow
def test_1_leaky_relu_with_power_of_two_slope_clips_as_qkeras_does(tmp_path):
    """quantized_relu(6, negative_slope=0.125) clips x at -2^integer before the slope; so does the firmware."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8,)), L.Dense(12, name="d1"), L.LeakyReLU(negative_slope=0.125, name="leaky"),
                              L.Dense(4, name="out")])
    qmodel, _, result = exported(model, RULES / "6bit.yaml", tmp_path / "prj")
    assert "negative_slope" in str(qmodel.get_layer("leaky").activation.get_config())
    leaky = qmodel.get_layer("leaky").activation
    assert float(leaky(np.float32(-8.0))) == -0.125  # the clip the issue measured hls4ml missing
    assert_bit_identical(result)


@pytest.mark.slow
def test_2_max_pooling_same_after_relu_is_exact_in_io_parallel(tmp_path):
    """hls4ml pads max pooling with the bit pattern 100…: +0.5 on an unsigned relu type. The input is signed now."""
    _, _, result = exported(padded_pool_model(), RULES / "8bit.yaml", tmp_path / "prj")
    assert_bit_identical(result)
    conv_relu = next(p for p in result.precisions if p.name == "relu")  # the pool's input: signed, same grid
    assert conv_relu.result.startswith("ap_fixed<9, 1")


def test_2_max_pooling_same_under_io_stream_is_refused_before_compiling(tmp_path):
    qmodel, _ = qconvert.convert(padded_pool_model(), RULES / "8bit.yaml")
    with pytest.raises(ExportError) as err:
        export(qmodel, Hls4mlOptions(tmp_path / "prj", io_type="io_stream"))
    message = str(err.value)
    assert "'pool'" in message and "padding='same'" in message and "io_stream" in message and "io_parallel" in message
    assert not list((tmp_path / "prj").glob("firmware/*.so"))  # refused before anything compiled


@pytest.mark.slow
def test_2_cli_refusal_is_one_line_exit_2_and_the_keras_output_is_kept(tmp_path):
    padded_pool_model().save(tmp_path / "m.keras")
    res = CliRunner().invoke(cli, [str(a) for a in (tmp_path / "m.keras", "--rules", RULES / "8bit.yaml", "-o",
                                                    tmp_path / "q.keras", "--hls4ml", tmp_path / "prj",
                                                    "--io-type", "io_stream", "--report", tmp_path / "r.json")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("qconvert: error:") and "'pool'" in line and "io_stream" in line
    assert str(tmp_path / "q.keras") in line and "written" in line
    assert (tmp_path / "q.keras").exists() and (tmp_path / "r.json").exists()


@pytest.mark.slow
def test_2_a_cpp_assertion_in_the_emulation_is_an_error_naming_the_layer(tmp_path):
    """Without qconvert's up-front refusal, hls4ml's streaming pooling asserts; the process survives it."""
    from qconvert.export.emulate import emulate
    from qconvert.export.hls4ml import derive_config, write_project

    qmodel, _ = qconvert.convert(padded_pool_model(), RULES / "8bit.yaml")
    options = Hls4mlOptions(tmp_path / "prj", io_type="io_stream")
    derived, layers, ins, outs = derive_config(qmodel, options)
    hls_model = write_project(qmodel, options, derived, layers, ins, outs)
    with pytest.raises(VerificationError) as err:
        emulate(hls_model, np.zeros((4, 9, 9, 2)), tmp_path / "prj", "io_stream")
    message = str(err.value)
    assert "crashed in layer pool" in message and "io_stream" in message and "assertion" in message
    assert "\n" not in message


@pytest.mark.slow
def test_3_folded_batchnorm_gives_the_new_bias_a_quantizer(tmp_path):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((8,)), L.Dense(16, use_bias=False, name="d1"), L.BatchNormalization(name="bn"),
                              L.ReLU(name="relu"), L.Dense(3, name="out")])
    rng = np.random.default_rng(3)
    model.get_layer("bn").set_weights([rng.uniform(0.5, 1.5, 16), rng.normal(0, 0.2, 16), rng.normal(0, 0.2, 16),
                                       rng.uniform(0.5, 2, 16)])
    qmodel, report, result = exported(model, RULES / "6bit.yaml", tmp_path / "prj")
    d1 = next(row for row in report.layers if row.name == "d1")
    assert d1.bias.replace(" ", "") == "quantized_bits(6,0,alpha=1)"  # was blank, and counted as quantized
    assert type(qmodel.get_layer("d1").bias_quantizer_internal).__name__ == "quantized_bits"
    assert not report.leftovers
    assert next(p for p in result.precisions if p.name == "d1").bias == "ap_fixed<6, 1>"
    assert_bit_identical(result)


@pytest.mark.slow
def test_4_dense_on_a_3d_input_writes_quantized_weights(tmp_path):
    """hls4ml turns it into a pointwise Conv1D and drops the quantizer: the weights go over already on the grid."""
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((10, 4)), L.Dense(8, name="per_particle"), L.BatchNormalization(name="bn"),
                              L.ReLU(name="relu"), L.Flatten(name="flat"), L.Dense(2, name="out")])
    _, _, result = exported(model, RULES / "8bit.yaml", tmp_path / "prj")
    assert_bit_identical(result)


@pytest.mark.slow
def test_5_unet_with_upsampling_and_skip_concatenation_converts(tmp_path):
    """UpSampling2D has only a Keras-2 handler in hls4ml 1.3: the bridge takes what hls4ml's handlers take."""
    keras.utils.set_random_seed(5)
    inp = keras.Input((8, 8, 1))
    c1 = L.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inp)
    x = L.MaxPooling2D(2, name="down")(c1)
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="c2")(x)
    x = L.UpSampling2D(2, name="up")(x)
    x = L.Concatenate(name="skip")([x, c1])
    x = L.Conv2D(1, 1, name="head")(x)
    _, _, result = exported(keras.Model(inp, L.Flatten(name="flat")(x)), RULES / "6bit.yaml", tmp_path / "prj")
    assert {"up", "skip"} <= set(result.layers_exact)
    assert_bit_identical(result)


@pytest.mark.parametrize("layer, words", [
    (L.Conv2DTranspose(2, 3, name="deconv"), ["deconv", "transposed convolution", "UpSampling2D followed by Conv2D"]),
    (L.Conv2D(4, 3, groups=2, name="grouped"), ["grouped", "groups=2", "Concatenate"]),
])  # fmt: skip
def test_5_layers_hls4ml_cannot_implement_are_refused_saying_what_to_do(tmp_path, layer, words):
    model = keras.Sequential([keras.Input((6, 6, 2)), layer, L.Flatten(), L.Dense(3)])
    qmodel, _ = qconvert.convert(model, RULES / "6bit.yaml")
    with pytest.raises(ExportError) as err:
        export(qmodel, Hls4mlOptions(tmp_path / "prj"))
    assert all(w in str(err.value) for w in words), str(err.value)


@pytest.mark.slow
def test_6_power_of_two_weight_quantizers_export_bit_exactly(tmp_path, write_rules):
    """alpha='auto_po2' (hls4ml 1.3 calls numpy.product) and quantized_po2 (exponent<4>) as fixed-point grids."""
    keras.utils.set_random_seed(6)
    model = keras.Sequential([keras.Input((8,)), L.Dense(12, activation="relu", name="d1"), L.Dense(4, name="out")])
    rules = write_rules(
        "version: 1\n"
        "defaults:\n"
        "  kernel: quantized_bits(6, 0, alpha='auto_po2')\n"
        "  bias: quantized_bits(6, 0, alpha=1)\n"
        "  activation: quantized_relu(6)\n"
        "rules:\n"
        "  - match: {name: out}\n"
        "    kernel: quantized_po2(4)\n"
    )
    _, _, result = exported(model, rules, tmp_path / "prj")
    assert_bit_identical(result)


def test_6_a_scale_that_is_not_a_power_of_two_is_refused_naming_the_quantizer(tmp_path, write_rules):
    keras.utils.set_random_seed(6)
    model = keras.Sequential([keras.Input((8,)), L.Dense(4, name="out")])
    rules = write_rules("version: 1\ndefaults:\n  kernel: quantized_bits(6, 0, alpha='auto')\n  bias: quantized_bits(6, 0)\n")
    qmodel, _ = qconvert.convert(model, rules)
    with pytest.raises(ExportError) as err:
        export(qmodel, Hls4mlOptions(tmp_path / "prj"))
    assert "'out'" in str(err.value) and "quantized_bits" in str(err.value) and "auto_po2" in str(err.value)


@pytest.mark.slow
def test_limits_name_the_first_divergent_layer_and_why(tmp_path):
    """A BatchNormalization the rules cannot fold stays float: the report says where and why, never "none"."""
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((8,)), L.Dense(8, activation="relu", name="d1"), L.BatchNormalization(name="bn"),
                              L.Reshape((8,), name="same"), L.Dense(3, name="out")])  # no fold either way
    rng = np.random.default_rng(7)
    model.get_layer("bn").set_weights([rng.uniform(0.5, 1.5, 8), rng.normal(0, 0.2, 8), rng.normal(0, 0.2, 8),
                                       rng.uniform(0.5, 2, 8)])
    _, _, result = exported(model, RULES / "6bit.yaml", tmp_path / "prj")
    assert result.exact_fraction < 1.0
    assert result.first_divergent_layer == "bn"
    assert not result.limits.startswith("none")
    assert "'bn'" in result.limits and "18 bits" in result.limits
