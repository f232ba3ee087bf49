"""QONNX export: each quantizer's Quant node against QKeras (ties included), the seed's jet tagger and a CNN
round-tripped through qonnx's execute_onnx bit for bit, refusals in one line, the CLI and the main job.

The oracle is always the QKeras model itself (Keras's predict), compared bit for bit with what qonnx's own
execution of the written graph computes.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from kit import assert_clean_error, jets_npz, run_cli
from models import randomize_batchnorm, seed_fp32

import qconvert
from qconvert.export.qonnx import QonnxOptions, QonnxRefusal, export_qonnx
from qconvert.export.qonnx.quant import activation_plan
from qconvert.export.qonnx.verify import execute

pytest.importorskip("qonnx")

ROOT = Path(__file__).resolve().parent.parent
L = keras.layers
# The agreement keys every export target reports (hls4ml's, the RTL's; export/verify.py's Agreement.to_dict).
AGREEMENT_KEYS = ["n_samples", "inputs", "logits_exact_fraction", "argmax_agreement", "max_abs_diff", "accuracy_keras",
                  "accuracy_qonnx", "first_divergent_layer", "limits"]


def small_cnn() -> keras.Model:
    """Conv2D (BN folded) → ReLU → max pool → Conv2D → ReLU → Flatten → Dense → softmax head."""
    inp = keras.Input((10, 10, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", name="conv1")(inp)
    x = L.BatchNormalization(name="conv1_bn")(x)
    x = L.Activation("relu", name="conv1_relu")(x)
    x = L.MaxPooling2D(2, name="pool")(x)
    x = L.Conv2D(8, 3, name="conv2", activation="relu")(x)
    x = L.Flatten(name="flat")(x)
    x = L.Dense(16, activation="relu", name="fc")(x)
    model = keras.Model(inp, L.Dense(4, activation="softmax", name="head")(x), name="small_cnn")
    randomize_batchnorm(model)
    return model


# --- each quantizer, one node, against QKeras -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("quantized_bits(6, 0, alpha=1)", ["Quant(6 bits, signed, scale 2^-5, ROUND)"]),
        ("quantized_bits(8, 3, symmetric=1, alpha=1)", ["Quant(8 bits, signed, narrow, scale 2^-4, ROUND)"]),
        ("quantized_bits(8, 3, keep_negative=False, alpha=1)", ["Quant(8 bits, unsigned, scale 2^-5, ROUND)"]),
        ("quantized_bits(1, 0, alpha=1)", ["BipolarQuant(scale 2^0)"]),
        ("quantized_relu(6)", ["Relu", "Quant(6 bits, unsigned, scale 2^-6, ROUND)"]),
        ("quantized_relu(4, 2)", ["Relu", "Quant(4 bits, unsigned, scale 2^-2, ROUND)"]),
        ("quantized_relu(4, 0, negative_slope=0.25)", ["LeakyRelu", "Quant(4 bits, signed, scale 2^-3, ROUND)", "Clip"]),
        ("quantized_tanh(4)", ["Mul", "Add", "Clip", "Mul", "Add", "Quant(4 bits, signed, scale 2^-3, ROUND)"]),
        ("quantized_sigmoid(4)", ["Mul", "Add", "Clip", "Quant(4 bits, unsigned, scale 2^-4, ROUND)"]),
        ("binary(alpha=1)", ["BipolarQuant(scale 2^0)"]),
    ],
)
def test_each_activation_quantizer_maps_to_these_nodes(text, expected):
    from qconvert.quantizers import build, parse_quantizer

    plan = activation_plan(build(parse_quantizer(text, role="activation")), "layer 'a'")
    assert [p["params"].describe() if op == "Quant" else op for op, p in plan.steps] == expected


def _one_quantizer(text: str, n: int = 32) -> keras.Model:
    from qkeras import QActivation

    from qconvert.quantizers import build, parse_quantizer

    inp = keras.Input((n,), name="x")
    return keras.Model(inp, QActivation(build(parse_quantizer(text, role="activation")), name="q")(inp))


def _graph_output(path: Path, x: np.ndarray) -> np.ndarray:
    """The written graph's output on ``x``, as qonnx's execute_onnx computes it."""
    import onnx

    graph = onnx.load(str(path))
    return execute(graph, x)[graph.graph.output[0].name]


def _grid_inputs(step: float, k: int) -> np.ndarray:
    """Every tie ``(j + 1/2)·step`` for ``|j| <= k``, values a quarter step either side of each, the grid itself,
    saturating values and zeros: one row of 32 values per sample."""
    j = np.arange(-k - 2, k + 2)
    values = np.concatenate([(j + 0.5) * step, (j + 0.25) * step, (j + 0.75) * step, j * step,
                             [0.0, -0.0, 100.0, -100.0, 3.999, -3.999]])
    return np.resize(values, (-(-values.size // 32), 32)).astype(np.float32)


@pytest.mark.parametrize(
    ("text", "step", "k"),
    [
        ("quantized_bits(6, 0, alpha=1)", 2**-5, 32),
        ("quantized_bits(6, 2, symmetric=1, alpha=1)", 2**-3, 32),
        ("quantized_bits(5, 1, keep_negative=False, alpha=1)", 2**-4, 32),
        ("quantized_relu(6)", 2**-6, 64),
        ("quantized_relu(4, 1)", 2**-3, 16),
        ("quantized_relu(4, 0, negative_slope=0.25)", 2**-3, 16),
        ("quantized_relu(4, 1, negative_slope=0.5)", 2**-2, 16),
        ("quantized_tanh(4)", 2**-2, 16),  # ties of 2·σ(x) - 1 on the 2^-3 grid: x steps of 2^-2
        ("quantized_sigmoid(4)", 2**-3, 32),  # ties of σ(x) = x/2 + 1/2 on the 2^-4 grid: x steps of 2^-3
        ("binary(alpha=1)", 0.5, 4),
    ],
)
def test_each_quantizer_rounds_ties_and_saturates_as_qkeras_does(tmp_path, text, step, k):
    model = _one_quantizer(text)
    x = _grid_inputs(step, k)
    keras_y = np.asarray(model.predict(x, verbose=0))
    # a 32-bit input type holds every test value exactly, so the graph's own input Quant changes none
    result = export_qonnx(model, QonnxOptions(tmp_path / "q.onnx", input_precision="ap_fixed<32,12>"), x=x)
    graph_y = _graph_output(tmp_path / "q.onnx", x).reshape(keras_y.shape)
    assert np.array_equal(graph_y, keras_y), np.argwhere(graph_y != keras_y)[:5]
    assert result.logits_exact_fraction == 1.0 and result.agreement["limits"].startswith("none")


def test_ties_round_half_to_even_on_both_sides(tmp_path):
    """0.5, 1.5, 2.5, 3.5 steps of quantized_bits(6, 0): QKeras and the graph both give 0, 2, 2, 4 steps."""
    step = 2**-5
    model = _one_quantizer("quantized_bits(6, 0, alpha=1)", n=8)
    x = (np.array([[0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, -3.5]]) * step).astype(np.float32)
    export_qonnx(model, QonnxOptions(tmp_path / "t.onnx", input_precision="ap_fixed<32,12>"), x=x)
    graph_y = _graph_output(tmp_path / "t.onnx", x)
    even = np.array([[0, 2, 2, 4, 0, -2, -2, -4]]) * step
    assert np.array_equal(np.asarray(model.predict(x, verbose=0)), even)
    assert np.array_equal(graph_y, even)


# --- whole models ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_6bit():
    keras.utils.set_random_seed(0)
    qmodel, _ = qconvert.convert(seed_fp32(), ROOT / "rules" / "6bit.yaml")
    return qmodel


def test_the_seed_jet_tagger_round_trips_bit_exactly(seed_6bit, tmp_path):
    result = export_qonnx(seed_6bit, QonnxOptions(tmp_path / "jet.onnx"))
    a = result.agreement
    assert a["n_samples"] == 1000 and a["inputs"] == "sampled"
    assert a["logits_exact_fraction"] == 1.0 and a["argmax_agreement"] == 1.0
    assert all(f == 1.0 for name, f in a["layers_exact"].items() if name != "softmax"), a["layers_exact"]
    assert a["limits"].startswith("none")
    assert result.logits_layer == "output" and result.final_activation == "softmax"
    assert result.quant_nodes == 1 + 8 + 3  # the input, 4 kernels and 4 biases, 3 ReLUs
    assert list(a)[: len(AGREEMENT_KEYS)] == AGREEMENT_KEYS


def test_the_written_graph_is_clean_qonnx(seed_6bit, tmp_path):
    """onnx's checker accepts it, qonnx's cleanup finds nothing to change, every tensor has a shape."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    path = tmp_path / "jet.onnx"
    export_qonnx(seed_6bit, QonnxOptions(path, verify=False))
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    wrapper = ModelWrapper(str(path))
    assert wrapper.check_all_tensor_shapes_specified()
    again = cleanup_model(ModelWrapper(str(path))).model
    assert [(n.op_type, list(n.input), list(n.output)) for n in again.graph.node] == \
           [(n.op_type, list(n.input), list(n.output)) for n in model.graph.node]
    assert {o.domain for o in model.opset_import} >= {"", "qonnx.custom_op.general"}


