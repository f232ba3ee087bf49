"""hls4ml handoff: the bridge, the derived config, and the emulation checked against Keras.

Real hls4ml 1.3.0 and g++: each compiled project costs seconds, so the two models (the seed's jet
tagger, a small Conv2D model) are compiled once per module and shared; the CLI test compiles one more.
"""

import json
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from kit import run_cli as run

import qconvert
from qconvert.export import Hls4mlOptions, export
from qconvert.export.precision import FixedType, accumulator, parse_hls

ROOT = Path(__file__).resolve().parent.parent
JET_H5 = ROOT / "examples" / "jet_tagging" / "keras_model_fp32.h5"
RULES_6BIT = ROOT / "rules" / "6bit.yaml"


def synthetic_jets(n: int, seed: int = 0):
    """The stand-in the shipped jet model was trained on (same centres: seed 0)."""
    sys.path.insert(0, str(ROOT / "examples" / "jet_tagging"))
    try:
        from make_model import synthetic_jets as make
    finally:
        sys.path.pop(0)
    return make(n, seed=seed)



@pytest.fixture(scope="module")
def jet(tmp_path_factory):
    qmodel, _ = qconvert.convert(JET_H5, RULES_6BIT)
    x, y = synthetic_jets(3000)
    result = export(qmodel, Hls4mlOptions(tmp_path_factory.mktemp("jet") / "prj"), x=x, y=y)
    return qmodel, x, y, result


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    from qconvert.demo import digits_cnn, digits_dataset, train_baseline

    data = digits_dataset(image=True)
    from qconvert.train.qat import TrainOptions, fine_tune

    fp32 = train_baseline(digits_cnn(), data, epochs=10)
    qmodel, _ = qconvert.convert(fp32, RULES_6BIT)
    options = TrainOptions(epochs=5, lr=3e-3, batch_size=64, loss="categorical_crossentropy", verbose=0)
    qmodel, _ = fine_tune(qmodel, data, options)  # QAT: a trained 6-bit model, so accuracy means something
    x = np.concatenate([data.x_train, data.x_val, data.x_test])  # 1797 samples: 1 sample = 0.056 pp
    y = np.concatenate([data.y_train, data.y_val, data.y_test])
    result = export(qmodel, Hls4mlOptions(tmp_path_factory.mktemp("cnn") / "prj"), x=x, y=y)
    return qmodel, x, y, result


# --- precision rules: pure, no hls4ml -------------------------------------------------------------


def test_accumulator_holds_every_sum_of_the_fan_in():
    inp, w, b = FixedType(6, 0, False), FixedType(6, 1), FixedType(6, 1)
    acc = accumulator(inp, w, b, fan_in=64)
    assert acc.frac == inp.frac + w.frac  # no product bit dropped
    worst = 64 * inp.max_abs * w.max_abs + b.max_abs
    assert acc.max_abs >= worst  # never overflows


def test_parse_hls_round_trips_the_types_it_writes():
    for text in ("ap_fixed<18,8>", "ap_ufixed<6,0,AP_RND_CONV,AP_SAT>", "ap_int<8>"):
        t = parse_hls(text)
        assert parse_hls(t.hls()) == t


# --- the two models of the issue ------------------------------------------------------------------


@pytest.mark.slow
def test_jet_model_logits_bit_identical_and_softmax_agrees(jet):
    _qmodel, _x, _y, result = jet
    assert result.logits_exact_fraction >= 0.999
    assert result.argmax_agreement >= 0.99
    assert abs(result.accuracy_keras - result.accuracy_hls4ml) <= 0.001
    assert result.accuracy_keras > 0.5  # a trained model: the comparison means something
    # every layer before the softmax table is bit-identical; the table is what differs
    assert all(f == 1.0 for name, f in result.layers_exact.items() if name != "softmax")
    assert result.first_divergent_layer in (None, "softmax")
    assert "table" in result.limits


@pytest.mark.slow
def test_jet_project_types_come_from_the_quantizers(jet):
    _, _, _, result = jet
    by_name = {p.name: p for p in result.precisions}
    assert by_name["fc1"].weight == "ap_fixed<6, 1>"  # quantized_bits(6, 0)
    assert by_name["relu1"].result.startswith("ap_ufixed<6, 0")  # quantized_relu(6)
    defines = (result.project_dir / "firmware" / "defines.h").read_text()
    assert "ap_fixed<18,8> softmax_exp_table_t" in defines  # the seed's table types
    assert "ap_fixed<18,4> softmax_inv_table_t" in defines


