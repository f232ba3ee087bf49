"""QAT: accuracy on real data (digits), the CLI's training report, resume after a kill (other backends: test_backends.py)."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import qconvert
from qconvert.cli import cli
from qconvert.demo import digits_mlp, preset, run_case_study
from qconvert.train.qat import TrainOptions, fine_tune

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_digits_6bit_qat_is_within_one_point_of_fp32(digits, digits_fp32):
    study = run_case_study(digits_fp32, digits, [("6-bit", preset("6bit"))], qat_epochs=40)
    fp32, ptq, qat = (study.accuracy(m) for m in ("FP32 baseline", "6-bit PTQ", "6-bit QAT"))
    assert fp32 > 0.9
    assert qat >= fp32 - 0.01, (fp32, ptq, qat)
    assert ptq < qat  # fine-tuning recovers what rounding the weights cost


def test_same_seed_same_training(digits, digits_fp32):
    runs = []
    for _ in range(2):
        qmodel, _ = qconvert.convert(digits_fp32, preset("6bit"))
        _, result = fine_tune(qmodel, digits, TrainOptions(epochs=2, lr=1e-3, batch_size=128, seed=7, verbose=0))
        runs.append(result.history["val_loss"])
    assert runs[0] == runs[1]


def test_early_stopping_restores_the_best_weights(digits, digits_fp32):
    qmodel, _ = qconvert.convert(digits_fp32, preset("6bit"))
    options = TrainOptions(epochs=30, lr=0.5, batch_size=64, patience=2, seed=0, verbose=0)  # a rate that diverges
    qmodel, result = fine_tune(qmodel, digits, options)
    assert result.stopped_early and result.epochs_run < 30
    best = min(result.history["val_loss"])
    assert result.history["val_loss"][result.best_epoch - 1] == best
    final = qmodel.evaluate(digits.x_val, digits.y_val, verbose=0)[0]
    assert final == pytest.approx(best, rel=1e-4)


def test_cli_qat_reports_fp32_ptq_qat_and_writes_the_plot(digits_files, tmp_path):
    model, data = digits_files
    out, report = tmp_path / "q.keras", tmp_path / "r.json"
    result = CliRunner().invoke(cli, [str(model), "-r", str(preset("6bit")), "-o", str(out), "--report", str(report),
                                      "--data", str(data), "--epochs", "3", "--lr", "1e-3", "--batch-size", "64"])
    assert result.exit_code == 0, result.output
    for label in ("FP32 baseline", "converted (PTQ)", "QAT fine-tuned"):
        assert label in result.output
    doc = json.loads(report.read_text())
    acc = doc["accuracy"]
    assert acc["split"] == "test" and acc["samples"] == 360 and acc["loss_function"] == "categorical_crossentropy"
    assert acc["qat"] > acc["ptq"] and acc["fp32"] > 0.9
    ptq, _ = qconvert.convert(qconvert.load_model(model), preset("6bit"))  # the oracle: the PTQ model, evaluated here
    x_test, y_test = np.load(data)["X_test"], np.load(data)["y_test"]
    assert np.mean(np.argmax(ptq.predict(x_test, verbose=0), 1) == np.argmax(y_test, 1)) == pytest.approx(acc["ptq"])
    assert len(doc["per_class"]["qat"]) == 10 and doc["auc"]["qat"] > 0.9
    assert doc["training"]["epochs_run"] == 3 and len(doc["training"]["history"]["loss"]) == 3
    plot = Path(acc["plot"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out}, {plot}" in " ".join(result.output.split())  # the figure is named, not only written
    assert plot.stat().st_mode & 0o777 == out.stat().st_mode & 0o777  # and gets the same mode as the model
    assert not (tmp_path / "q.ckpt").exists()  # finished: no checkpoint left behind
    loaded = qconvert.load_model(out)
    x = np.load(data)["X_test"]
    y = np.load(data)["y_test"]
    assert np.mean(np.argmax(loaded.predict(x, verbose=0), 1) == np.argmax(y, 1)) == pytest.approx(acc["qat"])


def test_data_alone_evaluates_without_training(digits_files, tmp_path):
    model, data = digits_files
    report = tmp_path / "r.json"
    result = CliRunner().invoke(cli, [str(model), "-r", str(preset("6bit")), "-o", str(tmp_path / "q.keras"),
                                      "--report", str(report), "--data", str(data)])
    assert result.exit_code == 0, result.output
    acc = json.loads(report.read_text())["accuracy"]
    assert set(acc) >= {"fp32", "ptq"} and "qat" not in acc
    assert not list(tmp_path.glob("*.png"))


def test_the_demo_models_start_from_the_same_weights_for_the_same_seed():
    """Same --seed, same demo figures, run after run: the builders seed the initial weights."""
    from qconvert.demo import digits_cnn

    for build in (digits_mlp, digits_cnn):
        first = build(seed=3).get_weights()
        np.random.default_rng().normal(size=10)  # unrelated random state in between changes nothing
        again = build(seed=3).get_weights()
        other = build(seed=4).get_weights()
        assert all(np.array_equal(a, b) for a, b in zip(first, again))
        assert not all(np.array_equal(a, b) for a, b in zip(first, other))