def test_a_conv2d_cnn_round_trips_bit_exactly(tmp_path):
    keras.utils.set_random_seed(1)
    qmodel, _ = qconvert.convert(small_cnn(), ROOT / "rules" / "6bit.yaml")
    result = export_qonnx(qmodel, QonnxOptions(tmp_path / "cnn.onnx"))
    a = result.agreement
    assert a["logits_exact_fraction"] == 1.0 and a["argmax_agreement"] == 1.0, a["limits"]
    assert set(a["layers_exact"]) >= {"conv1", "conv1_relu", "pool", "conv2", "flat", "fc", "head"}
    assert all(f == 1.0 for name, f in a["layers_exact"].items() if name != "softmax"), a["layers_exact"]
    import onnx

    ops = [n.op_type for n in onnx.load(str(tmp_path / "cnn.onnx")).graph.node]
    assert ops.count("Transpose") == 2  # into channels-first after the input, back before Flatten
    assert ops.count("Conv") == 2 and "MaxPool" in ops


def test_a_float_layer_that_differs_is_named_with_its_reason(tmp_path):
    """A tanh the rules leave float: onnxruntime's and TensorFlow's tanh differ in the last bit, and the report
    says so (never 'none')."""
    model = keras.Sequential([keras.Input((8,)), L.Dense(8, name="d"), L.Activation("tanh", name="t"),
                              L.Dense(3, name="out")])
    rules = tmp_path / "r.yaml"
    rules.write_text("version: 1\ndefaults:\n  kernel: quantized_bits(6, 0, alpha=1)\n  bias: quantized_bits(6, 0, alpha=1)\n")
    qmodel, _ = qconvert.convert(model, rules)
    a = export_qonnx(qmodel, QonnxOptions(tmp_path / "f.onnx")).agreement
    assert a["first_divergent_layer"] == "t"
    assert a["logits_exact_fraction"] < 1.0 and "'t' (Activation)" in a["limits"] and "tanh" in a["limits"]
    assert not a["limits"].startswith("none")