@pytest.mark.slow
def test_conv2d_model_logits_bit_identical_and_accuracy_equal(cnn):
    qmodel, _x, _y, result = cnn
    assert next(type(l).__name__ for l in qmodel.layers) == "QConv2D"
    assert result.logits_exact_fraction >= 0.999
    assert result.argmax_agreement >= 0.99
    assert abs(result.accuracy_keras - result.accuracy_hls4ml) <= 0.001
    assert result.accuracy_keras > 0.5


@pytest.mark.slow
def test_user_config_is_merged_over_the_derived_one(jet, tmp_path):
    """Pinning the softmax table size re-derives its address type (no compile: derive only)."""
    from qconvert.export import derive_config

    qmodel = jet[0]
    user = tmp_path / "pin.yaml"
    user.write_text("LayerName:\n  softmax:\n    table_size: 1024\n  fc1:\n    ReuseFactor: 4\n")
    derived, *_ = derive_config(qmodel, Hls4mlOptions(tmp_path / "prj", user_config=user))
    assert derived.config["LayerName"]["softmax"]["table_size"] == 1024
    assert derived.config["LayerName"]["softmax"]["inp_norm_t"].startswith("ap_ufixed<10,")
    assert derived.config["LayerName"]["fc1"]["ReuseFactor"] == 4
    assert jet[3].softmax.table_size == 4096  # derived: the budget (16384 would resolve every logit step)
    assert derived.softmax.step == jet[3].softmax.step * 4



def test_a_precision_the_user_pins_is_blamed_for_a_divergence_it_causes(jet, tmp_path):
    """--hls4ml-config narrowing a layer's result: when the logits then differ from that layer on, the limits
    name the file and the type, not Keras's float32 sums (derive only; no compile)."""
    from qconvert.export import derive_config
    from qconvert.export.verify import _divergence

    user = tmp_path / "narrow.yaml"
    user.write_text("LayerName:\n  fc2:\n    Precision:\n      result: ap_fixed<6,1>\n")
    derived, *_ = derive_config(jet[0], Hls4mlOptions(tmp_path / "prj", user_config=user))
    notes = {p.name: p.note for p in derived.precisions}
    assert notes["fc2"].startswith(f"its Precision is set by {user} ({{'result': 'ap_fixed<6,1>'}}), not derived")
    assert "set by" not in notes["fc1"]  # the others stay as derived
    said = _divergence(derived, "fc2", {"fc1", "fc2"})
    assert said.startswith("logits differ from Keras from layer 'fc2' on: 'fc2' (Dense): its Precision is set by")


