"""`qconvert rtl` always ends: progress per layer, a size budget, a time budget, Ctrl-C (issue 20.7).

da4ml solves each Dense/convolution as a constant-matrix product in numba code that Ctrl-C does not reach; the
solves run in a child process (qconvert.export.rtl.solver) that the CLI ends at once, within budgets that are
refused in one line naming the layer.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from kit import assert_clean_error, run_cli

import qconvert
from qconvert.export.rtl.layers import weights


def _dense_model(path: Path, sizes: tuple[int, ...], bits: int = 6, seed: int = 0) -> Path:
    """A QKeras MLP ``sizes[0] → ... → sizes[-1]`` with ``bits``-bit kernels and an input quantizer, saved."""
    import keras
    from qkeras.qlayers import QActivation, QDense

    keras.utils.set_random_seed(seed)
    inp = keras.Input((sizes[0],), name="x")
    h = QActivation(f"quantized_bits({bits},2,alpha=1)", name="input_q")(inp)
    for i, units in enumerate(sizes[1:]):
        h = QDense(units, kernel_quantizer=f"quantized_bits({bits},0,alpha=1)",
                   bias_quantizer=f"quantized_bits({bits},0,alpha=1)", name=f"fc{i + 1}")(h)
        if i < len(sizes) - 2:
            h = QActivation(f"quantized_relu({bits},2)", name=f"relu{i + 1}")(h)
    keras.Model(inp, h).save(path)
    return path


def test_each_layers_solve_is_reported_with_its_size_and_seconds(tmp_path):
    model = _dense_model(tmp_path / "m.keras", (16, 12, 5))
    out, report = tmp_path / "rtl", tmp_path / "r.json"
    result = run_cli("rtl", model, "-o", out, "--no-synth", "--report", report)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for name, shape in (("fc1", "16×12"), ("fc2", "12×5")):
        start = lines.index(f"rtl: layer '{name}' (QDense): {shape} matrix ...")
        assert lines[start + 1].startswith(f"rtl: layer '{name}' (QDense): solved in ")
    assert lines.index("rtl: starting da4ml's constant-matrix solver ...") < lines.index(
        "rtl: layer 'fc1' (QDense): 16×12 matrix ...")
    section = json.loads(report.read_text())["rtl"]
    assert section["logits_exact_fraction"] == 1.0  # the child's solutions compute what Keras computes
    assert set(section["seconds"]["layers"]) == {"fc1", "fc2"}
    qmodel = qconvert.load_model(model)  # the oracle: nonzero quantized weights (a Dense on a vector: one position)
    assert section["multiplies"] == {n: int(np.count_nonzero(weights(qmodel.get_layer(n), "kernel", "kernel")))
                                     for n in ("fc1", "fc2")}


def test_a_model_past_the_size_budget_is_refused_before_anything_is_traced(tmp_path):
    model = _dense_model(tmp_path / "m.keras", (16, 24, 5))
    out = tmp_path / "rtl"
    result = run_cli("rtl", model, "-o", out, "--max-multiplies", "100")
    qmodel = qconvert.load_model(model)
    counts = {n: int(np.count_nonzero(weights(qmodel.get_layer(n), "kernel", "kernel"))) for n in ("fc1", "fc2")}
    line = assert_clean_error(result, "layer 'fc1' (QDense)", f"{sum(counts.values()):,} multiplies",
                              f"{counts['fc1']:,} of them in this layer", "--max-multiplies", "--prune", "--hls4ml")
    assert "solver" not in result.output  # refused before da4ml's solver started
    assert not out.exists(), line  # nothing written


def test_the_multiplies_of_a_convolution_count_each_output_position(tmp_path):
    import keras
    from qkeras.qconvolutional import QConv2D

    from qconvert.export.rtl.solver import check_size

    inp = keras.Input((6, 5, 2))
    conv = QConv2D(3, (3, 3), padding="same", kernel_quantizer="quantized_bits(4,0,alpha=1)", name="conv")
    qmodel = keras.Model(inp, conv(inp))
    assert check_size(qmodel, 10**6) == {"conv": int(np.count_nonzero(weights(conv, "kernel", "kernel"))) * 6 * 5}


@pytest.mark.slow
def test_a_solve_past_the_time_budget_is_refused_naming_the_layer(tmp_path):
    model = _dense_model(tmp_path / "m.keras", (256, 32), bits=8)  # one solve of several seconds
    start = time.monotonic()
    result = run_cli("rtl", model, "-o", tmp_path / "rtl", "--no-synth", "--solve-timeout", "0.5")
    assert_clean_error(result, "layer 'fc1' (QDense)", "256×32 constant matrix", "0.5 s (--solve-timeout)")
    assert time.monotonic() - start < 60  # the solve was cut short (it alone takes longer)


@pytest.mark.slow
def test_ctrl_c_during_a_solve_ends_the_run_at_once(tmp_path):
    model = _dense_model(tmp_path / "m.keras", (256, 32), bits=8)
    proc = subprocess.Popen([sys.executable, "-m", "qconvert", "rtl", str(model), "-o", str(tmp_path / "rtl"), "--no-synth"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", COLUMNS="200"))
    seen = []
    for line in proc.stderr:  # wait until the big solve is under way
        seen.append(line)
        if "layer 'fc1' (QDense): 256×32 matrix" in line:
            break
    assert proc.poll() is None, "".join(seen)
    solvers = _children(proc.pid, "qconvert.export.rtl.child")
    assert len(solvers) == 1  # the solve runs in a child process
    time.sleep(1.0)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    waited = time.monotonic() - sent
    assert proc.returncode == 130, err
    assert "RTL interrupted while da4ml solved layer 'fc1' (QDense)" in err and "Traceback" not in err
    assert waited < 5, waited  # da4ml's solve alone goes on for tens of seconds (benchmarks/bench_rtl.py: under 1 s)
    assert not Path(f"/proc/{solvers[0]}").exists()  # the solver process was ended too, not left running


def _children(pid: int, marker: str) -> list[int]:
    """Processes whose parent is ``pid`` and whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid \
                    and marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_yosys_past_its_time_budget_is_stopped_and_da4mls_estimate_stands(tmp_path):
    model = _dense_model(tmp_path / "m.keras", (16, 12, 5))
    report = tmp_path / "r.json"
    result = run_cli("rtl", model, "-o", tmp_path / "rtl", "--no-emulate", "--synth-timeout", "0.01", "--report", report)
    assert result.exit_code == 0, result.output  # the RTL stands: a note, not an error
    section = json.loads(report.read_text())["rtl"]
    assert section["synth"] is None and "took more than 0.01 s; stopped" in section["synth_error"]
    assert section["lut_da4ml"] > 0
    assert any("--synth-timeout" in note and "da4ml's estimate stands" in note for note in section["notes"])


