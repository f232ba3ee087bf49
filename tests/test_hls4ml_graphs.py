"""hls4ml bridge for graphs beyond a chain: several outputs (a shared trunk with two heads), nested models.

Through the CLI, as a user runs it; every output of the model is checked against Keras.
"""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from kit import run_cli as run
from models import shared_bn_heads

import qconvert
from qconvert.errors import ExportError
from qconvert.export import Hls4mlOptions, export
from qconvert.export.flatten import flatten_nested

ROOT = Path(__file__).resolve().parent.parent
SIX_BIT = ROOT / "rules" / "6bit.yaml"


def through_hls4ml(model: keras.Model, tmp_path: Path):
    """``qconvert m.keras --rules 6bit.yaml --hls4ml prj --report r.json``: the CLI output and the report's hls4ml part."""
    model.save(tmp_path / "m.keras")
    result = run(tmp_path / "m.keras", "--rules", SIX_BIT, "-o", tmp_path / "q.keras", "--hls4ml", tmp_path / "prj",
                 "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    return result, json.loads((tmp_path / "r.json").read_text())["hls4ml"]


def two_heads() -> keras.Model:
    """A shared trunk, a classifier head (softmax) and a regression head (linear, one unit)."""
    keras.utils.set_random_seed(4)
    inp = keras.Input((16,), name="x")
    h = keras.layers.Dense(24, activation="relu", name="trunk1")(inp)
    h = keras.layers.Dense(16, activation="relu", name="trunk2")(h)
    cls = keras.layers.Dense(5, activation="softmax", name="cls")(h)
    reg = keras.layers.Dense(1, name="reg")(h)
    return keras.Model(inp, [cls, reg], name="two_heads")


def nested(input_name: str = "x") -> keras.Model:
    """A Sequential block (two Dense) called inside a functional model, between a stem and a head."""
    keras.utils.set_random_seed(5)
    block = keras.Sequential([keras.Input((16,)), keras.layers.Dense(12, activation="relu", name="b_fc1"),
                              keras.layers.Dense(8, activation="relu", name="b_fc2")], name="block")
    inp = keras.Input((16,), name=input_name)
    h = keras.layers.Dense(16, activation="relu", name="stem")(inp)
    return keras.Model(inp, keras.layers.Dense(5, activation="softmax", name="head")(block(h)), name="nested")


def test_flattened_model_computes_what_the_nested_one_does():
    qmodel, _ = qconvert.convert(nested(), SIX_BIT)
    flat = flatten_nested(qmodel)
    assert not any(isinstance(layer, keras.Model) for layer in flat.layers)
    assert {"b_fc1", "b_fc2", "stem", "head"} <= {layer.name for layer in flat.layers}
    x = np.random.default_rng(0).normal(size=(64, 16)).astype("float32")
    np.testing.assert_array_equal(np.asarray(flat(x)), np.asarray(qmodel(x)))


@pytest.mark.slow
def test_two_output_model_through_hls4ml_every_output_verified(tmp_path):
    result, hls = through_hls4ml(two_heads(), tmp_path)
    outputs = {o["name"]: o for o in hls["outputs"]}
    assert len(outputs) == 2
    reg = next(o for o in outputs.values() if o["units"] == 1)
    assert reg["exact_fraction"] == 1.0 and reg["argmax_agreement"] is None  # the regression head: bit for bit
    cls = next(o for o in outputs.values() if o["units"] == 5)
    assert cls["argmax_agreement"] >= 0.99 and hls["logits_exact_fraction"] == 1.0  # softmax: a table, logits exact
    assert "output reg" in result.output or "(1 units)" in result.output


@pytest.mark.slow
def test_nested_model_through_hls4ml(tmp_path):
    """Its input layer is named ``input``, a name hls4ml's graph reserves: renamed in the project only."""
    _result, hls = through_hls4ml(nested(input_name="input"), tmp_path)
    assert any(n.startswith("layer input is input_1 in the hls4ml project") for n in hls["notes"]), hls["notes"]
    assert keras.saving.load_model(tmp_path / "q.keras").layers[0].name == "input"  # the user's model keeps its name
    assert hls["logits_exact_fraction"] == 1.0 and hls["argmax_agreement"] >= 0.99
    assert all(hls["layers_exact"][n] == 1.0 for n in ("stem", "b_fc1", "b_fc2", "head"))  # inner layers traced too
    assert len(hls["outputs"]) == 1 and hls["outputs"][0]["argmax_agreement"] >= 0.99


def test_several_inputs_are_refused_in_one_line(tmp_path):
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    model = keras.Model([a, b], keras.layers.Dense(2, name="out")(keras.layers.Concatenate(name="cat")([a, b])))
    qmodel, _ = qconvert.convert(model, SIX_BIT)
    with pytest.raises(ExportError, match="single-input models"):
        export(qmodel, Hls4mlOptions(tmp_path / "prj"))


def test_data_with_a_two_output_model_is_refused_in_one_line(tmp_path):
    two_heads().save(tmp_path / "m.keras")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X_train=rng.normal(size=(64, 16)).astype("float32"), y_train=rng.integers(0, 5, 64))
    result = run(tmp_path / "m.keras", "--rules", SIX_BIT, "-o", tmp_path / "q.keras", "--data", tmp_path / "d.npz")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "2 output(s)" in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "q.keras").exists()


