"""The command line: the main job, its outputs, and every kind of bad input."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from kit import run_cli as run
from models import random_inputs, seed_fp32

import qconvert

ROOT = Path(__file__).resolve().parent.parent
SIX_BIT = ROOT / "rules" / "6bit.yaml"



@pytest.fixture(scope="module")
def seed_h5(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "jet.h5"
    seed_fp32().save(path)
    return path


@pytest.fixture
def model_copy(seed_h5, tmp_path) -> Path:
    path = tmp_path / "jet.h5"
    path.write_bytes(seed_h5.read_bytes())
    return path


def assert_clean_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qconvert: error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0]


def test_main_job_writes_model_report_and_provenance(model_copy, tmp_path):
    before = model_copy.read_bytes()
    report_path = tmp_path / "report.json"
    result = run(model_copy, "--rules", SIX_BIT, "--report", report_path)
    assert result.exit_code == 0, result.output
    out = tmp_path / "jet_q.keras"  # default: next to the input, _q suffix
    assert out.exists() and f"wrote {out}" in result.output
    assert model_copy.read_bytes() == before  # input untouched
    for name in ("fc1", "relu1", "softmax", "total"):
        assert name in result.output
    report = json.loads(report_path.read_text())
    assert [row["name"] for row in report["layers"]][:2] == ["fc1", "relu1"]
    assert report["totals"]["bops"] < report["totals"]["bops_ap_fixed_16_6"] < report["totals"]["bops_fp32"]
    assert report["output"] == str(out)
    provenance = qconvert.read_provenance(out)
    assert provenance["rules"]["sha256"] == qconvert.load_rules(SIX_BIT).sha256
    assert provenance["versions"]["keras"] == keras.__version__ and provenance["versions"]["qconvert"] == qconvert.__version__
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]  # no temporary left behind


def test_saved_model_round_trips(model_copy, tmp_path):
    out = tmp_path / "q.keras"
    assert run(model_copy, "-r", SIX_BIT, "-o", out).exit_code == 0
    qmodel, _ = qconvert.convert(qconvert.load_model(model_copy), SIX_BIT)
    loaded = qconvert.load_model(out)
    x = random_inputs(loaded, 128)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(qmodel(x)))
    assert [type(l).__name__ for l in loaded.layers] == [type(l).__name__ for l in qmodel.layers]


def test_strict_with_leftovers_exits_1_and_writes_nothing(model_copy, tmp_path, write_rules):
    rules = write_rules("version: 1\ndefaults:\n  activation: quantized_relu(6)\n")
    out = tmp_path / "q.keras"
    result = run(model_copy, "-r", rules, "-o", out, "--strict")
    assert result.exit_code == 1
    assert "strict" in result.stderr and "fc1" in result.stderr
    assert not out.exists()
    assert run(model_copy, "-r", rules, "-o", out).exit_code == 0  # without --strict: listed, written


@pytest.mark.parametrize(
    "text, needles",
    [
        ("version: 1\ndefaults: [oops\n", ("malformed YAML",)),
        ("version: 1\ndefaults:\n  kernal: quantized_bits(6)\n", (":3", "defaults.kernal", "unknown key; did you mean 'kernel'?")),
        ("version: 1\ndefaults:\n  kernel: quantized_bits(0)\n", (":3", "defaults.kernel", "bits")),
        ("version: 1\nrules:\n  - match: {name: nope}\n    keep: true\n", (":3", "matches no layer", "its layers: ", "fc1, ")),
        ("version: 1\nrules:\n  - match: {name: fc_1}\n    keep: true\n", (":3", "matches no layer", "did you mean 'fc1'?")),
        ("version: 1\nrules:\n  - match: {type: Dens}\n    keep: true\n", (":3", "matches no layer", "did you mean 'Dense'?")),
        ("version: 1\nrules:\n  - match: {name: FC2}\n    keep: true\n", (":3", "matches no layer", "did you mean 'fc2'?")),
        ("version: 1\nrules:\n  - match: {name: fc}\n    keep: true\n", (":3", "did you mean one of 'fc1', 'fc2', 'fc3'?")),
        ("version: 1\nrules:\n  - match: {type: dense}\n    keep: true\n", (":3", "matches no layer", "did you mean 'Dense'?")),
        ("version: 1\ndefaults:\n  activation: quantized_rleu(6)\n", (":3", "did you mean 'quantized_relu'?")),
        ("version: 1\nrules:\n  - match: {activation: rleu}\n    keep: true\n", (":3", "did you mean 'relu'?")),
    ],
)
def test_bad_rules_exit_2_with_one_line(model_copy, tmp_path, write_rules, text, needles):
    out = tmp_path / "q.keras"
    result = run(model_copy, "-r", write_rules(text), "-o", out)
    assert_clean_error(result, *needles)
    assert not out.exists()


def test_bad_model_inputs_exit_2_with_one_line(tmp_path, seed_h5):
    keras_file = tmp_path / "good.keras"
    seed_fp32().save(keras_file)
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(keras_file.read_bytes()[: keras_file.stat().st_size // 2])
    truncated_h5 = tmp_path / "truncated.h5"
    truncated_h5.write_bytes(seed_h5.read_bytes()[:4000])
    text_file = tmp_path / "notes.h5"
    text_file.write_text("not a model")
    weights_only = tmp_path / "weights.h5"
    seed_fp32().save_weights(tmp_path / "w.weights.h5")
    (tmp_path / "w.weights.h5").rename(weights_only)
    folder = tmp_path / "folder.keras"
    folder.mkdir()
    cases = {
        tmp_path / "missing.h5": "no such file",
        truncated: "not a Keras .keras archive",
        truncated_h5: "cannot load",
        text_file: "not an HDF5 file",
        weights_only: "cannot load",
        folder: "is a directory",
        tmp_path / "model.onnx": "no such file",
    }
    for path, needle in cases.items():
        before = sorted(p.name for p in tmp_path.iterdir())
        result = run(path, "-r", SIX_BIT, "-o", tmp_path / "out.keras")
        assert_clean_error(result, str(path), needle)
        assert sorted(p.name for p in tmp_path.iterdir()) == before, path  # nothing left behind


def test_unsupported_suffix_and_bad_outputs(model_copy, tmp_path):
    other = tmp_path / "model.onnx"
    other.write_bytes(b"\x00" * 10)
    assert_clean_error(run(other, "-r", SIX_BIT), "unsupported model format")
    assert_clean_error(run(model_copy, "-r", SIX_BIT, "-o", tmp_path / "q.h5"), "must be a .keras file")
    assert_clean_error(run(model_copy, "-r", SIX_BIT, "-o", tmp_path / "nowhere" / "q.keras"), "does not exist")
    keras_input = tmp_path / "in.keras"
    seed_fp32().save(keras_input)
    before = keras_input.read_bytes()
    assert_clean_error(run(keras_input, "-r", SIX_BIT, "-o", keras_input), "never overwrites its input")
    assert keras_input.read_bytes() == before


def test_debug_shows_the_traceback(tmp_path):
    result = run("--debug", tmp_path / "missing.h5", "-r", SIX_BIT)
    assert result.exit_code != 0 and isinstance(result.exception, qconvert.ModelLoadError)


def test_rules_check(write_rules):
    good = run("rules", "check", *sorted((ROOT / "rules").glob("*.yaml")))
    assert good.exit_code == 0 and "6bit.yaml: ok" in good.output
    bad = write_rules("version: 1\ndefaults:\n  kernel: quantized_bits(4, 5)\n")
    result = run("rules", "check", bad)
    assert_clean_error(result, ":3", "defaults.kernel", "integer=5")


def test_rules_show_prints_each_decision_and_converts_nothing(model_copy, tmp_path, write_rules):
    rules = write_rules(SIX_BIT.read_text() + "rules:\n  - match: {name: output}\n    kernel: quantized_bits(8, 0, alpha=1)\n")
    result = run("rules", "show", model_copy, "-r", rules)
    assert result.exit_code == 0, result.output
    lines: dict[str, str] = {}  # layer → its row (a table row, or a stacked block's lines)
    for line in result.output.splitlines():
        if line.startswith("│"):
            first = line.split("│")[1].strip()
            if first:
                lines[first] = line
                last = first
            else:
                lines[last] += line
    assert "quantized_bits(8,0,alpha=1)" in lines["output"] and "rule 1" in lines["output"]
    assert "quantized_bits(6,0,alpha=1)" in lines["fc1"] and "defaults" in lines["fc1"]
    assert "quantized_relu(6)" in lines["relu1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["jet.h5", "rules.yaml"])


def _imports_after(args: list[str]) -> set[str]:
    code = (
        "import sys\nfrom qconvert.cli import cli\n"
        f"try:\n    cli({args!r}, prog_name='qconvert')\nexcept SystemExit:\n    pass\n"
        "print('MODULES:' + ','.join(m for m in ('tensorflow', 'keras', 'qkeras', 'jax', 'hls4ml') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = [x for x in out.stdout.splitlines() if x.startswith("MODULES:")][-1]
    return set(filter(None, line.removeprefix("MODULES:").split(",")))


def test_help_and_rules_check_import_neither_tensorflow_nor_keras():
    assert _imports_after(["--help"]) == set()
    assert _imports_after(["rules", "check", str(SIX_BIT)]) == set()


def test_python_dash_m_and_console_script(model_copy, tmp_path):
    out = tmp_path / "q.keras"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-m", "qconvert", str(model_copy), "--rules", str(SIX_BIT), "-o", str(out)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert zipfile.is_zipfile(out)


@pytest.mark.parametrize(("args", "says"), [
    (["convrt", "x.keras"], "No such command 'convrt'. Did you mean 'convert'?"),
    (["serch"], "No such command 'serch'. Did you mean 'search'?"),
    (["frobnicate"], "No such command 'frobnicate'. Commands: convert, rules,"),
])
def test_a_mistyped_command_is_named_with_the_closest_one(args, says):
    result = run(*args)
    assert result.exit_code == 2 and says in result.output, result.output
    assert "--rules" not in result.output  # not mistaken for the main job's MODEL
    assert result.output.startswith("qconvert: error: ") and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(("args", "says"), [
    (["--family", "xc9"], "Invalid value for '--family': 'xc9' is not one of 'xcup', 'xcu', 'xc7'"),
    (["--bogus"], "No such option '--bogus'"),
    (["--epochs", "many"], "Invalid value for '--epochs': 'many' is not a valid integer"),
])
def test_usage_errors_are_one_line_in_the_house_style(seed_h5, tmp_path, args, says):
    """click's usage errors read like every other error: one ``qconvert: error:`` line, exit 2, nothing written."""
    result = run(seed_h5, "--rules", SIX_BIT, "-o", tmp_path / "q.keras", *args)
    assert_clean_error(result, says)
    assert not (tmp_path / "q.keras").exists()


