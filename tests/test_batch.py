"""``qconvert batch``: a folder of mixed models, resume, workers, the report."""

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from kit import assert_clean_error
from kit import run_cli as run

import qconvert
from qconvert.batch import discover, pass_through, run_batch

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SIX_BIT = ROOT / "rules" / "6bit.yaml"
GOOD = {
    "json/jet_bn.json": "keras2/json/jet_bn.json",
    "json/jet_bn_weights.h5": "keras2/json/jet_bn_weights.h5",
    "branches.json": "keras2/json_old/branches.json",
    "branches.h5": "keras2/json_old/branches.h5",  # weights beside it: not a model of its own
    "h5/conv2d.h5": "keras2/h5/conv2d.h5",
    "qkeras/jet_6bit.json": "qkeras2/jet_6bit.json",
    "qkeras/jet_6bit_weights.h5": "qkeras2/jet_6bit_weights.h5",
}
BAD = {
    "bad/binary_dense.json": "special/binary_dense.json",
    "bad/binary_dense_weights.h5": "special/binary_dense_weights.h5",
    "bad/lambda.h5": "special/lambda.h5",
}
MODEL_KEYS = {"path", "status", "error", "layers_converted", "seconds", "output", "kind", "weights"}



def _jet(name: str) -> keras.Model:
    inp = keras.Input((16,), name="x")
    x = keras.layers.Dense(32, activation="relu", name="fc1")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    out = keras.layers.Dense(5, activation="softmax", name="out")(x)
    return keras.Model(inp, out, name=name)


@pytest.fixture
def mixed(tmp_path) -> Path:
    """Good models in every format, a truncated file, a custom-layer model, a Lambda model, non-models."""
    folder = tmp_path / "models"
    for target, source in (GOOD | BAD).items():
        (folder / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / source, folder / target)
    _jet("k3").save(folder / "keras3.keras")
    (folder / "bad" / "truncated.h5").write_bytes((FIXTURES / "keras2/h5/jet_bn.h5").read_bytes()[:4000])
    (folder / "notes.txt").write_text("not a model\n")
    (folder / "meta.json").write_text('{"author": "me"}')
    return folder


def _by_name(report: dict) -> dict:
    return {Path(m["path"]).name: m for m in report["models"]}


def test_mixed_folder_converts_the_good_reports_the_bad(mixed, tmp_path):
    out, report_path, md = tmp_path / "out", tmp_path / "batch.json", tmp_path / "batch.md"
    result = run("batch", mixed, "--rules", SIX_BIT, "-o", out, "--report", report_path, "--markdown", md)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    report = json.loads(report_path.read_text())
    models = _by_name(report)
    # weights files that belong to a JSON, text and non-model JSON are not models of their own
    assert set(models) == {"jet_bn.json", "branches.json", "conv2d.h5", "jet_6bit.json", "keras3.keras",
                           "binary_dense.json", "lambda.h5", "truncated.h5"}
    converted = {n for n, m in models.items() if m["status"] == "converted"}
    assert converted == {"jet_bn.json", "branches.json", "conv2d.h5", "jet_6bit.json", "keras3.keras"}
    assert "BinaryDense" in models["binary_dense.json"]["error"]
    assert "--custom-objects" in models["binary_dense.json"]["error"]
    assert "Lambda" in models["lambda.h5"]["error"] and "--unsafe" in models["lambda.h5"]["error"]
    assert "HDF5" in models["truncated.h5"]["error"]
    for name in converted:  # OUT/<relative path>.keras, loadable, with provenance
        m = models[name]
        rel = Path(m["path"]).relative_to(mixed).with_suffix(".keras")
        assert Path(m["output"]) == out / rel and (out / rel).is_file()
        assert m["error"] is None
        # a QKeras 0.9 model is quantized already: nothing is converted twice
        assert (m["layers_converted"] == 0) if name == "jet_6bit.json" else (m["layers_converted"] > 0)
        assert qconvert.read_provenance(out / rel)["rules"]["sha256"] == report["rules"]["sha256"]
    assert type(qconvert.load_model(out / "json" / "jet_bn.keras").get_layer("fc1")).__name__ == "QDense"
    assert not list(out.rglob("*.tmp*"))  # written atomically
    assert report["totals"] == report["totals"] | {"models": 8, "converted": 5, "failed": 3, "skipped": 0}
    assert "truncated.h5" in md.read_text() and "**5 converted, 3 failed, 0 skipped**" in md.read_text()
    assert "converted" in result.stdout and "BinaryDense" in result.stdout  # the table