@pytest.mark.parametrize(
    ("layers", "fragment"),
    [
        ([L.SimpleRNN(4, name="rnn")], "layer 'rnn'"),
        ([L.Dense(4, name="d"), L.Activation("elu", name="e")], "layer 'e' (Activation): float activation 'elu'"),
        ([L.Dense(4, name="d"), L.ReLU(max_value=1.0, name="r6")], "layer 'r6' (ReLU)"),
    ],
)
def test_what_has_no_exact_form_is_refused_in_one_line_naming_the_layer(tmp_path, layers, fragment):
    shape = (5, 3) if isinstance(layers[0], L.SimpleRNN) else (6,)
    model = keras.Sequential([keras.Input(shape), *layers, L.Dense(2, name="last")])
    with pytest.raises(QonnxRefusal, match="^" + fragment.replace("(", r"\(").replace(")", r"\)")) as info:
        export_qonnx(model, QonnxOptions(tmp_path / "r.onnx"))
    assert "\n" not in str(info.value)
    assert not (tmp_path / "r.onnx").exists()


def test_a_quantizer_without_exact_form_is_refused_naming_layer_and_quantizer(tmp_path):
    from qkeras import QActivation, quantized_relu

    model = keras.Sequential([keras.Input((6,)), L.Dense(4, name="d"),
                              QActivation(quantized_relu(4, 0, use_sigmoid=1), name="sig_relu")])
    with pytest.raises(QonnxRefusal, match=r"^layer 'sig_relu' \(QActivation\): quantized_relu\(4,0,1\) with use_sigmoid"):
        export_qonnx(model, QonnxOptions(tmp_path / "r.onnx"))


