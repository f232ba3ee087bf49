"""`qconvert search`: spaces, trials through the main job's stages, the front, workers, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import numpy as np
import pytest
from kit import run_cli as run

from qconvert.rules import load_rules, loads_rules
from qconvert.search import SearchSettings, StudyOptions, load_space, loads_space, pareto_front, search
from qconvert.search.front import SearchResult

ROOT = Path(__file__).resolve().parent.parent

SPACE = """\
version: 1
input: {quantizer: quantized_bits, bits: [6, 8], integer: auto}
defaults:
  kernel: {quantizer: quantized_bits, bits: [3, 4, 6], integer: auto, alpha: 1}
  bias: quantized_bits(8, auto, alpha=1)
  activation: {quantizer: quantized_relu, bits: [4, 6], integer: auto}
rules:
  - match: {name: fc1}
    prune: {sparsity: {low: 0.5, high: 0.9, step: 0.2}}
  - match: {type: [Activation], activation: softmax}
    keep: true
"""


def write_space(folder: Path, text: str = SPACE) -> Path:
    path = folder / "space.yaml"
    path.write_text(text)
    return path


def small_search(folder: Path, case: tuple[Path, Path], *args: str) -> tuple[Path, dict]:
    """``qconvert search`` of the digits MLP over SPACE without early stopping, into ``folder/out``: (out, search.json)."""
    model, data = case
    out = folder / "out"
    result = run("search", model, "--rules", write_space(folder), "--data", data, "-o", out, "--no-early-stop", *args)
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "search.json").read_text())



@pytest.fixture
def case(digits_files) -> tuple[Path, Path]:
    """The digits MLP (FP32, trained) as a .keras file, and its data with train/val/test splits."""
    return digits_files


# --- spaces: no Keras, no training -----------------------------------------------------------------
def test_space_dimensions_sizes_and_concrete_rule_files():
    space = loads_space(SPACE, "space.yaml")
    assert [(d.name, d.line, d.kind) for d in space.dimensions] == [
        ("input.bits", 2, "categorical"),
        ("defaults.kernel.bits", 4, "categorical"),
        ("defaults.activation.bits", 6, "categorical"),
        ("rules[0].prune.sparsity", 9, "float"),
    ]
    assert space.dimension("rules[0].prune.sparsity").values() == [0.5, 0.7, 0.9]
    assert space.size == 2 * 3 * 2 * 3
    params = {"input.bits": 8, "defaults.kernel.bits": 4, "defaults.activation.bits": 6, "rules[0].prune.sparsity": 0.7}
    text = space.yaml(params, "a header")
    assert text.startswith("# a header\n")
    again = loads_rules(text, "front.yaml")  # what front/NN.yaml holds is an ordinary rule file
    direct = space.ruleset(params)
    assert (again.input, again.defaults, [(r.match, r.settings, r.keep) for r in again.rules]) == \
           (direct.input, direct.defaults, [(r.match, r.settings, r.keep) for r in direct.rules])
    assert dict(again.input.params) == {"bits": 8, "integer": "auto"}
    assert dict(again.defaults.kernel.params)["bits"] == 4
    assert again.rules[0].settings.prune.sparsity == 0.7
    assert again.rules[1].match.type == ("Activation",)  # a list inside match is a selector, not a choice


@pytest.mark.parametrize(
    "edit, line, key, says",
    [
        (("bits: [3, 4, 6]", "bits: []"), 4, "defaults.kernel.bits", "empty choice list"),
        (("{low: 0.5, high: 0.9, step: 0.2}", "[0.5, 1.5]"), 9, "rules[0].prune.sparsity", "choice 1.5 is invalid"),
        (("bits: [4, 6], integer", "bits: [4, 0], integer"), 6, "defaults.activation.bits", "choice 0 is invalid"),
        (("  bias:", "  biass:"), 5, "defaults.biass", "unknown key"),
        (("{low: 0.5, high: 0.9, step: 0.2}", "{low: 0.9, high: 0.5}"), 9, "rules[0].prune.sparsity", "empty range"),
        (("step: 0.2}", "stpe: 0.2}"), 9, "rules[0].prune.sparsity.stpe", "unknown range key 'stpe'"),
        (("step: 0.2}", "step: 0.3}"), 9, "rules[0].prune.sparsity", "not a whole number of steps of 0.3"),
        (("bits: [6, 8], integer", "bits: {low: 6.5, high: 8}, integer"), 2, "input.bits", "choice 6.5 is invalid"),
    ],
)
def test_bad_space_exit_2_naming_file_line_and_key_before_any_training(tmp_path, edit, line, key, says):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPACE.replace(*edit))
    out = tmp_path / "out"
    result = run("search", tmp_path / "never_loaded.keras", "--rules", bad, "--data", tmp_path / "none.npz", "-o", out)
    assert result.exit_code == 2, result.output
    assert f"{bad}:{line}: {key}: " in result.output and says in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()
    checked = run("rules", "check", bad)
    assert checked.exit_code == 2 and f"{bad}:{line}: {key}" in checked.output


def test_whole_mappings_can_be_choices():
    space = loads_space(
        "version: 1\ndefaults:\n"
        "  kernel: [{quantizer: quantized_bits, bits: 4, integer: 0, alpha: 1}, 'quantized_bits(6, 0, alpha=1)']\n"
        "  activation: [{relu: 'quantized_relu(4, 0)'}, {relu: 'quantized_relu(6, 0)'}]\n"
        "  prune: [{sparsity: 0.5, start_epoch: 2}, 0.75]\n", "space.yaml")
    assert [d.name for d in space.dimensions] == ["defaults.kernel", "defaults.activation", "defaults.prune"]
    first = loads_rules(space.yaml({d.name: d.choices[0] for d in space.dimensions}))
    assert dict(first.defaults.kernel.params)["bits"] == 4 and first.defaults.prune.start_epoch == 2
    assert first.defaults.activation.by_function[0][1].params[0] == ("bits", 4)
    second = space.ruleset({d.name: d.choices[1] for d in space.dimensions})
    assert dict(second.defaults.kernel.params)["bits"] == 6 and second.defaults.prune.sparsity == 0.75


def test_bad_settings_leave_no_output_folder_and_foreign_folders_are_refused(tmp_path, case):
    model, data = case
    space = write_space(tmp_path)
    out = tmp_path / "out"
    for args, says in [
        (("--data", tmp_path / "missing.npz"), "missing.npz"),
        (("--data", data, "--storage", tmp_path), "is a folder"),
        (("--data", data, "--reference", "none", "--reference", "6bit"), "--reference none"),
    ]:
        result = run("search", model, "--rules", space, *args, "-o", out, "--trials", "1", "--epochs", "1")
        assert result.exit_code == 2 and says in result.output and len(result.output.strip().splitlines()) == 1
        assert not out.exists()
    (out / "front").mkdir(parents=True)
    (out / "front" / "index.html").write_text("mine")
    result = run("search", model, "--rules", space, "--data", data, "-o", out, "--trials", "1", "--epochs", "1")
    assert result.exit_code == 2 and "front/ folder that no search wrote" in result.output
    assert (out / "front" / "index.html").read_text() == "mine"
    (out / "search.json").write_text(json.dumps({"study": "another"}))
    result = run("search", model, "--rules", space, "--data", data, "-o", out, "--trials", "1", "--epochs", "1")
    assert result.exit_code == 2 and "holds the results of search 'another'" in result.output


def test_rules_check_prints_the_dimensions_and_the_main_job_refuses_a_space(tmp_path, case):
    space = write_space(tmp_path)
    checked = run("rules", "check", space)
    assert checked.exit_code == 0
    assert "search space: 4 dimensions, 36 rule files" in checked.output
    assert "line 9: rules[0].prune.sparsity = 0.5..0.9 step 0.2 (3)" in checked.output
    model, _ = case
    shown = run("rules", "show", model, "--rules", space)
    assert shown.exit_code == 0 and "4 dimensions" in shown.output and "fc1" in shown.output
    converted = run(model, "--rules", space, "-o", tmp_path / "q.keras")
    assert converted.exit_code == 2 and "is a search space" in converted.output
    assert not (tmp_path / "q.keras").exists()


def test_a_space_that_leaves_layers_float_the_reference_quantizes_is_warned_about():
    """No ``batchnorm:`` key: every trial keeps the BatchNormalization float while the 6bit reference folds it."""
    import keras

    from qconvert.search.objective import float_gaps

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, name="fc1"),
                              keras.layers.BatchNormalization(name="bn1"), keras.layers.ReLU(name="relu1"),
                              keras.layers.Dense(3, name="out"), keras.layers.Activation("softmax", name="softmax")])
    space = SPACE.replace("{name: fc1}", "{name: out}")
    warnings = float_gaps(model, loads_space(space), ["6bit"])
    assert len(warnings) == 1 and "leaves 1 layer(s) float that the reference 6bit quantizes (bn1)" in warnings[0]
    folded = space.replace("defaults:\n", "defaults:\n  batchnorm: fold\n")
    assert float_gaps(model, loads_space(folded), ["6bit"]) == []
    for example in (ROOT / "examples" / "search").glob("*.yaml"):  # the shipped spaces fold BatchNormalization
        shipped = load_space(example)
        assert shipped.ruleset({d.name: d.first for d in shipped.dimensions}).defaults.batchnorm == "fold", example


def test_pareto_front_keeps_the_non_dominated_points_by_cost():
    points = [
        {"number": 0, "val_accuracy": 0.90, "ebops": 100.0},
        {"number": 1, "val_accuracy": 0.95, "ebops": 300.0},
        {"number": 2, "val_accuracy": 0.93, "ebops": 400.0},  # dominated by 1
        {"number": 3, "val_accuracy": 0.90, "ebops": 100.0},  # a tie with 0: the first is kept
        {"number": 4, "val_accuracy": 0.97, "ebops": 900.0},
        {"number": 5, "val_accuracy": 0.85, "ebops": 150.0},  # dominated by 0
    ]
    assert [p["number"] for p in pareto_front(points, "ebops")] == [0, 1, 4]


def test_a_setting_every_trial_fails_on_stops_the_search_with_its_error(tmp_path, case):
    model, data = case
    space = write_space(tmp_path, SPACE.replace("step: 0.2}", "step: 0.2}, end_epoch: 9"))  # past --epochs 2: every trial fails
    result = run("search", model, "--rules", space, "--data", data, "-o", tmp_path / "out", "--trials", "5",
                 "--epochs", "2", "--reference", "none")
    assert result.exit_code == 2, result.output
    assert "the first 3 trials failed" in result.output and "end_epoch 9 is past --epochs 2" in result.output


# --- searches ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_search_writes_the_front_and_its_chosen_rule_file_reproduces_through_the_main_job(tmp_path, case):
    model, data = case
    space = write_space(tmp_path)
    out = tmp_path / "out"
    result = run("search", model, "--rules", space, "--data", data, "-o", out, "--trials", "4", "--epochs", "3",
                 "--hls4ml", "-j", "2")
    assert result.exit_code == 0, result.output
    assert "Pareto front" in result.output and "6bit" in result.output and "FP32" in result.output
    summary = json.loads((out / "search.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    finished = [t for t in summary["trials"] if t["state"] in ("COMPLETE", "PRUNED")]
    assert len(finished) == 4 and summary["study"] == "qconvert-search" and summary["warnings"] == []
    assert {t["worker"] for t in summary["trials"]} <= {0, 1}  # -j 2: two local workers shared the study
    # not a terminal (a CI or Slurm log): one line per trial as it ends, no live bar
    lines = [line for line in result.stdout.splitlines() if line.startswith("trial ")]
    assert sorted(int(line.split()[1]) for line in lines) == sorted(t["number"] for t in summary["trials"])
    for t in (t for t in finished if t["state"] == "COMPLETE"):
        assert any(line.startswith(f"trial {t['number']} complete: val acc {t['val_accuracy']:.4f}")
                   for line in lines), (t, lines)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no worker leftovers
    assert summary["references"]["6bit"]["ebops"] > 0 and summary["fp32"]["test_accuracy"] > 0.9
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # optuna-dashboard sqlite:///OUT/study.db (the README's web view) reads the study, objectives named
    seen = _dashboard_get(f"sqlite:///{out}/study.db", "/api/studies/1")
    assert seen["objective_names"] == ["val_accuracy", "ebops"] and len(seen["trials"]) == len(summary["trials"])
    assert sorted(t["values"][0] for t in seen["trials"] if t["state"] == "Complete") == sorted(
        t["val_accuracy"] for t in finished if t["state"] == "COMPLETE")
    trials = {t["number"]: t for t in summary["trials"]}
    front = [trials[n] for n in summary["front"]]
    assert front and [t["ebops"] for t in front] == sorted(t["ebops"] for t in front)
    assert [t["val_accuracy"] for t in front] == sorted(t["val_accuracy"] for t in front)
    assert sorted(p.name for p in (out / "front").iterdir()) == [".study"] + [f"{i:02d}.yaml" for i in range(len(front))]
    assert (out / "front" / ".study").read_text() == "qconvert-search\n"  # the mark of the study that wrote it
    for t in finished:
        assert set(t["params"]) == {d.name for d in load_space(space).dimensions}
        n_val = len(np.load(data)["y_val"])  # an accuracy is a count of right answers over the validation rows
        assert t["val_accuracy"] * n_val == pytest.approx(round(t["val_accuracy"] * n_val), abs=1e-6)
        assert t["test_accuracy"] is not None
    # --hls4ml: the main job on the chosen point's rule file gives the same model, and hls4ml emulates it exactly
    chosen = trials[summary["chosen"]]
    rules = out / chosen["rules_file"]
    load_rules(rules)
    assert f"trial {chosen['number']}" in rules.read_text() and "--epochs 3 --seed 0" in rules.read_text()
    again = summary["reproduced"]
    assert again["trial"] == chosen["number"] and again["split"] == "test"
    assert again["ebops"] == chosen["ebops"]
    assert abs(again["accuracy"] - chosen["test_accuracy"]) <= 0.02
    assert again["hls4ml"]["logits_exact_fraction"] == 1.0
    assert (out / "chosen.keras").exists() and "hls4ml logits bit-identical 100.0 %" in result.output
    # a second run into the same folder without --resume is refused; with --resume it has nothing left to do
    refused = run("search", model, "--rules", space, "--data", data, "-o", out, "--trials", "4", "--epochs", "3")
    assert refused.exit_code == 2 and "--resume continues it" in refused.output
    resumed = run("search", model, "--rules", space, "--data", data, "-o", out, "--trials", "4", "--epochs", "3",
                  "--resume")
    assert resumed.exit_code == 0
    assert json.loads((out / "search.json").read_text())["counts"] == summary["counts"]
    other = run("search", model, "--rules", space, "--data", data, "-o", out, "--trials", "4", "--epochs", "5",
                "--resume")
    assert other.exit_code == 2 and "epochs 3 (now 5)" in other.output


def _dashboard_get(storage: str, path: str) -> dict:
    """GET ``path`` from optuna-dashboard's WSGI app on ``storage``, as its browser page does."""
    import optuna_dashboard

    environ: dict = {}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = path
    status = []
    body = b"".join(optuna_dashboard.wsgi(storage)(environ, lambda code, headers, exc_info=None: status.append(code)))
    assert status == ["200 OK"], body[:300]
    return json.loads(body)