def test_report_schema(mixed, tmp_path):
    report_path = tmp_path / "batch.json"
    run("batch", mixed / "json", mixed / "bad", "--rules", SIX_BIT, "-o", tmp_path / "out", "--report", report_path)
    report = json.loads(report_path.read_text())
    assert set(report) == {"rules", "output", "jobs", "verify", "versions", "models", "totals"}
    assert set(report["rules"]) == {"source", "sha256", "description"}
    assert set(report["totals"]) == {"models", "converted", "failed", "skipped", "layers_converted", "seconds",
                                     "seconds_per_model", "models_per_minute"}
    for m in report["models"]:
        assert set(m) == MODEL_KEYS
        assert m["status"] in ("converted", "failed", "skipped")
        assert isinstance(m["layers_converted"], int) and isinstance(m["seconds"], float)
        assert (m["error"] is None) == (m["status"] == "converted")
    assert [m["path"] for m in report["models"]] == sorted(m["path"] for m in report["models"])


def test_resume_skips_what_is_done_with_the_same_rules(mixed, tmp_path, write_rules):
    out = tmp_path / "out"
    first = run_batch([mixed / "json", mixed / "h5"], SIX_BIT, out)
    assert [m.status for m in first.models] == ["converted", "converted"] and first.exit_code == 0
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.keras")}
    again = run_batch([mixed / "json", mixed / "h5"], SIX_BIT, out, resume=True)
    assert [m.status for m in again.models] == ["skipped", "skipped"] and again.exit_code == 0
    assert all("--resume" in m.error for m in again.models)
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("*.keras")}
    other = write_rules(SIX_BIT.read_text().replace("quantized_relu(6)", "quantized_relu(4)"))
    changed = run_batch([mixed / "json", mixed / "h5"], other, out, resume=True)
    assert [m.status for m in changed.models] == ["converted", "converted"]


def test_verify_pass_through_equals_fp32(mixed, tmp_path):
    report = run_batch([mixed / "json", mixed / "keras3.keras"], SIX_BIT, tmp_path / "out", verify=True)
    assert [m.status for m in report.models] == ["converted", "converted"], report.models
    assert all(m.max_abs_diff is not None and m.max_abs_diff < 1e-5 for m in report.models)
    assert "max_abs_diff" in report.to_dict()["models"][0]


def test_pass_through_rules_keep_the_plan_and_drop_every_quantizer():
    rules = pass_through(qconvert.load_rules(ROOT / "rules" / "mixed_jet_tagger.yaml"))
    specs = [rules.defaults] + [r.settings for r in rules.rules]
    for s in specs:
        for name in ("kernel", "bias", "depthwise", "pointwise"):
            assert getattr(s, name) is None or getattr(s, name).is_float
        if s.activation is not None:
            assert all(q.is_float for _, q in s.activation.by_function)
            assert s.activation.default is None or s.activation.default.is_float
    assert rules.input is None


def test_custom_objects_and_unsafe_reach_the_workers(mixed, tmp_path):
    module = FIXTURES / "special" / "binary_layers.py"
    report = run_batch([mixed / "bad" / "binary_dense.json", mixed / "bad" / "lambda.h5"], SIX_BIT, tmp_path / "out",
                       custom_objects=[f"{module}:BinaryDense"], safe_mode=False)
    assert [m.status for m in report.models] == ["converted", "converted"], report.models


