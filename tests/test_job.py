"""The main job's settings object: one seed, the "X needs Y" rules in Python too, the demo through the main job."""

from __future__ import annotations

import json

import numpy as np
import pytest
from kit import assert_clean_error, run_cli

import qconvert
from qconvert.errors import SettingsError
from qconvert.pipeline import DataOptions, Job, Outputs, convert_file, run
from qconvert.train.data import load_data
from qconvert.train.qat import TrainOptions


def _calibration(section: dict) -> list:
    """Every calibration entry (resolved bits, the measured value, the clipped fractions), as JSON holds it."""
    return json.loads(json.dumps(section["entries"]))


def test_seed_without_epochs_draws_the_calibration_rows(digits_files, tmp_path):
    """Bug: `--seed` was ignored without `--epochs` (calibration on seed 0's rows) while `rules show` used it."""
    model, data = digits_files
    reports = {}
    for seed in (0, 7):
        report = tmp_path / f"r{seed}.json"
        result = run_cli(model, "--rules", "6bit-auto", "--data", data, "--seed", seed, "--calibration-rows", 50,
                         "-o", tmp_path / f"q{seed}.keras", "--report", report)
        assert result.exit_code == 0, result.output
        reports[seed] = json.loads(report.read_text())
    # the oracle: the calibration rules show computes on the rows of that seed
    for seed in (0, 7):
        x = load_data(data, seed=seed).calibration_rows(50, seed=seed)
        _, calibration = qconvert.calibrated_plan(model, "6bit-auto", x)
        assert _calibration(reports[seed]["calibration"]) == _calibration(calibration.to_dict())
    assert _calibration(reports[0]["calibration"]) != _calibration(reports[7]["calibration"])  # 50 rows of another seed: other percentiles


def test_training_without_data_is_refused_in_python_too(digits_files, tmp_path):
    """Bug: convert_file(train=...) without data silently trained nothing; the check lived only in the CLI."""
    model, _ = digits_files
    out = tmp_path / "q.keras"
    with pytest.raises(SettingsError, match="training needs data"):
        convert_file(model, "6bit", output=out, train=TrainOptions(epochs=10))
    with pytest.raises(SettingsError, match="training needs data"):
        Job(model, "6bit", train=TrainOptions(epochs=3), outputs=Outputs(out))
    assert not out.exists()
    assert_clean_error(run_cli(model, "--rules", "6bit", "--epochs", 3, "-o", out), "--epochs needs --data")
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--distill", "--data", "D"], "--distill needs --epochs"),
    (["--calibration-rows", "10"], "--calibration-rows needs --data"),
    (["--build"], "need --hls4ml DIR"),
    (["--strategy", "Resource"], "need --hls4ml DIR"),
])
def test_cli_option_rules_come_from_the_job(args, message, digits_files, tmp_path):
    model, data = digits_files
    args = [str(data) if a == "D" else a for a in args]
    assert_clean_error(run_cli(model, "--rules", "6bit", "-o", tmp_path / "q.keras", *args), message)
    with pytest.raises(SettingsError, match=message.split()[0]):
        Job.from_options(str(model), "6bit", **_flat(args))


def _flat(args: list[str]) -> dict:
    flags = {"--distill": ("distill", True), "--build": ("build", True)}
    out, i = {}, 0
    while i < len(args):
        if args[i] in flags:
            key, value = flags[args[i]]
            i += 1
        else:
            key, value = args[i].lstrip("-").replace("-", "_"), args[i + 1]
            value = int(value) if key == "calibration_rows" else value
            i += 2
        out[key] = value
    return out


def test_one_seed_per_job(digits_files):
    model, data = digits_files
    job = Job(model, "6bit", seed=5, data=DataOptions(data), train=TrainOptions(epochs=1))
    assert job.train.seed == 5  # the job's seed is the training's
    with pytest.raises(SettingsError, match="two seeds"):
        Job(model, "6bit", seed=5, data=DataOptions(data), train=TrainOptions(epochs=1, seed=3))


