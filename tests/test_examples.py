"""The shipped examples and ``qconvert demo`` run end to end, offline, and fail clearly without data."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from qconvert.demo import DEMO_OUTPUTS, check_demo_folder
from qconvert.errors import OutputError

ROOT = Path(__file__).resolve().parent.parent
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", **env)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=environment, cwd=tmp_path,
                          timeout=900)


def _accuracies(stdout: str) -> dict[str, float]:
    """``model ... accuracy`` rows of the comparison table: {row label: accuracy}."""
    rows = {}
    for line in stdout.splitlines():
        match = re.match(r"\s*[│|]?\s*(FP32[^│|]*|[0-9]-bit[^│|]*?)\s*[│|]\s*([01]\.\d{4})", line)
        if match:
            rows[match.group(1).strip()] = float(match.group(2))
    return rows


@pytest.mark.slow
def test_jet_example_runs_on_the_synthetic_stand_in(tmp_path):
    proc = _run([str(ROOT / "examples/jet_tagging/run.py"), "--synthetic", "--samples", "20000",
                 "--baseline-epochs", "3", "--qat-epochs", "2"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SYNTHETIC" in proc.stdout  # never mistaken for the physics data
    acc = _accuracies(proc.stdout)
    assert any(k.startswith("FP32") for k in acc) and any("QAT" in k for k in acc), proc.stdout
    assert all(0.2 < v <= 1.0 for v in acc.values()), acc  # five classes: above chance


def test_jet_example_offline_without_data_fails_clearly(tmp_path):
    proc = _run([str(ROOT / "examples/jet_tagging/run.py"), "--cache", str(tmp_path / "cache")], tmp_path, **OFFLINE)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "hls4ml_lhc_jets_hlf" in last and "--synthetic" in last and "--data" in last
    assert "Traceback" not in proc.stderr


def test_jet_example_missing_local_copy_fails_clearly(tmp_path):
    proc = _run([str(ROOT / "examples/jet_tagging/run.py"), "--data", "nope.csv"], tmp_path)
    assert proc.returncode == 2
    assert "nope.csv: no such file" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_demo_prints_fp32_ptq_and_qat_side_by_side_and_keeps_them_with_o(tmp_path):
    proc = _run(["-m", "qconvert", "demo", "--model", "mlp", "--epochs", "5", "-o", "out"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    acc = _accuracies(proc.stdout)
    fp32 = [v for k, v in acc.items() if k.startswith("FP32")]
    assert fp32 and fp32[0] > 0.9, proc.stdout
    for bits in ("6-bit", "4-bit"):
        assert any(k.startswith(bits) and "QAT" in k for k in acc), proc.stdout
        assert any(k.startswith(bits) and "PTQ" in k for k in acc), proc.stdout
    # -o: what a user can open and run again: the models, the data, the figure, the hls4ml projects; nothing else
    # (without -o the hls4ml projects go to a temporary folder and nothing is written)
    out = tmp_path / "out"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert sorted(p.name for p in out.iterdir()) == sorted(DEMO_OUTPUTS)
    assert (out / "hls4ml" / "6_bit" / "firmware").is_dir()
    again = _run(["-m", "qconvert", str(out / "fp32.keras"), "--rules", "6bit", "--data", str(out / "digits.npz"),
                  "-o", str(tmp_path / "q.keras")], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert abs(_accuracies(again.stdout)["FP32 baseline"] - fp32[0]) < 1e-9  # the same model on the same test split


def test_demo_o_never_overwrites_what_it_did_not_write(tmp_path):
    """demo -o into a folder holding the user's files: one line, exit 2, before any training; an earlier demo's
    folder is replaced and said so."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    (mine / "fp32.keras").write_text("an earlier demo's")
    proc = _run(["-m", "qconvert", "demo", "-o", "mine"], tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"qconvert: error: {Path('mine')}: holds notes.txt, which the demo did not write; choose a new or empty folder")
    assert (mine / "notes.txt").read_text() == "keep me" and (mine / "fp32.keras").read_text() == "an earlier demo's"
    (mine / "notes.txt").unlink()
    (mine / ".DS_Store").write_text("")  # a file the desktop makes on its own is not the user's work
    assert check_demo_folder(mine) == ["fp32.keras"] and check_demo_folder(tmp_path / "new") == []
    (tmp_path / "a_file").write_text("")
    with pytest.raises(OutputError, match="a_file exists and is not a folder"):  # -o below a file: one line
        check_demo_folder(tmp_path / "a_file" / "sub")
