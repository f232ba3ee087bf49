"""All three Keras backends: the seed's headline is that QKeras v3 trains on TensorFlow, JAX and PyTorch.

JAX and PyTorch each run ``backend_e2e.py`` once: conversion, calibration, pruned QAT, save/load and hls4ml in one
process. TensorFlow, the default, runs the same stages throughout the rest of the suite (test_prune.py's
pruned QAT through hls4ml, test_calibrate.py, test_train.py), so it is not run a second time here."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: What TensorFlow's C++ side prints when it starts (absl, CUDA probing, CPU features).
TF_STARTUP = ("absl::InitializeLog", "cudart_stub", "cpu_feature_guard", "oneDNN")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])  # TensorFlow runs these stages in the rest of the suite
def test_convert_calibrate_qat_save_export_on_each_backend(backend, tmp_path):
    pytest.importorskip(backend)
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, str(HERE / "backend_e2e.py"), backend, str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))
    assert line.split()[1:4] == [backend, "32", "1.0"]  # automatic batch size; logits bit-identical
    pruned_only, qat = map(float, line.split()[5:7])
    assert qat < pruned_only  # QAT learned: the pruned model it trained beats the same pruning without training


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch"])  # the backend furthest from TensorFlow; hls4ml and QKeras still import it
def test_cli_keeps_tensorflow_startup_lines_off_the_terminal_on_any_backend(backend, tmp_path):
    pytest.importorskip(backend)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | {"KERAS_BACKEND": backend}
    from qconvert.demo import digits_mlp

    digits_mlp(0).save(tmp_path / "m.keras")  # saved here (TensorFlow): a .keras file is the same on every backend
    # the CLI's start-up is what is checked (test_convert_calibrate_qat_save_export_on_each_backend trains and
    # exports on this backend)
    proc = subprocess.run([sys.executable, "-m", "qconvert", str(tmp_path / "m.keras"), "--rules", "6bit",
                           "-o", str(tmp_path / "q.keras")], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not [l for l in proc.stderr.splitlines() if any(t in l for t in TF_STARTUP)], proc.stderr[-3000:]
    assert "wrote" in proc.stdout and (tmp_path / "q.keras").exists(), proc.stdout