# --- the CLI and the main job -----------------------------------------------------------------------------------


def test_qconvert_qonnx_writes_the_graph_and_the_report(seed_6bit, tmp_path):
    model = tmp_path / "jet_q.keras"
    seed_6bit.save(model)
    report = tmp_path / "r.json"
    r = run_cli("qonnx", model, "-o", tmp_path / "jet.onnx", "--report", report)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "jet.onnx").is_file() and "logits bit-identical 100.00%" in r.output
    section = json.loads(report.read_text())["qonnx"]
    assert section["logits_exact_fraction"] == 1.0 and section["path"] == str(tmp_path / "jet.onnx")
    assert [k for k in section if k in AGREEMENT_KEYS] == AGREEMENT_KEYS


def test_qconvert_qonnx_refuses_bad_output_and_bad_layers(tmp_path):
    model = keras.Sequential([keras.Input((6,)), L.Dense(4, name="d"), L.Activation("elu", name="e")])
    model.save(tmp_path / "m.keras")
    assert_clean_error(run_cli("qonnx", tmp_path / "m.keras", "-o", tmp_path / "m.txt"), "must be a .onnx file")
    assert_clean_error(run_cli("qonnx", tmp_path / "m.keras", "-o", tmp_path / "m.onnx"), "layer 'e' (Activation)")
    assert not (tmp_path / "m.onnx").exists()


def test_the_main_job_exports_qonnx_and_verifies_it_on_the_data(tmp_path):
    """``qconvert jet.h5 --rules 6bit --data jets.npz --qonnx jet.onnx``: the qonnx section, on the held-out split."""
    src = tmp_path / "jet.h5"
    keras.utils.set_random_seed(0)
    seed_fp32().save(src)
    data = jets_npz(tmp_path / "jets.npz", rows=2000)
    report = tmp_path / "r.json"
    r = run_cli(src, "--rules", "6bit", "--data", data, "--qonnx", tmp_path / "jet.onnx", "--report", report)
    assert r.exit_code == 0, r.output
    doc = json.loads(report.read_text())
    q = doc["qonnx"]
    assert q["inputs"] == "given" and q["n_samples"] == doc["accuracy"]["samples"]
    assert q["logits_exact_fraction"] == 1.0 and q["argmax_agreement"] == 1.0
    assert q["accuracy_qonnx"] == q["accuracy_keras"]
    assert q["input_source"] == "data range"
    assert_clean_error(run_cli(src, "--rules", "6bit", "--qonnx", tmp_path / "x.pb"), "must be a .onnx file")
