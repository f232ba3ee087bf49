"""Pruning from the rule files: parsing and errors, the schedule, exact zeros through QAT, save, resume, JAX, hls4ml."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from kit import jets_npz, kill_after_first_checkpoint

import qconvert
from qconvert.cli import cli
from qconvert.demo import digits_mlp
from qconvert.errors import DataError, RuleError
from qconvert.rules import PruneSpec, loads_rules
from qconvert.train.prune import PruneTarget, kernel_sparsity, make_pruning_callback, prune_targets, scheduled_sparsity
from qconvert.train.qat import TrainOptions, fine_tune

ROOT = Path(__file__).resolve().parent.parent
BASE = "version: 1\ndefaults:\n  kernel: quantized_bits(6, 0, alpha=1)\n  bias: quantized_bits(6, 0, alpha=1)\n  activation: quantized_relu(6)\n"


# --- rule files ------------------------------------------------------------------
def test_prune_in_defaults_and_rules():
    rules = loads_rules(BASE + "  prune: 0.5\nrules:\n  - match: {name: fc3}\n    prune: {sparsity: 0.75, start_epoch: 2, end_epoch: 6}\n"
                        "  - match: {name: output}\n    prune: false\n")
    assert rules.defaults.prune == PruneSpec(0.5)
    assert rules.rules[0].settings.prune == PruneSpec(0.75, 2, 6)
    assert rules.rules[1].settings.prune == PruneSpec(0.0)
    plan = qconvert.plan(digits_mlp(), rules)
    assert {item.name: item.prune for item in plan.layers if item.prune} == {
        "fc1": PruneSpec(0.5), "fc2": PruneSpec(0.5), "fc3": PruneSpec(0.75, 2, 6)}
    targets = prune_targets(plan, epochs=10)
    assert [(t.name, t.sparsity, t.start_epoch, t.end_epoch) for t in targets] == [
        ("fc1", 0.5, 1, 5), ("fc2", 0.5, 1, 5), ("fc3", 0.75, 2, 6)]
    with pytest.raises(DataError, match="end_epoch 6 is past --epochs 4"):
        prune_targets(plan, epochs=4)


@pytest.mark.parametrize("text, where", [
    ("  prune: 1.0\n", r":6: defaults\.prune: sparsity must be a number in \[0, 1\)"),
    ("  prune: {sparsity: -0.1}\n", r":6: defaults\.prune\.sparsity: sparsity must be"),
    ("  prune: {start_epoch: 2}\n", r":6: defaults\.prune: missing 'sparsity'"),
    ("  prune: {sparsity: 0.5, end: 3}\n", r":6: defaults\.prune\.end: unknown key"),
    ("  prune: {sparsity: 0.5, start_epoch: 0}\n", r":6: defaults\.prune\.start_epoch: must be an epoch number"),
    ("  prune: {sparsity: 0.5, start_epoch: 4, end_epoch: 3}\n", r":6: defaults\.prune\.end_epoch: end_epoch is before"),
    ("  prune: yes\n", r":6: defaults\.prune: sparsity must be"),
])  # fmt: skip
def test_bad_prune_settings_name_file_line_and_key(text, where):
    with pytest.raises(RuleError, match=where):
        loads_rules(BASE + text, "r.yaml")


def test_keep_and_prune_exclude_each_other():
    with pytest.raises(RuleError, match="keep: true"):
        loads_rules(BASE + "rules:\n  - match: {name: fc1}\n    keep: true\n    prune: 0.5\n")


def test_the_schema_knows_prune():
    import jsonschema

    schema = json.loads((ROOT / "rules" / "schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    import yaml

    for text in (BASE + "  prune: 0.75\n", BASE + "rules:\n  - match: {name: fc1}\n    prune: {sparsity: 0.5, end_epoch: 3}\n",
                 (ROOT / "rules" / "6bit-pruned.yaml").read_text()):
        loads_rules(text)
        validator.validate(yaml.safe_load(text))
    assert not validator.is_valid(yaml.safe_load(BASE + "  prune: 1.5\n"))


# --- the schedule ----------------------------------------------------------------
def test_polynomial_schedule_by_hand():
    """Zhu & Gupta (2017), eq. 1, cubic, from 0 to s_f over epochs start..end."""
    t = PruneTarget(("fc1",), 0.8, start_epoch=3, end_epoch=6)
    got = [scheduled_sparsity(t, e) for e in range(1, 9)]
    expected = [0, 0, 0.8 * (1 - 0.75**3), 0.8 * (1 - 0.5**3), 0.8 * (1 - 0.25**3), 0.8, 0.8, 0.8]
    assert got == pytest.approx(expected)


# --- QAT with masks ---------------------------------------------------------------
def _pruned_qat(model, data, rules_text, epochs=6, **options):
    rules = loads_rules(rules_text)
    qmodel, _ = qconvert.convert(model, rules)
    targets = prune_targets(qconvert.plan(model, rules), epochs)
    opts = TrainOptions(epochs=epochs, lr=1e-3, batch_size=64, seed=0, verbose=0, **options)
    qmodel, result = fine_tune(qmodel, data, opts, callbacks=[make_pruning_callback(targets)],
                               monitor_from=max(t.end_epoch for t in targets))
    return qmodel, result, targets


def test_pruned_kernels_are_exactly_sparse_and_stay_so_when_saved(digits, digits_fp32, tmp_path):
    text = BASE + "  prune: {sparsity: 0.75, end_epoch: 3}\nrules:\n  - match: {name: output}\n    prune: false\n"
    before = digits_fp32.get_layer("output").get_weights()[0]
    qmodel, result, targets = _pruned_qat(digits_fp32, digits, text)
    for name in ("fc1", "fc2", "fc3"):
        kernel = qmodel.get_layer(name).get_weights()[0]
        assert np.mean(kernel == 0) == pytest.approx(0.75, abs=1 / kernel.size)
    assert np.count_nonzero(qmodel.get_layer("output").get_weights()[0]) == before.size  # not pruned, no zeros forced
    assert result.best_epoch >= 3  # the best weights are chosen among epochs at the target sparsity
    assert [round(v, 3) for v in result.history["sparsity_fc1"][:3]] == [round(0.75 * (1 - (1 - k / 3) ** 3), 3) for k in (1, 2, 3)]
    path = tmp_path / "p.keras"
    qmodel.save(path)
    loaded = qconvert.load_model(path)
    assert all(kernel_sparsity(loaded, t.path) == pytest.approx(0.75, abs=0.002) for t in targets)
    x = digits.x_test[:64]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), qmodel.predict(x, verbose=0))


@pytest.mark.slow
def test_the_kept_weights_are_the_pruned_ones_that_were_validated(digits, digits_fp32):
    """Masks grow at the end of an epoch, after Keras validated it: the epoch that set the final masks was
    validated unpruned, so it is never the best epoch; the model handed back scores what its history says."""
    from qconvert.pipeline import train_rules
    from qconvert.train.qat import evaluate

    rules = loads_rules("version: 1\ndefaults:\n  kernel: quantized_bits(6, 0, alpha=1)\n  bias: quantized_bits(6, 0, alpha=1)\n"
                        "  activation: quantized_relu(6)\n  prune: {sparsity: 0.9, end_epoch: 1}\n")
    qmodel, _, training = train_rules(digits_fp32, rules, digits, TrainOptions(epochs=3, seed=0, verbose=0))
    assert training.best_epoch in (2, 3)
    val = evaluate(qmodel, digits, digits.x_val, digits.y_val, training.loss).accuracy
    assert val == pytest.approx(training.history["val_accuracy"][training.best_epoch - 1], abs=1e-6)
    assert kernel_sparsity(qmodel, ("fc1",)) == pytest.approx(0.9, abs=1e-3)


# --- the CLI: report, figure, hls4ml, resume ----------------------------------------
def test_cli_without_epochs_says_pruning_was_not_applied(digits_files, tmp_path):
    model, _data = digits_files
    report = tmp_path / "r.json"
    result = CliRunner().invoke(cli, [str(model), "-r", "6bit-pruned", "-o", str(tmp_path / "q.keras"), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "pruning acts during QAT" in result.output
    assert json.loads(report.read_text())["pruning"]["applied"] is False


def test_cli_end_epoch_past_epochs_is_a_one_line_error(digits_files, tmp_path, write_rules):
    model, data = digits_files
    rules = write_rules(BASE + "  prune: {sparsity: 0.5, end_epoch: 9}\n")
    out = tmp_path / "q.keras"
    result = CliRunner().invoke(cli, [str(model), "-r", str(rules), "-o", str(out), "--data", str(data), "--epochs", "3"])
    assert result.exit_code == 2 and "end_epoch 9 is past --epochs 3" in result.output and not out.exists()


@pytest.mark.slow
def test_cli_pruned_qat_reports_sparsity_cost_and_stays_bit_exact_in_hls4ml(digits_files, tmp_path):
    model, data = digits_files
    out, report = tmp_path / "q.keras", tmp_path / "r.json"
    result = CliRunner().invoke(cli, [str(model), "-r", "6bit-pruned", "-o", str(out), "--report", str(report),
                                      "--data", str(data), "--epochs", "8", "--lr", "1e-3", "--batch-size", "64",
                                      "--hls4ml", str(tmp_path / "prj")])
    assert result.exit_code == 0, result.output
    assert "pruning (QAT)" in result.output and "75.0% zeros" in result.output
    doc = json.loads(report.read_text())
    pruning = doc["pruning"]
    assert set(pruning["layers"]) == {"fc1", "fc2", "fc3", "output"}
    assert all(abs(v["sparsity"] - 0.75) <= 0.01 for v in pruning["layers"].values())
    # a quarter of the weights left, the largest: each needs more bits than the average weight, so they cost
    # more than a quarter of the EBOPs, and far less than all
    assert 0.25 * pruning["before"]["ebops"] < pruning["after"]["ebops"] < 0.5 * pruning["before"]["ebops"]
    rows = {r["name"]: r for r in doc["layers"]}
    assert rows["fc1"]["sparsity"] == pytest.approx(0.75, abs=0.01) and rows["relu1"]["sparsity"] is None
    assert doc["totals"]["ebops"] == pruning["after"]["ebops"]
    assert doc["hls4ml"]["logits_exact_fraction"] == 1.0
    assert any(k.startswith("sparsity_") for k in doc["training"]["history"])
    loaded = qconvert.load_model(out)
    assert np.mean(loaded.get_layer("fc2").get_weights()[0] == 0) == pytest.approx(0.75, abs=0.01)


@pytest.mark.slow
def test_distributed_arithmetic_estimates_luts_and_stays_bit_exact(tmp_path):
    """A small pruned model through hls4ml's distributed_arithmetic strategy (da4ml)."""
    pytest.importorskip("da4ml")
    import keras

    inp = keras.Input((8,))
    x = keras.layers.Dense(8, activation="relu", name="fc1")(inp)
    x = keras.layers.Dense(4, name="out")(x)
    fp32 = keras.Model(inp, x)
    rules = loads_rules("version: 1\ninput: quantized_bits(8, 3)\ndefaults:\n  kernel: quantized_bits(6, 0, alpha=1)\n"
                        "  bias: quantized_bits(6, 0, alpha=1)\n  activation: quantized_relu(6)\n")
    qmodel, _ = qconvert.convert(fp32, rules)
    kernel, bias = qmodel.get_layer("fc1").get_weights()
    kernel[np.abs(kernel) < np.quantile(np.abs(kernel), 0.75)] = 0.0
    qmodel.get_layer("fc1").set_weights([kernel, bias])
    from qconvert.export import Hls4mlOptions, export

    result = export(qmodel, Hls4mlOptions(tmp_path / "da", strategy="distributed_arithmetic"))
    assert result.exact_fraction == 1.0 and result.strategy == "distributed_arithmetic"
    assert set(result.lut_da) == {"fc1", "out"} and all(v > 0 for v in result.lut_da.values())


