"""Rule files: the shipped presets, rules/schema.json (it agrees with the loader), presets by name.

Rule parsing is pure: nothing here imports Keras, TensorFlow or QKeras. The rest of the rule-file tests:
quantizer parsing in test_ruleset_quantizers.py, rule-file errors in test_ruleset_errors.py, precedence
and decide() in test_ruleset_precedence.py; the helpers they share (qb, act, doc) are in kit.py.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from kit import act, qb

from qconvert.errors import RuleError
from qconvert.quantizers import ACTIVATION_QUANTIZERS, QUANTIZERS, WEIGHT_QUANTIZERS, QuantizerSpec, parse_quantizer
from qconvert.rules import (
    BATCHNORM_MODES,
    KNOWN_ACTIVATIONS,
    WEIGHT_ROLES,
    LayerView,
    Settings,
    load_rules,
    loads_rules,
)

RULES_DIR = Path(__file__).resolve().parents[1] / "rules"
PRESETS = sorted(RULES_DIR.glob("*.yaml"))
SCHEMA = json.loads((RULES_DIR / "schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def schema_accepts(text: str) -> bool:
    return VALIDATOR.is_valid(yaml.safe_load(text))


def loader_accepts(text: str) -> bool:
    try:
        loads_rules(text)
    except RuleError:
        return False
    return True


def test_rule_parsing_imports_no_keras():
    code = (
        "import sys, qconvert.rules, qconvert.quantizers\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'qkeras'))\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=RULES_DIR.parent)


# --- presets -------------------------------------------------------------------
def test_expected_presets_exist():
    names = {p.stem for p in PRESETS}
    assert {"4bit", "6bit", "8bit", "ternary", "binary", "mixed_jet_tagger"} <= names


def test_schema_is_a_valid_draft_2020_12_schema():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_preset_loads_and_matches_schema(path):
    ruleset = load_rules(path)
    assert ruleset.version == 1
    assert ruleset.description
    assert ruleset.source == str(path)
    errors = [e.message for e in VALIDATOR.iter_errors(yaml.safe_load(path.read_text(encoding="utf-8")))]
    assert errors == []


@pytest.mark.parametrize("path", [p for p in PRESETS if p.stem != "mixed_jet_tagger"], ids=lambda p: p.name)
def test_uniform_presets_have_no_rules(path):
    # A rule that matches no layer of a model is an error, so a preset meant for
    # any model may only set defaults.
    ruleset = load_rules(path)
    assert ruleset.rules == ()
    assert ruleset.defaults.kernel is not None and ruleset.defaults.bias is not None
    assert ruleset.defaults.activation is not None
    assert ruleset.defaults.batchnorm == "fold"


def test_6bit_preset_is_exactly_the_seed_setting():
    ruleset = load_rules(RULES_DIR / "6bit.yaml")
    six = QuantizerSpec("quantized_bits", (("bits", 6), ("integer", 0), ("alpha", 1)))
    assert ruleset.defaults.kernel == six
    assert ruleset.defaults.bias == six
    assert str(ruleset.defaults.kernel) == str(ruleset.defaults.bias) == "quantized_bits(6,0,alpha=1)"
    relu = QuantizerSpec("quantized_relu", (("bits", 6),))
    assert ruleset.defaults.activation.explicit("relu") == relu and str(relu) == "quantized_relu(6)"  # the seed's ReLU
    assert ruleset.defaults.batchnorm == "fold"
    assert ruleset.input is None and ruleset.rules == ()


@pytest.mark.parametrize("bits", [4, 6, 8])
def test_n_bit_presets(bits):
    defaults = load_rules(RULES_DIR / f"{bits}bit.yaml").defaults
    assert defaults.kernel == defaults.bias == qb(bits, 0, alpha=1)
    policy = defaults.activation
    assert policy.default is None
    assert dict(policy.by_function) == {
        "relu": act(f"quantized_relu({bits})"),
        "relu6": act(f"quantized_relu({bits})"),
        "leaky_relu": act(f"quantized_relu({bits})"),
        "tanh": act(f"quantized_tanh({bits})"),
        "sigmoid": act(f"quantized_sigmoid({bits})"),
    }


def test_ternary_and_binary_presets():
    ternary = load_rules(RULES_DIR / "ternary.yaml").defaults
    assert ternary.kernel == parse_quantizer("ternary(alpha=1)") and ternary.kernel.bits == 2
    assert ternary.bias == qb(8, 3)
    assert dict(ternary.activation.by_function) == {"relu": act("quantized_relu(3)")}

    binary = load_rules(RULES_DIR / "binary.yaml").defaults
    assert binary.kernel == parse_quantizer("binary(alpha=1)") and binary.kernel.bits == 1
    assert binary.bias == qb(8, 3)
    assert dict(binary.activation.by_function) == {"relu": act("binary(alpha=1)"), "tanh": act("binary(alpha=1)")}


# The seed's jet tagger as the planner sees it: Dense layers, and the activations
# split out of their `activation=` argument.
JET_TAGGER = {
    "fc1": LayerView("fc1", "Dense"),
    "fc2": LayerView("fc2", "Dense"),
    "fc3": LayerView("fc3", "Dense"),
    "output": LayerView("output", "Dense"),
    "relu1": LayerView("relu1", "Activation", "relu"),
    "relu2": LayerView("relu2", "Activation", "relu"),
    "relu3": LayerView("relu3", "Activation", "relu"),
    "softmax": LayerView("softmax", "Activation", "softmax"),
}


def test_mixed_jet_tagger_preset():
    ruleset = load_rules(RULES_DIR / "mixed_jet_tagger.yaml")
    assert ruleset.input == qb(16, 6)
    assert ruleset.defaults.kernel == qb(6, 0, alpha=1)
    winner = {name: ruleset.select(view) for name, view in JET_TAGGER.items()}

    for name in ("fc1", "fc2", "fc3"):
        assert winner[name].match.glob == "fc*"
    output = winner["output"]
    assert output.match.name == "output"
    assert output.settings.kernel == qb(8, 0, alpha=1)  # written as a mapping in the file
    effective = output.settings.over(ruleset.defaults)
    assert effective.kernel == qb(8, 0, alpha=1)
    assert effective.bias == ruleset.defaults.bias  # omitted by the rule: from defaults

    assert winner["relu1"] is None  # regex relu[23] must match the whole name
    for name in ("relu2", "relu3"):
        assert winner[name].match.regex == "relu[23]"
        assert winner[name].settings.activation.default == act("quantized_relu(4)")
    assert winner["softmax"].keep

    # Every rule selects some layer of the jet tagger (else conversion would refuse it).
    used = {r.index for r in winner.values() if r is not None}
    assert used == {r.index for r in ruleset.rules}


# --- the schema agrees with the loader -----------------------------------------
def test_schema_quantizer_tables_mirror_quantizers_py():
    defs = SCHEMA["$defs"]
    for name, info in QUANTIZERS.items():
        assert [k for k in defs[f"q_{name}"]["properties"] if k != "quantizer"] == list(info.params)
    for role, names in (("weight", WEIGHT_QUANTIZERS), ("activation", ACTIVATION_QUANTIZERS)):
        string_form, mapping_form = defs[f"{role}Quantizer"]["oneOf"]
        assert set(mapping_form["properties"]["quantizer"]["enum"]) == set(names) | {"float"}
        for name in QUANTIZERS:  # the string form's name pattern admits exactly the role's quantizers
            assert bool(re.match(string_form["pattern"], f"{name}(4)")) is (name in names), (role, name)
    assert set(defs["activationFunction"]["enum"]) == KNOWN_ACTIVATIONS
    assert defs["batchnorm"]["enum"] == list(BATCHNORM_MODES)


def test_weight_roles_are_the_settings_quantizer_fields_and_the_schema_keys():
    """One list of weight roles: every Settings field that holds a quantizer, every weight key the schema
    allows in defaults and rules, and each one accepted by the loader."""
    quantizer_fields = [f.name for f in dataclasses.fields(Settings) if f.name in WEIGHT_ROLES]
    assert quantizer_fields == list(WEIGHT_ROLES)
    others = {f.name for f in dataclasses.fields(Settings)} - set(WEIGHT_ROLES)
    assert others == {"activation", "batchnorm", "prune"}
    for section in ("defaults", "rule"):
        keys = set(SCHEMA["$defs"][section]["properties"]) - {"match", "keep", "note"}
        assert keys - others == set(WEIGHT_ROLES), section
    text = "version: 1\ndefaults:\n" + "".join(f"  {role}: quantized_bits(5, 1)\n" for role in WEIGHT_ROLES)
    defaults = loads_rules(text).defaults
    assert all(getattr(defaults, role) == qb(5, 1) for role in WEIGHT_ROLES)


AGREEMENT_CASES = {
    # accepted by both
    "minimal": ("version: 1\n", True),
    "null sections": ("version: 1\ninput:\ndefaults:\nrules:\n", True),
    "mapping quantizer": ("version: 1\ndefaults:\n  kernel: {quantizer: quantized_bits, bits: 6, alpha: auto}\n", True),
    "float": ("version: 1\ndefaults:\n  kernel: float\n  bias: {quantizer: float}\n", True),
    "per-function activation": ("version: 1\ndefaults:\n  activation: {relu: quantized_relu(4), tanh: binary}\n", True),
    "type list and keep": (
        "version: 1\nrules:\n  - match: {type: [Dense, Conv2D], activation: [relu]}\n    keep: true\n",
        True,
    ),
    "keep false with setting": (
        "version: 1\nrules:\n  - match: {name: a}\n    keep: false\n    batchnorm: float\n",
        True,
    ),
    # refused by both
    "no version": ("defaults: {batchnorm: fold}\n", False),
    "version 2": ("version: 2\n", False),
    "unknown top-level key": ("version: 1\nrule: []\n", False),
    "top level is a list": ("- version: 1\n", False),
    "unknown defaults key": ("version: 1\ndefaults: {kernal: binary}\n", False),
    "unknown quantizer (string)": ("version: 1\ndefaults: {kernel: quantised_bits(6)}\n", False),
    "unknown quantizer (mapping)": ("version: 1\ndefaults: {kernel: {quantizer: quantised_bits}}\n", False),
    "mapping without quantizer": ("version: 1\ndefaults: {kernel: {bits: 6}}\n", False),
    "unknown parameter (mapping)": ("version: 1\ndefaults: {kernel: {quantizer: quantized_bits, alpah: 1}}\n", False),
    "bits 0 (mapping)": ("version: 1\ndefaults: {kernel: {quantizer: quantized_bits, bits: 0}}\n", False),
    "activation-only quantizer as kernel": ("version: 1\ndefaults: {kernel: quantized_relu(4)}\n", False),
    "activation-only quantizer as input": ("version: 1\ninput: {quantizer: quantized_tanh}\n", False),
    "unknown activation function": ("version: 1\ndefaults: {activation: {rleu: quantized_relu(4)}}\n", False),
    "batchnorm mode": ("version: 1\ndefaults: {batchnorm: folded}\n", False),
    "null kernel": ("version: 1\ndefaults: {kernel: null}\n", False),
    "rule without match": ("version: 1\nrules:\n  - kernel: binary\n", False),
    "empty match": ("version: 1\nrules:\n  - match: {}\n    kernel: binary\n", False),
    "unknown selector": ("version: 1\nrules:\n  - match: {nmae: a}\n    kernel: binary\n", False),
    "empty name": ("version: 1\nrules:\n  - match: {name: ''}\n    kernel: binary\n", False),
    "empty type list": ("version: 1\nrules:\n  - match: {type: []}\n    kernel: binary\n", False),
    "unknown match activation": ("version: 1\nrules:\n  - match: {activation: sofmax}\n    keep: true\n", False),
    "bad regex": ("version: 1\nrules:\n  - match: {regex: 'fc[0-'}\n    kernel: binary\n", False),
    "keep not boolean": ("version: 1\nrules:\n  - match: {name: a}\n    keep: 'yes'\n", False),
    "keep with quantizer": ("version: 1\nrules:\n  - match: {name: a}\n    keep: true\n    kernel: binary\n", False),
    "rule sets nothing": ("version: 1\nrules:\n  - match: {name: a}\n    note: nothing\n", False),
    "rules not a list": ("version: 1\nrules: {match: {name: a}}\n", False),
}


@pytest.mark.parametrize("text, valid", AGREEMENT_CASES.values(), ids=AGREEMENT_CASES.keys())
def test_schema_and_loader_agree(text, valid):
    assert loader_accepts(text) is valid
    assert schema_accepts(text) is valid


# --- presets by name ---------------------------------------------------------------


def test_a_preset_loads_by_name_wherever_the_command_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no rules/ folder here
    by_name = load_rules("6bit")
    by_path = load_rules(Path(__file__).resolve().parent.parent / "rules" / "6bit.yaml")
    assert by_name.sha256 == by_path.sha256 and by_name.defaults == by_path.defaults


def test_a_file_of_that_name_wins_over_the_preset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "6bit").write_text("version: 1\ndefaults:\n  kernel: quantized_bits(3, 0)\n")
    assert str(load_rules("6bit").defaults.kernel) == "quantized_bits(3,0)"


def test_an_unknown_name_lists_the_presets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuleError, match=r"no such rule file; did you mean one of '4bit', '6bit', '8bit'\? \(shipped presets: 4bit, 4bit-") as err:
        load_rules("7bit")
    from qconvert.rules import preset_names

    assert {"6bit", "8bit", "binary", "6bit-auto"} <= set(preset_names())
    assert str(err.value).endswith(f"presets: {', '.join(preset_names())})")


def test_the_presets_are_packaged_with_the_wheel():
    """rules/ installs as qconvert/presets (pyproject's package-dir), so a wheel install finds them too."""
    import tomllib

    config = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"]["qconvert.presets"] == "rules" and "qconvert.presets" in config["packages"]
    assert "*.yaml" in config["package-data"]["qconvert.presets"]
    root = Path(__file__).resolve().parent.parent
    found = {p.parent.relative_to(root).as_posix() for p in (root / "qconvert").rglob("__init__.py")}
    listed = {name.replace(".", "/") for name in config["packages"] if name != "qconvert.presets"}
    assert listed == found  # a new subpackage must be listed, or wheels leave it out