# --- the command line -----------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_build_without_synthesis_tool_exits_2_with_project_written(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + ":/usr/bin:/bin")  # no Vitis/Vivado
    x, y = synthetic_jets(1500)
    np.savez(tmp_path / "data.npz", X_train=x[:1000], y_train=y[:1000], X_test=x[1000:], y_test=y[1000:])
    prj = tmp_path / "prj"
    res = run(JET_H5, "--rules", RULES_6BIT, "-o", tmp_path / "q.keras", "--report", tmp_path / "r.json",
              "--data", tmp_path / "data.npz", "--hls4ml", prj, "--build")
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    last = res.output.strip().splitlines()[-1]  # one line: the missing tool, and where the project is
    assert last.startswith("qconvert: error: --build: 'vitis-run' (Vitis HLS) is not on PATH")
    assert last.endswith(f"the project is written and compiled in {prj.resolve()}")
    assert (prj / "firmware" / "myproject.cpp").exists()
    assert list((prj / "firmware").glob("*.so"))  # compiled
    report = json.loads((tmp_path / "r.json").read_text())
    h = report["hls4ml"]
    assert list(h) == [  # the section's keys, in the order users' reports have them
        "argmax_agreement", "exact_fraction", "logits_exact_fraction", "accuracy_keras", "accuracy_hls4ml",
        "max_abs_diff", "first_divergent_layer", "project_dir", "backend", "part", "io_type", "n_samples", "inputs",
        "input_precision", "inputs_rounded", "softmax", "layers_exact", "precisions", "limits", "notes",
        "compile_seconds", "build", "build_error", "strategy", "lut_da", "lut_da_total", "outputs", "bops",
        "bops_per_layer",
    ]  # fmt: skip
    assert h["logits_exact_fraction"] >= 0.999
    assert report["accuracy"]["hls4ml"] == h["accuracy_hls4ml"]
    # the oracle: the written Keras model on the test split gives the accuracy the emulation is compared with
    qmodel = qconvert.load_model(tmp_path / "q.keras")
    keras_pred = qmodel.predict(x[1000:].astype("float32"), verbose=0, batch_size=1024)
    assert h["n_samples"] == 500 and h["inputs"] == "given"
    assert h["accuracy_keras"] == float(np.mean(np.argmax(keras_pred, axis=1) == np.argmax(y[1000:], axis=1)))
    # the cost model at the precisions hls4ml implements: 16-bit inputs to fc1 instead of float32
    assert report["totals"]["bops_hls4ml"] == h["bops"] < report["totals"]["bops"]
    fc1 = next(row for row in report["layers"] if row["name"] == "fc1")
    assert fc1["bops_hls4ml"] == h["bops_per_layer"]["fc1"] < fc1["bops"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--backend", "Quartus9"], ["--backend", "Quartus9", "'vitis', 'vivado'"]),  # closed sets: click's choices
        (["--part", "not a part"], ["part", "not a part"]),
        (["--io-type", "io_serial"], ["--io-type", "io_serial", "'io_parallel', 'io_stream'"]),
        (["--strategy", "Fastest"], ["--strategy", "Fastest", "distributed_arithmetic"]),
    ],
)
def test_cli_bad_hls4ml_options_are_one_line_errors(tmp_path, args, words):
    res = run(JET_H5, "--rules", RULES_6BIT, "-o", tmp_path / "q.keras", "--hls4ml", tmp_path / "prj", *args)
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("qconvert: error:") and all(w in line for w in words)
    assert not (tmp_path / "q.keras").exists()  # checked before any work


def test_cli_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    res = run(JET_H5, "--rules", RULES_6BIT, "-o", tmp_path / "q.keras", "--hls4ml", blocker / "prj")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "not writable" in res.output and str(blocker / "prj") in res.output


def test_cli_layer_the_bridge_cannot_convert(tmp_path):
    model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2DTranspose(2, 3, name="deconv"),
                              keras.layers.Flatten(), keras.layers.Dense(3, name="out")])
    model.save(tmp_path / "m.keras")
    res = run(tmp_path / "m.keras", "--rules", RULES_6BIT, "-o", tmp_path / "q.keras", "--hls4ml", tmp_path / "prj")
    assert res.exit_code == 2 and "Traceback" not in res.output
    line = res.output.strip().splitlines()[-1]
    assert "deconv" in line and "QConv2DTranspose" in line


# --- every preset, and the layer families beyond Dense --------------------------------------------


@pytest.mark.slow
# 4bit and 8bit: every layer family at those presets, in test_hls4ml_families.py
@pytest.mark.parametrize("preset", ["ternary", "binary", "mixed_jet_tagger"])
def test_every_preset_gives_bit_identical_logits(preset, tmp_path):
    qmodel, _ = qconvert.convert(JET_H5, ROOT / "rules" / f"{preset}.yaml")
    result = export(qmodel, Hls4mlOptions(tmp_path / "prj"))  # inputs sampled in the input type's range
    assert result.inputs == "sampled" and result.n_samples >= 1000
    assert result.logits_exact_fraction >= 0.999, result.limits
    assert result.argmax_agreement >= 0.99
    assert all(f == 1.0 for name, f in result.layers_exact.items() if name != "softmax")