def test_an_existing_file_named_like_a_word_is_still_the_main_jobs_model(seed_h5, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jet").write_bytes(seed_h5.read_bytes())  # a file without a suffix: the main job's MODEL, not a command
    result = run("jet", "--rules", SIX_BIT, "-o", tmp_path / "q.keras")
    assert result.exit_code == 2 and "No such command" not in result.output
    assert "jet: unsupported model format '(no suffix)'; expected .keras, .h5 or .json" in result.output


def _options():
    import click

    from qconvert.cli import cli

    def walk(command, path):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield from ((" ".join(path), p) for p in command.params if isinstance(p, click.Option) and not p.is_flag)

    return list(walk(cli, []))


def test_every_default_is_in_the_help_and_closed_sets_are_choices():
    import click

    from qconvert.search import PRUNERS

    unset = (None, getattr(click.core, "UNSET", None), ())
    hidden = [f"{cmd} {p.opts[-1]}" for cmd, p in _options()
              if p.default not in unset and not p.show_default and "default" not in (p.help or "").lower()]
    assert hidden == []
    pruner = next(p for cmd, p in _options() if cmd == "search" and p.name == "pruner")
    assert tuple(pruner.type.choices) == tuple(PRUNERS)


@pytest.mark.parametrize(("args", "says"), [
    (["--reuse-factor", "0"], "Invalid value for '--reuse-factor': 0 is not in the range x>=1"),
    (["--seed", "-1"], "Invalid value for '--seed': -1 is not in the range x>=0"),
    (["--strategy", "fast"], "Invalid value for '--strategy': 'fast' is not one of"),
    (["--clock-ns", "nan"], "Invalid value for '--clock-ns': nan is not a number"),
    (["--clock-ns", "inf"], "Invalid value for '--clock-ns': inf is not in the range"),
    (["--plot", "fig.png"], "--plot needs --epochs (the figure shows the training)"),
])
def test_numbers_and_closed_sets_are_checked_by_the_parser(seed_h5, tmp_path, args, says):
    result = run(seed_h5, "--rules", SIX_BIT, "-o", tmp_path / "q.keras", *args)
    assert_clean_error(result, says)