@pytest.mark.slow
def test_case_study_rows_are_what_the_main_job_computes(digits, digits_fp32, digits_files, tmp_path):
    """Bug: the demo trained with its own learning rate, batch size and patience."""
    from qconvert.demo import preset, run_case_study

    study = run_case_study(digits_fp32, digits, [("6-bit", preset("6bit"))], qat_epochs=3, seed=0)
    model, data = digits_files
    result = run(Job(model, "6bit", seed=0, data=DataOptions(data), train=TrainOptions(epochs=3, verbose=0),
                     outputs=Outputs(tmp_path / "q.keras")))
    accuracy = result.report.sections["accuracy"]
    assert study.accuracy("6-bit QAT") == accuracy["qat"]
    assert study.accuracy("6-bit PTQ") == accuracy["ptq"]
    assert study.accuracy("FP32 baseline") == accuracy["fp32"]
    assert np.isfinite(accuracy["qat"])


@pytest.mark.parametrize("option, what", [("--report", "the report"), ("--plot", "the training figure"),
                                          ("-o", "the converted model")])
def test_every_output_path_is_checked_before_training(digits_files, tmp_path, option, what):
    """A path that cannot be written fails in one line before the first epoch, and nothing is written."""
    model, data = digits_files
    work = tmp_path / "work"
    work.mkdir()
    blocker = work / "a_file"
    blocker.write_text("")
    outputs = {"-o": work / "q.keras", "--report": work / "r.json", "--plot": work / "fig.png"}
    outputs[option] = blocker / "x.keras" if option == "-o" else blocker / "x.out"  # its folder is a file
    args = [a for key, path in outputs.items() for a in (key, path)]
    result = run_cli(model, "-r", "6bit", "--data", data, "--epochs", "50", *args)
    assert_clean_error(result, "a_file is a file, not a folder", f"for {what}")
    assert sorted(p.name for p in work.iterdir()) == ["a_file"]  # no model, no checkpoint, no figure


def test_the_layer_table_is_printed_before_training(digits_files, tmp_path):
    """A wrong rule shows before a long QAT: the conversion's table comes first, the trained model's after it."""
    model, data = digits_files
    result = run_cli(model, "-r", "6bit", "--data", data, "--epochs", "1", "-o", tmp_path / "q.keras")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    first, accuracy = text.find("before QAT"), text.find("accuracy on the")
    assert -1 < first < text.find("┏", first) < accuracy, text[:2000]  # its table, before the trained model's figures
    assert text.count("EBOPs ┃") >= 2  # then the trained model's table
    assert run_cli(model, "-r", "6bit", "-o", tmp_path / "p.keras").stdout.count("before QAT") == 0  # no training


@pytest.mark.parametrize("option", ["--report", "--plot"])
def test_no_output_is_written_over_the_model_or_another_output(digits_files, tmp_path, option):
    """--report or --plot naming the converted model, or the input model: one line before anything runs."""
    model, data = digits_files
    before = model.read_bytes()
    out = tmp_path / "q.keras"
    for target, says in ((out, "is both the converted model (-o) and"), (model, "is both the input model and")):
        result = run_cli(model, "-r", "6bit", "--data", data, "--epochs", "50", "-o", out, option, target)
        assert_clean_error(result, says)
    assert model.read_bytes() == before and not out.exists()


def test_the_figure_is_written_in_the_format_its_name_says(digits_files, tmp_path):
    """--plot fig.txt would hold a PNG under a text name: refused before training; .svg writes an SVG."""
    model, data = digits_files
    refused = run_cli(model, "-r", "6bit", "--data", data, "--epochs", "50", "-o", tmp_path / "q.keras",
                      "--plot", tmp_path / "fig.txt")
    assert_clean_error(refused, "fig.txt: --plot writes a figure; name a .png, .pdf, .svg file")
    assert list(tmp_path.iterdir()) == []
    result = run_cli(model, "-r", "6bit", "--data", data, "--epochs", "1", "-o", tmp_path / "q.keras",
                     "--plot", tmp_path / "fig.svg")
    assert result.exit_code == 0, result.output
    assert b"<svg" in (tmp_path / "fig.svg").read_bytes()[:2000]