@pytest.mark.slow
def test_conv_bn_tanh_sigmoid_pooling_model(tmp_path):
    """QConv2D, unfolded QBatchNormalization, quantized_tanh/sigmoid/relu, average pooling, QDense."""
    layers = keras.layers
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    x = layers.Conv2D(4, 3, name="c1")(inp)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.Activation("tanh", name="t1")(x)
    x = layers.AveragePooling2D(2, name="pool")(x)
    x = layers.Conv2D(4, 2, activation="sigmoid", name="c2")(x)
    x = layers.Flatten(name="flat")(x)
    x = layers.Dense(8, name="d1")(x)
    x = layers.ReLU(name="r1")(x)
    out = layers.Dense(3, activation="softmax", name="out")(x)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    bn = model.get_layer("bn1")  # non-trivial statistics, as after training
    bn.set_weights([rng.uniform(0.5, 1.5, 4), rng.normal(0, 0.2, 4), rng.normal(0, 0.2, 4), rng.uniform(0.5, 2, 4)])
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\n"
        "defaults:\n"
        "  kernel: quantized_bits(6, 0, alpha=1)\n"
        "  bias: quantized_bits(6, 0, alpha=1)\n"
        "  activation: {relu: quantized_relu(6), tanh: quantized_tanh(6), sigmoid: quantized_sigmoid(6)}\n"
        "  batchnorm: quantize\n"
    )
    qmodel, _ = qconvert.convert(model, rules)
    kinds = {layer.name: type(layer).__name__ for layer in qmodel.layers}
    assert kinds["bn1"] == "QBatchNormalization" and kinds["pool"] == "AveragePooling2D"
    x_in = rng.uniform(0, 1, (500, 8, 8, 1))
    result = export(qmodel, Hls4mlOptions(tmp_path / "prj"), x=x_in)
    assert result.logits_exact_fraction >= 0.999, result.limits
    assert result.argmax_agreement >= 0.99
    assert "bn1" in result.limits  # a float BN is not bit-exact by construction, and the report says so


_CSYNTH = """<profile>
  <UserAssignments><TargetClockPeriod>5.00</TargetClockPeriod></UserAssignments>
  <PerformanceEstimates>
    <SummaryOfTimingAnalysis><EstimatedClockPeriod>4.37</EstimatedClockPeriod></SummaryOfTimingAnalysis>
    <SummaryOfOverallLatency><Best-caseLatency>9</Best-caseLatency><Worst-caseLatency>11</Worst-caseLatency>
      <Interval-min>1</Interval-min><Interval-max>1</Interval-max></SummaryOfOverallLatency>
  </PerformanceEstimates>
  <AreaEstimates>
    <Resources><BRAM_18K>4</BRAM_18K><DSP>27</DSP><FF>5312</FF><LUT>21456</LUT></Resources>
    <AvailableResources><BRAM_18K>4320</BRAM_18K><DSP>6840</DSP><FF>2364480</FF><LUT>1182240</LUT></AvailableResources>
  </AreaEstimates>
</profile>
"""


@pytest.mark.slow
def test_build_runs_the_tool_and_reads_its_synthesis_report(tmp_path, monkeypatch):
    """Vitis is not installed here: a stand-in ``vitis-run`` on PATH writes the files Vitis HLS writes
    (solution list and csynth report), so the command hls4ml runs and the report it parses are real."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "csynth.xml").write_text(_CSYNTH)
    tool = bin_dir / "vitis-run"
    tool.write_text(
        "#!/bin/sh\n"
        '[ "$1 $2 $3 $4" = "--tcl build_prj.tcl --mode hls" ] || exit 3\n'
        "mkdir -p myproject_prj/solution1/syn/report\n"
        "echo '<project><solutions><solution name=\"solution1\"/></solutions></project>' > myproject_prj/hls.app\n"
        f"cp {tmp_path / 'csynth.xml'} myproject_prj/solution1/syn/report/myproject_csynth.xml\n"
    )
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin")
    prj = tmp_path / "prj"
    res = run(JET_H5, "--rules", RULES_6BIT, "-o", tmp_path / "q.keras", "--report", tmp_path / "r.json",
              "--hls4ml", prj, "--build")
    assert res.exit_code == 0, res.output
    build = json.loads((tmp_path / "r.json").read_text())["hls4ml"]["build"]
    assert build == {"latency_min": 9, "latency_max": 11, "ii_min": 1, "ii_max": 1, "lut": 21456, "ff": 5312,
                     "dsp": 27, "bram_18k": 4, "clock_ns": 4.37}
    assert "latency 9-11 cycles" in res.output and "DSP 27" in res.output