@pytest.mark.slow
def test_two_workers_give_the_same_results_as_one(mixed, tmp_path):
    inputs = [mixed / "json", mixed / "h5", mixed / "keras3.keras", mixed / "bad" / "lambda.h5"]
    one = run_batch(inputs, SIX_BIT, tmp_path / "one", jobs=1)
    two = run_batch(inputs, SIX_BIT, tmp_path / "two", jobs=2)
    def strip(r):
        return [(m.path, m.status, m.error, m.layers_converted, Path(m.output).name if m.output else None)
                           for m in r.models]
    assert strip(one) == strip(two) and one.exit_code == two.exit_code == 1
    for a in (tmp_path / "one").rglob("*.keras"):
        b = tmp_path / "two" / a.relative_to(tmp_path / "one")
        for wa, wb in zip(qconvert.load_model(a).get_weights(), qconvert.load_model(b).get_weights()):
            np.testing.assert_array_equal(wa, wb)


def test_discovery_by_content_without_keras(mixed, tmp_path):
    (mixed / "renamed.h5").write_bytes((mixed / "keras3.keras").read_bytes())  # a .keras archive named .h5
    (mixed / "orphan_weights.h5").write_bytes((mixed / "branches.h5").read_bytes())
    _jet("twin").save(mixed / "keras3.h5")  # same stem as keras3.keras: outputs keep their suffix
    found = discover([mixed], tmp_path / "out")
    jobs = {Path(j.path).name: j for j in found.jobs}
    assert jobs["branches.json"].weights == str(mixed / "branches.h5")
    assert Path(jobs["keras3.keras"].output).name == "keras3.keras.keras"
    assert Path(jobs["keras3.h5"].output).name == "keras3.h5.keras"
    early = {Path(r.path).name: r for r in found.early}
    assert early["renamed.h5"].status == "failed" and "rename it to .keras" in early["renamed.h5"].error
    assert early["orphan_weights.h5"].status == "skipped" and "weights only" in early["orphan_weights.h5"].error
    assert "branches.h5" not in jobs and "branches.h5" not in early


def test_output_inside_the_input_folder_is_not_read_back(mixed):
    out = mixed / "converted"
    run_batch([mixed / "json"], SIX_BIT, out)
    again = discover([mixed / "json", mixed], out)
    assert not any("converted" in Path(j.path).parts for j in again.jobs)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["nowhere/", "--rules", SIX_BIT], "no such file or folder"),
        (["{tmp}/*.nothing", "--rules", SIX_BIT], "no file matches"),
        (["{tmp}/empty", "--rules", SIX_BIT], "no model files found"),
        (["{tmp}/empty", "--rules", "{tmp}/missing.yaml"], "missing.yaml"),
        (["{tmp}/empty", "--rules", SIX_BIT, "--custom-objects", "no_such_module:X"], "no_such_module"),
    ],
)
def test_usage_errors_exit_2(tmp_path, args, needle):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    result = run("batch", *[str(a).format(tmp=tmp_path) for a in args], "-o", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert needle in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("preset", ["6bit-auto", "8bit-auto"])
def test_presets_that_calibrate_on_data_are_refused_before_anything_is_written(tmp_path, preset):
    """A batch takes no --data (its models take different inputs): activation 'integer: auto' is refused in one line
    that says why and what to use, and no output folder is left behind."""
    src = tmp_path / "models"
    src.mkdir()
    _jet("a").save(src / "a.keras")
    result = run("batch", src, "--rules", preset, "-o", tmp_path / "out")
    assert_clean_error(result, "a batch does not take", "6bit, 8bit", "--data D")
    assert not (tmp_path / "out").exists()
    weights_only = tmp_path / "w.yaml"  # auto on weights alone resolves from the weights: accepted
    weights_only.write_text("version: 1\ndefaults:\n  kernel: quantized_bits(6, auto, alpha=1)\n"
                            "  activation: quantized_relu(6)\n")
    assert run("batch", src, "--rules", weights_only, "-o", tmp_path / "out").exit_code == 0
