"""``qconvert migrate``: Keras model code → QKeras model code (LibCST codemod).

Cases are data, as black keeps them: ``migrate_cases/NAME.before.py`` is the
input, ``NAME.after.py`` the expected output and ``NAME.findings`` the expected
``line:col CODE message`` lines (LibCST's ``CodemodTest.assertCodemod`` idea:
before, after, expected warnings). A first line ``# rules: FILE`` picks a rule
file relative to ``migrate_cases/`` (default ``rules/6bit.yaml``). Every case is
also run a second time, which must change nothing.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from qconvert.cli import cli
from qconvert.rules import load_rules
from qconvert.source import Status, migrate_code
from qconvert.source import names as N

ROOT = Path(__file__).resolve().parent.parent
CASES = Path(__file__).resolve().parent / "migrate_cases"
RULES_6BIT = ROOT / "rules" / "6bit.yaml"
CASE_NAMES = sorted(p.name[: -len(".before.py")] for p in CASES.glob("*.before.py"))


def _rules_for(text: str):
    first = text.splitlines()[0] if text else ""
    if first.startswith("# rules:"):
        return load_rules(CASES / first.split(":", 1)[1].strip())
    return load_rules(RULES_6BIT)


def _run_cli(args: list[str], cwd: Path | None = None):
    old = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        return CliRunner().invoke(cli, args, catch_exceptions=False)
    finally:
        os.chdir(old)


# --- before/after pairs -------------------------------------------------------------
@pytest.mark.parametrize("name", CASE_NAMES)
def test_case(name: str) -> None:
    before = (CASES / f"{name}.before.py").read_text()
    rules = _rules_for(before)
    result = migrate_code(before, rules)
    assert result.code == (CASES / f"{name}.after.py").read_text()
    got = [f"{f.line}:{f.col} {f.code} {f.message}" for f in result.findings]
    assert got == (CASES / f"{name}.findings").read_text().splitlines()
    again = migrate_code(result.code, rules)
    assert again.code == result.code, "a second run must change nothing"
    assert again.status is Status.UNCHANGED
    compile(result.code, name, "exec")


def test_cases_cover_the_issue() -> None:
    """The constructs the issue names each have a case."""
    text = "".join((CASES / f"{n}.before.py").read_text() for n in CASE_NAMES)
    for construct in ("import Dense as D", "layers as L", "keras.layers.Dense", "tf.keras.layers.Dense",
                      "tensorflow.keras.layers.Dense", "activation=tf.nn.relu", "import *", "getattr(",
                      "**config", "*args", "deserialize", "qconvert: skip", "lora_rank=4", "class Block(keras.layers.Layer)"):
        assert construct in text, construct


# --- the seed: Step 1 migrated == Step 2 written by hand -------------------------------
def _build(code: str, variable: str):
    import keras

    keras.utils.clear_session()
    namespace: dict = {}
    exec(compile(code, "<migrated>", "exec"), namespace)  # test-controlled code, built, not trained
    return namespace[variable]


def _layer_view(layer) -> tuple:
    config = layer.get_config()
    config.pop("kernel_initializer", None)  # same class either way; compared as plain configs below
    for key in ("kernel_quantizer", "bias_quantizer", "activation"):
        value = config.get(key)
        if hasattr(value, "get_config"):
            config[key] = (type(value).__name__, value.get_config())
    return type(layer).__name__, layer.name, config


def _layers(model) -> list[tuple]:
    return [_layer_view(layer) for layer in model.layers if type(layer).__name__ != "InputLayer"]


@pytest.fixture(scope="module")
def step2_layers():
    code = (CASES / "seed_step2.py").read_text()
    return _layers(_build(code, "quantized_model"))


@pytest.mark.parametrize("spelling", ["seed_step1", "seed_functional", "seed_tf_keras"])
def test_seed_migrated_builds_the_handwritten_step2_model(spelling: str, step2_layers) -> None:
    before = (CASES / f"{spelling}.py").read_text()
    rules = load_rules(RULES_6BIT)
    result = migrate_code(before, rules)
    assert result.status is Status.CHANGED
    assert not [f for f in result.findings if f.kind.value == "leftover"]
    assert migrate_code(result.code, rules).code == result.code
    for line in before.splitlines():  # comments survive
        if line.lstrip().startswith("#") or "  # " in line:
            comment = line[line.index("#"):]
            assert comment in result.code, comment
    model = _build(result.code, "baseline_model")
    got = _layers(model)
    assert [(c, n) for c, n, _ in got] == [(c, n) for c, n, _ in step2_layers]
    assert [(c, n) for c, n, _ in got] == [
        ("QDense", "fc1"), ("QActivation", "relu1"), ("QDense", "fc2"), ("QActivation", "relu2"),
        ("QDense", "fc3"), ("QActivation", "relu3"), ("QDense", "output"), ("Activation", "softmax"),
    ]
    for g, w in zip(got, step2_layers):
        assert g[2] == w[2], g[1]


def test_seed_step1_migrates_as_expected() -> None:
    result = migrate_code((CASES / "seed_step1.py").read_text(), load_rules(RULES_6BIT))
    assert "baseline_model.add(QActivation(activation=quantized_relu(6), name='relu1'))" in result.code
    assert "baseline_model.add(Activation(activation='softmax', name='softmax'))" in result.code
    assert "from qkeras import QActivation, QDense, quantized_bits, quantized_relu" in result.code
    assert "from keras.layers import Activation\n" in result.code and "import Dense" not in result.code


# --- the tables the codemod relies on, against the installed packages --------------------
def test_qlayer_signatures_match_qkeras() -> None:
    import qkeras

    for q_class, order in N.Q_POSITIONAL.items():
        params = [p for p in inspect.signature(getattr(qkeras, q_class).__init__).parameters if p not in ("self", "kwargs")]
        assert tuple(params) == order, q_class


def test_keras_signatures_match_keras() -> None:
    import keras

    for class_name, order in N.KERAS_POSITIONAL.items():
        params = [p for p in inspect.signature(getattr(keras.layers, class_name).__init__).parameters
                  if p not in ("self", "kwargs")]
        assert tuple(params) == order, class_name


def test_migrate_does_not_import_tensorflow_or_keras() -> None:
    code = ("import sys, qconvert, qconvert.source.command, qconvert.source; "
            "assert 'QDense' in qconvert.migrate_code('from keras.layers import Dense\\nDense(3)\\n', "
            "qconvert.load_rules('6bit')).code; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'qkeras', 'hls4ml', 'tf_keras')); "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


# --- files and the command line ------------------------------------------------------
SEQ = 'from keras.layers import Dense\nimport keras\n\nmodel = keras.Sequential()\nmodel.add(Dense(8, activation="relu"))  # hidden\n'


def test_syntax_error_file_left_byte_for_byte_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    data = b"from keras.layers import Dense\nmodel.add(Dense(8)\n"
    bad.write_bytes(data)
    good = tmp_path / "good.py"
    good.write_text(SEQ)
    result = _run_cli(["migrate", str(tmp_path), "--rules", str(RULES_6BIT), "--write"])
    assert result.exit_code == 1
    assert bad.read_bytes() == data
    assert "QC300" in result.stderr and "bad.py" in result.stderr and "never closed" in result.stderr
    assert "QDense" in good.read_text()  # the other file is still migrated


def test_exit_codes(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(SEQ)
    rules = str(RULES_6BIT)
    preview = _run_cli(["migrate", str(src), "--rules", rules])
    assert preview.exit_code == 0 and src.read_text() == SEQ and preview.stdout.startswith("diff --git")
    assert _run_cli(["migrate", str(src), "--rules", rules, "--check"]).exit_code == 1
    assert _run_cli(["migrate", str(src), "--rules", rules, "--write"]).exit_code == 0
    assert _run_cli(["migrate", str(src), "--rules", rules, "--check"]).exit_code == 0  # nothing left to do
    assert _run_cli(["migrate", str(src), "--rules", str(tmp_path / "none.yaml")]).exit_code == 2
    assert _run_cli(["migrate", str(tmp_path / "missing.py"), "--rules", rules]).exit_code == 2
    assert _run_cli(["migrate", str(src), "--rules", rules, "--write", "--check"]).exit_code == 2
    left = tmp_path / "left.py"
    left.write_text("from keras import layers\nd = layers.Dense(8, activation='relu')\n")
    assert _run_cli(["migrate", str(left), "--rules", rules]).exit_code == 0
    strict = _run_cli(["migrate", str(left), "--rules", rules, "--strict"])
    assert strict.exit_code == 1 and "QC204" in strict.stderr


def test_diff_applies_with_git_apply(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    (repo / "models" / "seq.py").write_text(SEQ)
    (repo / "models" / "crlf.py").write_bytes(SEQ.replace("\n", "\r\n").encode())
    (repo / "seed.py").write_text((CASES / "seed_step1.py").read_text())
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    preview = _run_cli(["migrate", ".", "--rules", str(RULES_6BIT)], cwd=repo)
    assert preview.exit_code == 0
    (tmp_path / "change.patch").write_bytes(preview.stdout_bytes)  # .stdout turns CRLF into LF
    expected = {p: migrate_code(p.read_bytes().decode(), load_rules(RULES_6BIT)).code for p in repo.rglob("*.py")}
    applied = subprocess.run(["git", "apply", str(tmp_path / "change.patch")], cwd=repo, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    for path, code in expected.items():
        assert path.read_bytes().decode() == code, path


def test_write_keeps_crlf_and_encoding(tmp_path: Path) -> None:
    crlf = tmp_path / "crlf.py"
    crlf.write_bytes(SEQ.replace("\n", "\r\n").encode())
    latin = tmp_path / "latin.py"
    latin.write_bytes(("# -*- coding: latin-1 -*-\n# Modèle à tester\n" + SEQ).encode("latin-1"))
    assert _run_cli(["migrate", str(tmp_path), "--rules", str(RULES_6BIT), "--write"]).exit_code == 0
    data = crlf.read_bytes()
    assert b"QActivation" in data and data.count(b"\r\n") == data.count(b"\n")
    text = latin.read_bytes().decode("latin-1")
    assert "# Modèle à tester" in text and "QDense" in text
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_out_writes_a_converted_copy(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "m.py").write_text(SEQ)
    (src / "plain.py").write_text("x = 1\n")
    (src / "broken.py").write_text("def f(:\n")
    result = _run_cli(["migrate", str(src), "--rules", str(RULES_6BIT), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1  # broken.py
    assert "QDense" in (tmp_path / "out" / "pkg" / "m.py").read_text()
    assert (tmp_path / "out" / "plain.py").read_text() == "x = 1\n"
    assert not (tmp_path / "out" / "broken.py").exists()
    assert (src / "pkg" / "m.py").read_text() == SEQ  # input untouched
    short = _run_cli(["migrate", str(src), "--rules", str(RULES_6BIT), "-o", str(tmp_path / "out2")])
    assert short.exit_code == 1  # -o/--output, as every other command spells it, is --out
    assert (tmp_path / "out2" / "pkg" / "m.py").read_text() == (tmp_path / "out" / "pkg" / "m.py").read_text()
    long = _run_cli(["migrate", str(src), "--rules", str(RULES_6BIT), "--output", str(tmp_path / "out3")])
    assert long.exit_code == 1 and (tmp_path / "out3" / "pkg" / "m.py").read_text() == (tmp_path / "out" / "pkg" / "m.py").read_text()


def test_gitignore_respected_inside_and_outside_git(tmp_path: Path) -> None:
    for in_git in (False, True):
        tree = tmp_path / f"tree{in_git}"
        (tree / "build").mkdir(parents=True)
        (tree / "keep.py").write_text(SEQ)
        (tree / "build" / "gen.py").write_text(SEQ)
        (tree / "scratch.py").write_text(SEQ)
        (tree / ".gitignore").write_text("build/\nscratch.py\n")
        if in_git:
            if shutil.which("git") is None:
                continue
            subprocess.run(["git", "init", "-q"], cwd=tree, check=True)
        result = _run_cli(["migrate", str(tree), "--rules", str(RULES_6BIT), "--check"])
        assert "keep.py" in result.stderr
        assert "gen.py" not in result.stderr and "scratch.py" not in result.stderr, in_git


def test_jobs_2_gives_the_same_output_as_jobs_1(tmp_path: Path) -> None:
    for i in range(6):
        (tmp_path / f"m{i}.py").write_text(SEQ.replace("Dense(8", f"Dense({i + 1}"))
    (tmp_path / "broken.py").write_text("def f(:\n")
    runs = []
    for jobs in ("1", "2"):
        report = tmp_path.parent / f"report{jobs}.json"
        result = _run_cli(["migrate", str(tmp_path), "--rules", str(RULES_6BIT), "-j", jobs, "--report", str(report)])
        assert result.exit_code == 1
        runs.append((result.stdout, result.stderr, report.read_text()))
    assert runs[0] == runs[1]
    doc = json.loads(runs[0][2])
    assert [f["path"] for f in doc["files"]] == sorted(f["path"] for f in doc["files"])
    finding = doc["files"][1]["findings"][0]
    assert set(finding) >= {"path", "line", "col", "code", "message", "kind"}
    assert doc["totals"] == {"files": 7, "changed": 6, "failed": 1, "leftovers": 0}


def test_findings_print_as_file_line_col_code_message(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(SEQ)
    result = _run_cli(["migrate", str(src), "--rules", str(RULES_6BIT)])
    assert f"{src.as_posix()}:5:11 QC100 Dense -> QDense" in result.stderr
    assert f"{src.as_posix()}:5:11 QC101 activation='relu' split out as QActivation(quantized_relu(6)) named 'relu'" in result.stderr


def _notebook(cells: list[tuple[str, str]]) -> str:
    doc = {"cells": [{"cell_type": kind, "metadata": {}, "source": src.splitlines(keepends=True),
                      **({"outputs": [], "execution_count": None} if kind == "code" else {})} for kind, src in cells],
           "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(doc, indent=1) + "\n"


def test_notebook_code_cells(tmp_path: Path) -> None:
    nb = tmp_path / "model.ipynb"
    nb.write_text(_notebook([
        ("markdown", "# A model\nDense(8, activation='relu')"),
        ("code", "%matplotlib inline\nimport keras\nfrom keras.layers import Dense"),
        ("code", "model = keras.Sequential()\nmodel.add(Dense(8, activation='relu'))  # hidden"),
        ("code", "%%time\nmodel.add(Dense(4, activation='relu'))"),
        ("code", "model.add(Dense(2, activation='relu'))"),
    ]))
    result = _run_cli(["migrate", str(nb), "--rules", str(RULES_6BIT), "--write"])
    assert result.exit_code == 0, result.stderr
    cells = json.loads(nb.read_text())["cells"]
    assert cells[0]["source"] == ["# A model\n", "Dense(8, activation='relu')"]  # markdown untouched
    assert "".join(cells[1]["source"]).startswith("%matplotlib inline\n")
    assert "from qkeras import QActivation, QDense" in "".join(cells[1]["source"])
    assert "".join(cells[2]["source"]).endswith("model.add(QActivation(activation=quantized_relu(6), name='relu1'))")  # no newline added at the end
    assert "Dense(4, activation='relu')" in "".join(cells[3]["source"])  # a cell magic: left alone
    assert "name='relu2'" in "".join(cells[4]["source"])  # numbered across cells
    assert "model.ipynb[cell 3]:2:11 QC100" in result.stderr
    again = _run_cli(["migrate", str(nb), "--rules", str(RULES_6BIT), "--check"])
    assert again.exit_code == 0


def test_notebook_with_a_broken_cell_is_left_alone(tmp_path: Path) -> None:
    nb = tmp_path / "model.ipynb"
    text = _notebook([("code", "from keras.layers import Dense\nd = Dense(8)"), ("code", "def f(:\n")])
    nb.write_text(text)
    result = _run_cli(["migrate", str(nb), "--rules", str(RULES_6BIT), "--write"])
    assert result.exit_code == 1 and nb.read_text() == text and "[cell 2]" in result.stderr


# --- the two routes name split activations alike; unmatched rules are errors in both --------------
VARIABLE_ACTIVATION = '''import keras
from keras import layers


def build(act="relu"):
    model = keras.Sequential(name="tagger")
    model.add(keras.Input((8,)))
    model.add(layers.Dense(16, activation=act, name="fc1"))
    model.add(layers.Dense(8, activation="relu", name="fc2"))
    model.add(layers.Dense(3, activation="softmax", name="out"))
    return model


model = build()
'''
RELU2_8BIT = """version: 1
defaults:
  kernel: quantized_bits(6, 0, alpha=1)
  bias: quantized_bits(6, 0, alpha=1)
  activation: quantized_relu(6)