@pytest.mark.slow
def test_one_worker_with_a_seed_gives_the_same_trials(tmp_path, case):
    model, data = case
    space = write_space(tmp_path)
    runs = []
    for name in ("a", "b"):
        settings = SearchSettings(model=str(model), space=str(space), data=str(data), epochs=1, seed=3, max_drop=5.0)
        result = search(settings, StudyOptions(outdir=str(tmp_path / name), trials=2, references=()))
        runs.append([(t["params"], t.get("val_accuracy"), t.get("ebops"), t["state"]) for t in result.trials])
        assert result.max_drop == 5.0 and result.settings["max_drop"] == 5.0
    assert runs[0] == runs[1]
    assert len({json.dumps(p, sort_keys=True) for p, *_ in runs[0]}) > 1  # the sampler did vary them


def _journal_search(storage: Path, out: Path, trials: int, model: Path, data: Path, space: Path,
                    *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "qconvert", "search", str(model), "--rules", str(space), "--data", str(data),
            "-o", str(out), "--trials", str(trials), "--epochs", "3", "--storage", str(storage), "--study", "shared",
            "--reference", "none", "--no-early-stop", *extra]
    return subprocess.Popen(args, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _trials(storage: Path) -> list:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="shared", storage=optuna.storages.JournalStorage(JournalFileBackend(str(storage))))
    return study.get_trials(deepcopy=False)