def test_a_ctrl_c_whose_keyboardinterrupt_was_dropped_still_ends_the_stage():
    """Python drops a KeyboardInterrupt raised inside a garbage-collector callback ("Exception ignored in ...");
    a fresh user saw `qconvert rtl` then finish with exit 0. The stage remembers the signal and stops at its next step."""
    from qconvert.errors import Interrupted
    from qconvert.export.rtl.solver import Interrupts

    before = signal.getsignal(signal.SIGINT)
    with Interrupts(lambda: "during the trace; nothing written") as interrupts:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)  # the handler runs here
        except KeyboardInterrupt:
            pass  # dropped, as in a gc callback
        with pytest.raises(Interrupted, match=r"^RTL interrupted during the trace; nothing written$"):
            interrupts.check()
    assert signal.getsignal(signal.SIGINT) is before  # the previous handler is back


@pytest.mark.slow
def test_the_solver_process_dies_with_a_killed_parent(tmp_path):
    model = _dense_model(tmp_path / "m.keras", (256, 32), bits=8)
    proc = subprocess.Popen([sys.executable, "-m", "qconvert", "rtl", str(model), "-o", str(tmp_path / "rtl"), "--no-synth"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    for line in proc.stderr:
        if "layer 'fc1' (QDense): 256×32 matrix" in line:
            break
    solvers = _children(proc.pid, "qconvert.export.rtl.child")
    assert len(solvers) == 1
    proc.send_signal(signal.SIGTERM)  # not Ctrl-C: nothing in the parent runs
    proc.wait(timeout=30)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{solvers[0]}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    status = Path(f"/proc/{solvers[0]}/stat").read_text().split()[2] if Path(f"/proc/{solvers[0]}").exists() else "gone"
    assert status in ("gone", "Z"), status  # ended with its parent (a zombie until init reaps it at most)
