"""`qconvert search` whose points are converged models: multi-fidelity pruners, the front re-trained, target_ebops.

On the digits MLP (``digits_files``), a few trials of 1–3 epochs: what the options do, not how well they search
(benchmarks/bench_search.py measures that).
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import numpy as np
import pytest
from kit import assert_clean_error, run_cli
from test_search import SPACE  # the digits MLP's space: input, kernel and activation bits, fc1's sparsity

from qconvert.errors import RuleError
from qconvert.rules import loads_rules
from qconvert.search import loads_space
from qconvert.search.pruning import BUCKET_BASE, cost_bucket
from qconvert.train.target import TARGET_LR, target_batch_size

#: Every trial costs the same (the activations' integer bits move their range, not their width): one cost bucket.
SAME_COST = """\
version: 1
input: quantized_bits(8, auto)
defaults:
  kernel: quantized_bits(4, auto, alpha=1)
  bias: quantized_bits(8, auto, alpha=1)
  activation: {quantizer: quantized_relu, bits: 4, integer: [0, 1, 2, 3]}
rules:
  - match: {type: [Activation], activation: softmax}
    keep: true
"""


def write(folder: Path, text: str, name: str = "space.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def header_command(rule_file: Path) -> list[str]:
    """The reproduce command in a front/NN.yaml header, as arguments after ``qconvert``."""
    lines = rule_file.read_text().splitlines()
    command = next(line for line in lines if line.startswith("#   qconvert "))
    return shlex.split(command.removeprefix("#   qconvert "))


# --- the space's training mapping: no Keras --------------------------------------------------------------
def test_a_space_may_vary_target_ebops_outside_its_rule_files():
    space = loads_space(SPACE + "training: {target_ebops: [null, 2000, 8000]}\n", "space.yaml")
    dim = space.dimension("training.target_ebops")
    assert (dim.kind, dim.choices, dim.line) == ("categorical", (None, 2000, 8000), 12)
    params = {d.name: d.values()[-1] for d in space.dimensions}
    assert space.training(params) == {"target_ebops": 8000}
    text = space.yaml(params)
    assert "training" not in text and "target_ebops" not in text
    again = loads_rules(text)  # front/NN.yaml stays an ordinary rule file
    assert dict(again.defaults.kernel.params)["bits"] == 6
    assert space.varies_training
    assert not loads_space(SPACE + "training: {target_ebops: [null]}\n").varies_training
    ranged = loads_space(SPACE + "training:\n  target_ebops: {low: 1000, high: 64000, log: true}\n", "s.yaml")
    assert ranged.dimension("training.target_ebops").kind == "int" and ranged.varies_training
    fixed = loads_space(SPACE.replace("bits: [4, 6]", "bits: 4") + "training: {target_ebops: 5000}\n")
    assert fixed.training({d.name: d.first for d in fixed.dimensions}) == {"target_ebops": 5000}
    assert loads_space(SPACE).training({d.name: d.first for d in loads_space(SPACE).dimensions}) == {}


@pytest.mark.parametrize(
    "tail, line, key, says",
    [
        ("training: {target_ebops: [0, 2000]}\n", 12, "training.target_ebops", "must be a positive number"),
        ("training: {target_ebops: [abc]}\n", 12, "training.target_ebops", "got 'abc'"),
        ("training: {target_ebops: {low: 0, high: 10}}\n", 12, "training.target_ebops", "must be positive"),
        ("training: {epochs: [3, 5]}\n", 12, "training.epochs", "unknown key; expected one of target_ebops"),
        ("training: [1, 2]\n", 12, "training", "expected a mapping of training options"),
    ],
)
def test_a_bad_training_value_names_file_line_and_key(tmp_path, tail, line, key, says):
    with pytest.raises(RuleError) as error:
        loads_space(SPACE + tail, "space.yaml")
    assert f"space.yaml:{line}: {key}: " in str(error.value) and says in str(error.value)
    assert_clean_error(run_cli("rules", "check", write(tmp_path, SPACE + tail)), f":{line}: {key}", says)


@pytest.mark.slow
def test_a_space_may_vary_target_ebops_and_each_trial_lands_under_its_target(tmp_path, digits_files):
    model, data = digits_files
    space = write(tmp_path, SPACE + "training: {target_ebops: [20000, 60000]}\n")
    out = tmp_path / "out"
    result = run_cli("search", model, "--rules", space, "--data", data, "-o", out, "--trials", "1", "--epochs", "2",
                     "--reference", "none", "--hls4ml")  # one trial: its target is drawn from the space
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "search.json").read_text())
    done = [t for t in summary["trials"] if t["state"] == "COMPLETE"]
    assert done
    for t in done:
        assert t["ebops"] <= t["params"]["training.target_ebops"], t
    # --hls4ml: the main job on the chosen rule file trains to the chosen trial's target too, and gives its model
    chosen = next(t for t in done if t["number"] == summary["chosen"])
    again, main = summary["reproduced"], json.loads((out / "chosen.json").read_text())
    assert main["training"]["target_ebops"]["target"] == chosen["params"]["training.target_ebops"]
    assert again["ebops"] == chosen["ebops"] <= chosen["params"]["training.target_ebops"]
    assert again["hls4ml"]["logits_exact_fraction"] == 1.0
    # no --lr, --batch-size: cost-aware QAT's own defaults, not the main job's fine-tuning ones
    settings, n_train = main["training"]["target_ebops"]["settings"], len(np.load(data)["X_train"])
    assert (settings["lr"], settings["batch_size"]) == (TARGET_LR, target_batch_size(n_train))


@pytest.mark.parametrize(
    "args, says",
    [
        (("--pruner", "median"), "Invalid value for '--pruner': 'median' is not one of 'dominance', 'halving', "
                                 "'hyperband', 'none'"),
        (("--pruner", "halving", "--no-early-stop"), "--no-early-stop means --pruner none"),
        (("--warmup-epochs", "0"), "Invalid value for '--warmup-epochs': 0 is not in the range x>=1"),
        (("--retrain-epochs", "0"), "Invalid value for '--retrain-epochs': 0 is not in the range x>=1"),
        (("--retrain-epochs", "-3"), "Invalid value for '--retrain-epochs': -3 is not in the range x>=1"),
    ],
)
def test_bad_pruner_and_retrain_values_exit_2_in_one_line_before_anything_runs(tmp_path, digits_files, args, says):
    model, data = digits_files
    out = tmp_path / "out"
    result = run_cli("search", model, "--rules", write(tmp_path, SPACE), "--data", data, "-o", out, "--trials", "2",
                     "--epochs", "1", *args)
    assert_clean_error(result, says)
    assert not out.exists()


def test_cost_buckets_are_powers_of_two():
    assert [cost_bucket(x) for x in (0.0, 0.5, 1.0, 1.99, 2.0, 3000.0, 4096.0, math.nan)] == [0, 0, 0, 0, 1, 11, 12, 0]
    assert BUCKET_BASE ** cost_bucket(20_000.0) <= 20_000.0 < BUCKET_BASE ** (cost_bucket(20_000.0) + 1)


def test_the_front_and_the_chosen_point_are_the_retrained_models():
    from rich.console import Console

    from qconvert.search.front import SearchResult

    def trial(n, val, ebops, retrained=None):
        row = {"number": n, "state": "COMPLETE", "params": {}, "val_accuracy": val, "test_accuracy": val,
               "ebops": ebops, "dsp": 0}
        if isinstance(retrained, dict):
            row["retrained"] = retrained
        elif retrained is not None:
            row["retrained"] = {"val_accuracy": retrained[0], "test_accuracy": retrained[0], "ebops": retrained[1],
                                "dsp": 0}
        return row

    trials = [trial(0, 0.80, 100.0, (0.95, 110.0)),  # the search's cheapest: after re-training, within 1 pp of FP32
              trial(1, 0.90, 200.0, (0.94, 190.0)),  # dominated by trial 0 once both are re-trained
              trial(2, 0.93, 400.0, (0.97, 420.0)),
              trial(3, 0.85, 300.0),  # not on the search's front: not re-trained
              trial(4, 0.60, 150.0, {"error": "out of memory"})]  # off the search's front now; its error is kept
    result = SearchResult(outdir=".", cost="ebops", settings={"epochs": 2}, fp32={"val_accuracy": 0.96},
                          references={"6bit": {"val_accuracy": 0.9, "ebops": 900.0, "dsp": 0,
                                               "retrained": {"val_accuracy": 0.96, "ebops": 950.0, "dsp": 0}}},
                          trials=trials, front=[], chosen=None, retrain_epochs=20)
    result.choose()
    assert result.search_front == [0, 1, 2]
    assert [t["number"] for t in result.front] == [0, 2] and result.chosen["number"] == 0
    assert result.retrain_errors == {"4": "out of memory"}
    console = Console(width=200, record=True)
    console.print(result.table())
    text = console.export_text()
    assert "re-trained for 20 epochs (2 in the search)" in text and "search val" in text
    assert "0.9500" in text and "0.9600" in text  # trial 0 and the reference, re-trained
    assert result._repr_png_()[:4] == b"\x89PNG"
    result.retrain_epochs = None  # the same trials judged by their short runs
    result.choose()
    assert [t["number"] for t in result.front] == [0, 1, 2] and result.chosen["number"] == 2


# --- searches --------------------------------------------------------------------------------------------
def pruned_search(folder: Path, files: tuple[Path, Path], pruner: str, trials: int) -> tuple[Path, dict]:
    """``qconvert search`` of the digits MLP over SAME_COST, 3 epochs, ``--pruner PRUNER``: (out, search.json)."""
    model, data = files
    out = folder / "out"
    result = run_cli("search", model, "--rules", write(folder, SAME_COST), "--data", data, "-o", out,
                     "--trials", str(trials), "--epochs", "3", "--pruner", pruner, "--reference", "none")
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "search.json").read_text())


@pytest.mark.slow
def test_halving_stops_trials_only_against_trials_of_about_their_cost(tmp_path, digits_files):
    import optuna

    out, summary = pruned_search(tmp_path, digits_files, "halving", 4)
    trials = {t["number"]: t for t in summary["trials"]}
    assert summary["settings"]["pruner"] == "halving" and summary["counts"].get("PRUNED", 0) >= 1, summary["counts"]
    storage = f"sqlite:///{out / 'study.db'}"
    buckets = [s.study_name for s in optuna.get_all_study_summaries(storage) if "/rungs/halving/" in s.study_name]
    assert buckets
    for name in buckets:
        shadows = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
        bucket = int(name.rsplit("^", 1)[1])
        for shadow in shadows:  # a bucket holds only trials whose cost estimate lies in it
            trial = trials[shadow.user_attrs["search_trial"]]
            assert cost_bucket(trial["cost_estimate"]) == bucket
            assert shadow.state.name == trial["state"]
            assert shadow.intermediate_values == {e + 1: pytest.approx(a) for e, a in enumerate(trial["curve"])}
        for shadow in shadows:  # stopped at a rung: a trial of its bucket was more accurate there
            if shadow.state.name == "PRUNED":
                trial = trials[shadow.user_attrs["search_trial"]]
                step = trial["epochs_run"]
                assert step < 3 and f"epoch {step}: validation accuracy" in trial["stopped"]
                assert any(o.intermediate_values.get(step, -1) > shadow.intermediate_values[step] for o in shadows)
    # the stopped trials count towards --trials and are not on the front
    assert all(trials[n]["state"] == "COMPLETE" for n in summary["front"])


@pytest.mark.slow
def test_hyperband_runs_a_study_to_its_size(tmp_path, digits_files):
    _, summary = pruned_search(tmp_path, digits_files, "hyperband", 3)
    assert sum(summary["counts"].get(s, 0) for s in ("COMPLETE", "PRUNED")) == 3
    assert summary["settings"]["pruner"] == "hyperband" and summary["front"]


@pytest.mark.slow
def test_the_retrained_front_is_what_its_rule_files_reproduce_through_the_main_job(tmp_path, digits_files):
    model, data = digits_files
    out = tmp_path / "out"
    args = ["search", model, "--rules", write(tmp_path, SPACE), "--data", data, "-o", out, "--trials", "2",
            "--epochs", "1", "--retrain-epochs", "2", "--no-early-stop", "--reference", "4bit"]
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    assert "re-trained for 2 epochs (1 in the search)" in result.output
    summary = json.loads((out / "search.json").read_text())
    assert summary["retrain_epochs"] == 2 and summary["settings"]["retrain_epochs"] == 2
    trials = {t["number"]: t for t in summary["trials"]}
    front = [trials[n] for n in summary["front"]]
    assert front and set(summary["front"]) <= set(summary["search_front"])
    for t in [trials[n] for n in summary["search_front"]]:  # every point of the search's front was re-trained
        assert t["epochs_run"] == 1 and t["retrained"]["epochs_run"] == 2 and len(t["retrained"]["curve"]) == 2
    reference = summary["references"]["4bit"]
    assert reference["epochs_run"] == 1 and reference["retrained"]["epochs_run"] == 2
    # the front and the chosen point are the re-trained models': non-dominated and chosen on their validation accuracy
    figures = [t["retrained"] for t in front]
    assert [f["ebops"] for f in figures] == sorted(f["ebops"] for f in figures)
    assert [f["val_accuracy"] for f in figures] == sorted(f["val_accuracy"] for f in figures)
    fp32 = summary["fp32"]["val_accuracy"]
    within = [t for t in front if t["retrained"]["val_accuracy"] >= fp32 - 0.01]
    chosen = within[0] if within else max(front, key=lambda t: t["retrained"]["val_accuracy"])
    assert summary["chosen"] == chosen["number"]
    # each front/NN.yaml's header gives the re-trained figures and the command that makes that very model
    for t in front:
        rule_file = out / t["rules_file"]
        text = rule_file.read_text()
        assert f"trial {t['number']}, re-trained for 2 epochs through the main job: validation accuracy " \
               f"{t['retrained']['val_accuracy']:.4f}" in text
        assert f"In the search (1 epochs): validation accuracy {t['val_accuracy']:.4f}" in text
        command = header_command(rule_file)
        assert command[command.index("--epochs") + 1] == "2" and command[command.index("--seed") + 1] == "0"
    rule_file = out / chosen["rules_file"]
    report = tmp_path / "main.json"
    again = run_cli(*header_command(rule_file), "-o", tmp_path / "main.keras", "--report", report)
    assert again.exit_code == 0, again.output
    main = json.loads(report.read_text())
    assert main["accuracy"]["split"] == "test" and main["training"]["epochs_run"] == 2
    assert main["accuracy"]["qat"] == chosen["retrained"]["test_accuracy"]
    assert main["totals"]["ebops"] == chosen["retrained"]["ebops"]
    assert main["training"]["history"]["val_accuracy"] == pytest.approx(chosen["retrained"]["curve"], abs=0)
    # --resume with nothing left to run re-trains nothing: the same figures, to the last digit
    resumed = run_cli(*args, "--resume")
    assert resumed.exit_code == 0, resumed.output
    after = json.loads((out / "search.json").read_text())
    assert [t.get("retrained") for t in after["trials"]] == [t.get("retrained") for t in summary["trials"]]