def _wait(predicate, timeout: float = 240.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if predicate():
                return
        except Exception:  # the journal does not exist yet
            pass
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_two_processes_on_a_journal_file_share_a_study_survive_a_kill_and_resume(tmp_path, case):
    model, data = case
    space = write_space(tmp_path)
    journal = tmp_path / "study.journal"
    # two processes started separately: disjoint trials; one killed mid-trial, the other finishes the study
    first = _journal_search(journal, tmp_path / "a", 4, model, data, space)
    second = _journal_search(journal, tmp_path / "b", 4, model, data, space)
    _wait(lambda: any(t.state.name == "COMPLETE" and t.user_attrs.get("pid") == first.pid for t in _trials(journal))
          and any(t.state.name == "RUNNING" and t.user_attrs.get("pid") == first.pid for t in _trials(journal)))
    done_before = {t.number for t in _trials(journal) if t.state.name == "COMPLETE"}
    first.send_signal(signal.SIGKILL)
    first.wait()
    _, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    trials = _trials(journal)
    by_state = {s: {t.number for t in trials if t.state.name == s} for s in ("COMPLETE", "FAIL", "RUNNING")}
    assert done_before <= by_state["COMPLETE"] and len(by_state["COMPLETE"]) == 4
    assert len(by_state["FAIL"]) == 1 and not by_state["RUNNING"]  # the killed worker's trial, failed by the other
    assert {t.user_attrs["pid"] for t in trials} == {first.pid, second.pid}  # both ran trials, each its own
    assert len({t.number for t in trials}) == len(trials)
    summary = json.loads((tmp_path / "b" / "search.json").read_text())
    assert summary["counts"] == {"COMPLETE": 4, "FAIL": 1}
    # both killed mid-trial: --resume continues the study to its new size, keeping every finished trial (8: after
    # their first trials, 4 + 2 done, both workers start another, so the kill finds two running)
    third = _journal_search(journal, tmp_path / "c", 8, model, data, space)
    fourth = _journal_search(journal, tmp_path / "c", 8, model, data, space)
    _wait(lambda: sum(t.state.name == "RUNNING" for t in _trials(journal)) == 2
          and sum(t.state.name == "COMPLETE" for t in _trials(journal)) >= 6)
    kept = {t.number for t in _trials(journal) if t.state.name == "COMPLETE"}
    for proc in (third, fourth):
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    last = _journal_search(journal, tmp_path / "c", 8, model, data, space, "--resume")
    _, err = last.communicate(timeout=300)
    assert last.returncode == 0, err
    trials = _trials(journal)
    complete = {t.number for t in trials if t.state.name == "COMPLETE"}
    assert kept <= complete and len(complete) == 8
    assert not [t for t in trials if t.state.name == "RUNNING"]


def test_a_trial_whose_worker_died_before_claiming_it_is_failed_after_the_grace(monkeypatch):
    """Killed between Optuna's creating a trial and its first heartbeat: no pid, no heartbeat. It must not count as
    running forever (a resumed search stopped one trial short when it did): it is failed after the grace."""
    import optuna

    from qconvert.search import study as study_module

    study = optuna.create_study(directions=["maximize", "minimize"])
    study.ask()  # RUNNING, never claimed
    assert study_module.unclaimed_trials(study) == 1 and study_module.fail_dead_trials(study, 900.0) == []
    monkeypatch.setattr(study_module, "UNCLAIMED_GRACE", -1.0)
    assert study_module.fail_dead_trials(study, 900.0) == [0] and study_module.unclaimed_trials(study) == 0


@pytest.mark.slow
def test_the_lut_objective_is_da4mls_estimate_of_each_trials_rtl(tmp_path, case):
    _, summary = small_search(tmp_path, case, "--trials", "2", "--epochs", "1", "--objective", "accuracy,lut",
                              "--reference", "4bit")
    assert summary["cost"] == "lut"
    done = [t for t in summary["trials"] if t["state"] == "COMPLETE"] + [summary["references"]["4bit"]]
    assert len(done) == 3
    for t in done:
        assert t["lut"] == t["rtl"]["lut_da4ml"] > 0 and t["rtl"]["synth"] is None and t["rtl"]["latency_cycles"] >= 1
    front = [next(t for t in summary["trials"] if t["number"] == n) for n in summary["front"]]
    assert [t["lut"] for t in front] == sorted(t["lut"] for t in front)


def test_the_result_renders_its_front_in_a_notebook(tmp_path):
    trials = [{"number": i, "state": "COMPLETE", "params": {"x": i}, "val_accuracy": a, "test_accuracy": a,
               "ebops": e, "dsp": 0} for i, (a, e) in enumerate([(0.9, 100.0), (0.95, 400.0), (0.93, 500.0)])]
    front = [dict(t) for t in pareto_front(trials, "ebops")]
    result = SearchResult(outdir=str(tmp_path), cost="ebops", settings={}, fp32={"val_accuracy": 0.96},
                          references={"6bit": {"val_accuracy": 0.95, "ebops": 2000.0}}, trials=trials, front=front,
                          chosen=front[1])
    html = result._repr_html_()
    assert "<table>" in html and "data:image/png;base64," in html and "0.9500" in html
    assert result._repr_png_()[:4] == b"\x89PNG"