@pytest.mark.slow
def test_resume_after_a_kill_keeps_masks_and_sparsity(tmp_path, write_rules):
    """Kill a pruned QAT run after an epoch inside the pruning schedule; --resume continues from its last finished
    epoch and ends at the target sparsity (the suite's one kill-and-resume of the main job)."""
    data = jets_npz(tmp_path / "jets.npz")
    rules = write_rules(BASE + "  prune: {sparsity: 0.75, start_epoch: 1, end_epoch: 6}\n")
    model = ROOT / "examples" / "jet_tagging" / "keras_model_fp32.h5"
    out = tmp_path / "q.keras"
    args = [sys.executable, "-m", "qconvert", str(model), "-r", str(rules), "-o", str(out),
            "--data", str(data), "--epochs", "8", "--batch-size", "32", "--lr", "1e-3"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    state = tmp_path / "q.ckpt" / "state.json"
    kill_after_first_checkpoint(args, state)
    done = json.loads(state.read_text())["epoch"]
    assert 1 <= done < 6, "the run must have been killed inside the pruning schedule"
    assert not out.exists()  # nothing written before the run finishes
    checkpoint = qconvert.load_model(tmp_path / "q.ckpt" / "last.keras")  # imports QKeras, whatever ran before
    zeros = {n: np.mean(checkpoint.get_layer(n).get_weights()[0] == 0) for n in ("fc1", "fc2", "fc3", "output")}
    assert all(0 < z < 0.75 for z in zeros.values()), zeros  # part-way along the schedule, in the checkpoint
    report = tmp_path / "r.json"
    resumed = subprocess.run(args + ["--resume", "--report", str(report)], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    doc = json.loads(report.read_text())
    assert doc["training"]["resumed_from"] == done and doc["training"]["epochs_run"] == 8
    assert f"QAT: resumed from epoch {done} of the checkpoint in" in " ".join(resumed.stdout.split())  # said, not silent
    assert len(doc["training"]["history"]["sparsity_fc1"]) == 8 and len(doc["training"]["history"]["loss"]) == 8
    assert out.exists() and not (tmp_path / "q.ckpt").exists()
    final = qconvert.load_model(out)
    for name in zeros:
        kernel = final.get_layer(name).get_weights()[0]
        pruned_before = checkpoint.get_layer(name).get_weights()[0] == 0
        assert np.all(kernel[pruned_before] == 0), name  # a weight pruned before the kill stays pruned
        assert np.mean(kernel == 0) == pytest.approx(0.75, abs=1 / kernel.size), name


def test_rules_show_estimates_the_cost_before_any_training(digits_files):
    model, _ = digits_files
    result = CliRunner().invoke(cli, ["rules", "show", str(model), "-r", "6bit-pruned"])
    assert result.exit_code == 0, result.output
    assert "EBOPs pruned" in result.output and "75%" in result.output
    line = next(line for line in result.output.splitlines() if line.startswith("before training"))
    import re

    before, after = (float(v) for v in re.findall(r"EBOPs ([0-9.]+)k", line))
    assert 0.25 * before < after < 0.5 * before  # the largest quarter of the weights kept (see above)



def test_the_search_estimates_a_pruned_trial_as_rules_show_does(digits_files):
    """The cost a search ranks a pruned trial by before training: the value bits the magnitude mask keeps, per
    layer (the oracle: ``rules show``'s one-shot pruning, then the cost model); the model is left as it was."""
    from qconvert.model.load import load_model
    from qconvert.model.plan import plan_model
    from qconvert.model.rewrite import apply_plan
    from qconvert.pipeline.convert import preview_cost
    from qconvert.rules import as_ruleset
    from qconvert.search.pruning import estimate_ebops

    model = load_model(digits_files[0])
    plan = plan_model(model, as_ruleset("6bit-pruned"))
    qmodel = apply_plan(model, plan)
    sparsity = {item.qualified_name: item.prune.sparsity for item in plan.layers if item.prune is not None}
    before = [w.copy() for w in qmodel.get_weights()]
    estimate = estimate_ebops(qmodel, sparsity)
    unpruned, pruned = preview_cost(model, plan)
    oracle = sum(c.ebops for c in pruned.values())
    assert estimate <= oracle <= 1.05 * estimate  # the estimate scales the (unpruned) biases' few bits too
    assert oracle < 0.5 * sum(c.ebops for c in unpruned.values())
    assert all(np.array_equal(a, b) for a, b in zip(before, qmodel.get_weights()))
    assert estimate_ebops(qmodel, sparsity, target_ebops=1000.0) == 1000.0