rules:
  - match: {name: relu2}
    activation: quantized_relu(8)
"""


def test_split_names_agree_between_migrate_and_the_saved_model(tmp_path: Path) -> None:
    import qconvert

    rules_path = tmp_path / "r.yaml"
    rules_path.write_text(RELU2_8BIT)
    rules = load_rules(rules_path)
    migrated = migrate_code(VARIABLE_ACTIVATION, rules)
    assert any(f.code == "QC205" and "act" in f.message for f in migrated.findings)  # fc1 left alone, reported
    source_model = _build(migrated.code, "model")
    split = source_model.get_layer("relu2")  # fc2's activation, numbered as the model route numbers it
    assert type(split).__name__ == "QActivation" and "8" in str(split.get_config()["activation"])
    converted, _ = qconvert.convert(_build(VARIABLE_ACTIVATION, "model"), rules_path)
    assert str(converted.get_layer("relu2").get_config()["activation"]) == str(split.get_config()["activation"])


def test_rule_matching_nothing_is_an_error_in_migrate_and_nothing_is_written(tmp_path: Path) -> None:
    source = tmp_path / "model.py"
    source.write_text(VARIABLE_ACTIVATION)
    rules = tmp_path / "r.yaml"
    rules.write_text(RELU2_8BIT.replace("relu2", "relu9"))
    result = CliRunner().invoke(cli, ["migrate", str(source), "--rules", str(rules), "--write"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "matches no layer" in lines[0] and f"{rules}:7" in lines[0], lines
    assert source.read_text() == VARIABLE_ACTIVATION


def test_layers_built_in_helpers_loops_and_comprehensions_get_unique_names() -> None:
    """A helper called in a loop and a comprehension build several layers from one line: their split activations
    carry no name= (each gets Keras's own), so the migrated model builds; so does the original (the oracle for
    the layer count: one QActivation more per Dense with activation=, nothing lost)."""
    before = (CASES / "helpers_and_loops.before.py").read_text()
    original = _build(before, "model")
    migrated = _build(migrate_code(before, load_rules(RULES_6BIT)).code, "model")
    names = [layer.name for layer in migrated.layers]
    assert len(names) == len(set(names))
    kinds = [type(layer).__name__ for layer in migrated.layers]
    dense = sum(type(layer).__name__ == "Dense" for layer in original.layers)
    assert kinds.count("QDense") == dense == 7 and kinds.count("QActivation") == 6  # 3 in the loop, 2 heads, merge
    assert len(migrated.layers) == len(original.layers) + 7  # each Dense's activation= became its own layer
    assert migrated.output.shape == original.output.shape