def test_a_keras2_time_distributed_model_is_refused_in_one_line_before_hls4ml(tmp_path):
    """A Keras 2 .h5 (written by tf_keras) with TimeDistributed(Dense): converted, then refused in one line naming
    the layer and what to build instead; no traceback, no "Exception ignored" from hls4ml's file readers."""
    tf_keras = pytest.importorskip("tf_keras")
    L = tf_keras.layers
    model = tf_keras.Sequential([L.InputLayer((5, 4)), L.TimeDistributed(L.Dense(3), name="td"), L.Flatten(),
                                 L.Dense(2, name="out")])
    model.save(tmp_path / "td.h5")
    result = run(tmp_path / "td.h5", "--rules", SIX_BIT, "-o", tmp_path / "q.keras", "--hls4ml", tmp_path / "prj")
    assert result.exit_code == 2 and "Traceback" not in result.output and "Exception ignored" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("qconvert: error:")]
    assert len(lines) == 1 and "layer 'td' (TimeDistributed)" in lines[0] and "apply the Dense itself" in lines[0]
    assert (tmp_path / "q.keras").exists() and not (tmp_path / "prj").exists()  # the model is kept; no project


@pytest.mark.slow
def test_batchnorm_folds_forward_and_both_heads_are_bit_exact(tmp_path):
    result, hls = through_hls4ml(shared_bn_heads(), tmp_path)
    qmodel = keras.saving.load_model(tmp_path / "q.keras")
    assert not [layer for layer in qmodel.layers if "BatchNormalization" in type(layer).__name__]
    for into in ("shared", "head_a", "head_b"):  # bn_in, bn_a, bn_b: said in the table
        assert f"folded forward into {into}" in result.output, result.output
    assert len(hls["outputs"]) == 2 and all(o["exact_fraction"] == 1.0 for o in hls["outputs"])
    assert hls["exact_fraction"] == 1.0 and hls["limits"].startswith("none")
    assert set(hls["layers_exact"]) >= {"shared", "head_a", "head_b"} and set(hls["layers_exact"].values()) == {1.0}


def two_branch_conv1d(explicit_padding: bool = False) -> keras.Model:
    """Two padded Conv1D branches (kernel 3 and 5) and a 1×1 skip, all reading one input, joined by Concatenate
    and Add. ``explicit_padding``: each branch pads with a ZeroPadding1D of its own before a valid convolution."""
    keras.utils.set_random_seed(8)
    inp = keras.Input((16, 4), name="seq")

    def branch(name: str, k: int):
        if explicit_padding:
            pad = keras.layers.ZeroPadding1D(((k - 1) // 2, k // 2), name=f"{name}_pad")(inp)
            return keras.layers.Conv1D(4, k, name=name)(pad)
        return keras.layers.Conv1D(4, k, padding="same", name=name)(inp)

    cat = keras.layers.Concatenate(name="cat")([branch("a", 3), branch("b", 5)])
    x = keras.layers.Add(name="add")([cat, keras.layers.Conv1D(8, 1, name="skip")(inp)])
    return keras.Model(inp, keras.layers.Dense(3, name="out")(keras.layers.Flatten(name="flat")(x)))


BRANCH_RULES = ("version: 1\ninput: quantized_bits(8, 2)\ndefaults:\n  kernel: quantized_bits(4, 0, alpha=1)\n"
                "  bias: quantized_bits(4, 0, alpha=1)\nrules:\n  - match: {name: b}\n    kernel: quantized_bits(7, 0, alpha=1)\n"
                "    bias: quantized_bits(7, 0, alpha=1)\n")


def test_streamed_padded_conv1d_branches_on_one_tensor_are_refused_before_compiling(write_rules, tmp_path):
    """hls4ml 1.3 inserts a streamed Conv1D's padding before the first reader of its input, not before the conv."""
    qmodel, _ = qconvert.convert(two_branch_conv1d(), write_rules(BRANCH_RULES))
    with pytest.raises(ExportError) as err:
        export(qmodel, Hls4mlOptions(tmp_path / "prj", io_type="io_stream"))
    message = str(err.value)
    assert "\n" not in message and message.startswith("layer 'a' (Conv1D): padding on a tensor 3 layers read")
    assert "--io-type io_parallel" in message and "ZeroPadding1D of its own" in message
    assert not list(tmp_path.glob("prj/firmware/*.so"))  # refused before anything compiled


@pytest.mark.slow
def test_streamed_branches_with_their_own_zero_padding_are_bit_exact(write_rules, tmp_path):
    """What the refusal advises: the same model with explicit ZeroPadding1D layers streams bit for bit."""
    qmodel, _ = qconvert.convert(two_branch_conv1d(explicit_padding=True), write_rules(BRANCH_RULES))
    result = export(qmodel, Hls4mlOptions(tmp_path / "prj", io_type="io_stream"))
    assert result.exact_fraction == 1.0 and result.limits.startswith("none"), result.limits
    assert all(result.layers_exact[n] == 1.0 for n in ("a", "b", "skip", "out"))
