"""Rule files: the shipped presets, rules/schema.json, quantizer parsing, errors, precedence.

Rule parsing is pure: nothing here imports Keras, TensorFlow or QKeras.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from qconvert.errors import RuleError
from qconvert.quantizers import (
    ACTIVATION_QUANTIZERS,
    FLOAT,
    QUANTIZERS,
    WEIGHT_QUANTIZERS,
    QuantizerSpec,
    QuantizerSyntaxError,
    parse_quantizer,
    spec_from_mapping,
)
from qconvert.rules import (
    BATCHNORM_MODES,
    KNOWN_ACTIVATIONS,
    WEIGHT_ROLES,
    LayerView,
    Settings,
    decide,
    decide_split,
    inherited,
    load_rules,
    loads_rules,
)

RULES_DIR = Path(__file__).resolve().parents[1] / "rules"
PRESETS = sorted(RULES_DIR.glob("*.yaml"))
SCHEMA = json.loads((RULES_DIR / "schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def qb(bits: int, integer: int, **kw) -> QuantizerSpec:
    """quantized_bits(bits, integer, **kw), built by the parser."""
    extra = "".join(f", {k}={v!r}" for k, v in kw.items())
    return parse_quantizer(f"quantized_bits({bits}, {integer}{extra})")


def act(text: str) -> QuantizerSpec:
    return parse_quantizer(text, "activation")


def doc(text: str) -> str:
    """A rule file written indented inside a test; line 1 is its first non-blank line."""
    return textwrap.dedent(text).lstrip("\n")


def marked_line(text: str) -> int | None:
    """The line carrying the ``# <-`` marker: where an error must point."""
    for number, line in enumerate(text.splitlines(), start=1):
        if "# <-" in line:
            return number
    return None


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


# --- quantizer specs ----------------------------------------------------------------
def test_string_and_mapping_forms_are_equal():
    text = parse_quantizer("quantized_bits(6, 0, alpha=1)")
    mapping = spec_from_mapping({"quantizer": "quantized_bits", "bits": 6, "integer": 0, "alpha": 1})
    assert text == mapping and str(text) == str(mapping)
    in_file = loads_rules(
        doc(
            """
            version: 1
            defaults:
              kernel: quantized_bits(6, 0, alpha=1)
              bias: {quantizer: quantized_bits, bits: 6, integer: 0, alpha: 1}
            """
        )
    )
    assert in_file.defaults.kernel == in_file.defaults.bias == text


def test_positional_and_keyword_arguments():
    canonical = QuantizerSpec("quantized_bits", (("bits", 6), ("integer", 2), ("alpha", 1)))
    for text in (
        "quantized_bits(6, 2, alpha=1)",
        "quantized_bits(6, integer=2, alpha=1)",
        "quantized_bits(bits=6, integer=2, alpha=1)",
        "quantized_bits(alpha=1, integer=2, bits=6)",  # keyword order does not matter
        "  quantized_bits( 6 ,2 , alpha = 1 )  ",
    ):
        assert parse_quantizer(text) == canonical, text
    # Parameters are kept in QKeras's order, whatever order they were written in.
    assert [k for k, _ in parse_quantizer("quantized_relu(use_sigmoid=1, bits=4)", "activation").params] == [
        "bits",
        "use_sigmoid",
    ]


def test_no_arguments_means_qkeras_defaults():
    assert parse_quantizer("binary") == parse_quantizer("binary()") == QuantizerSpec("binary")
    assert parse_quantizer("binary").bits == 1
    assert parse_quantizer("ternary").bits == 2
    assert parse_quantizer("quantized_bits").bits == 8  # QKeras's default width


@pytest.mark.parametrize("role", ["weight", "activation"])
def test_float(role):
    spec = parse_quantizer("float", role)
    assert spec == FLOAT == spec_from_mapping({"quantizer": "float"}, role)
    assert spec.is_float and spec.bits == 32 and str(spec) == "float"
    assert parse_quantizer(str(spec), role) == spec
    with pytest.raises(QuantizerSyntaxError, match="no parameters"):
        parse_quantizer("float(bits=8)", role)


@pytest.mark.parametrize(
    "text, role",
    [
        ("quantized_bits(6, 0, alpha=1)", "weight"),
        ("quantized_bits(8, 3)", "weight"),
        ("quantized_bits(4, 4, keep_negative=False)", "weight"),  # no sign bit: all 4 bits integer
        ("quantized_bits(6, 0, alpha='auto_po2', symmetric=True)", "weight"),
        ("quantized_po2(4, max_value=None)", "weight"),
        ("binary(use_01=True, alpha=0.5)", "weight"),
        ("ternary(alpha=1, threshold=0.3)", "weight"),
        ("stochastic_ternary(alpha='auto', temperature=4.0)", "weight"),
        ("quantized_relu(6)", "activation"),
        ("quantized_relu(4, 2, negative_slope=0.25, relu_upper_bound=6.0)", "activation"),
        ("quantized_tanh(4, symmetric=1)", "activation"),
        ("quantized_sigmoid(5, use_real_sigmoid=False)", "activation"),
        ("quantized_relu_po2(4, 1.0, 0.125)", "activation"),
        ("quantized_hswish(8, 3)", "activation"),
    ],
)
def test_round_trip(text, role):
    spec = parse_quantizer(text, role)
    assert parse_quantizer(str(spec), role) == spec
    assert spec_from_mapping(spec.to_dict(), role) == spec


@st.composite
def quantized_bits_params(draw) -> dict:
    bits = draw(st.integers(1, 32))
    params: dict = {"bits": bits}
    keep_negative = draw(st.sampled_from([None, True, False, 0, 1]))
    if keep_negative is not None:
        params["keep_negative"] = keep_negative
    sign = 1 if keep_negative in (None, True, 1) else 0
    if draw(st.booleans()):
        params["integer"] = draw(st.integers(0, bits - sign))
    if draw(st.booleans()):
        params["alpha"] = draw(
            st.sampled_from([None, 1, "auto", "auto_po2"]) | st.floats(min_value=1e-6, max_value=1e6)
        )
    if draw(st.booleans()):
        params["symmetric"] = draw(st.sampled_from([True, False, 0, 1]))
    if draw(st.booleans()):
        params["qnoise_factor"] = draw(st.floats(min_value=0, max_value=1))
    return params


@st.composite
def quantized_relu_params(draw) -> dict:
    bits = draw(st.integers(1, 32))
    params: dict = {"bits": bits}
    if draw(st.booleans()):
        params["integer"] = draw(st.integers(0, bits))
    if draw(st.booleans()):
        params["negative_slope"] = draw(st.sampled_from([0, 0.0]) | st.integers(0, 16).map(lambda k: 2.0**-k))
    if draw(st.booleans()):
        params["relu_upper_bound"] = draw(st.none() | st.floats(min_value=0, max_value=1e6))
    if draw(st.booleans()):
        params["use_sigmoid"] = draw(st.sampled_from([True, False, 0, 1]))
    return params


def spelled(draw, name: str, params: dict) -> str:
    """``name(...)`` with a random-length run of leading parameters positional, the rest as keywords."""
    order = [k for k in QUANTIZERS[name].params if k in params]
    leading = 0
    while leading < len(order) and order[leading] == list(QUANTIZERS[name].params)[leading]:
        leading += 1  # only an unbroken prefix of QKeras's order may be positional
    n_positional = draw(st.integers(0, leading))
    keywords = draw(st.permutations(order[n_positional:]))
    args = [repr(params[k]) for k in order[:n_positional]] + [f"{k}={params[k]!r}" for k in keywords]
    return f"{name}({', '.join(args)})"


@given(st.data())
def test_valid_quantizers_round_trip(data):
    name, role, params = data.draw(
        st.tuples(st.just("quantized_bits"), st.sampled_from(["weight", "activation"]), quantized_bits_params())
        | st.tuples(st.just("quantized_relu"), st.just("activation"), quantized_relu_params())
    )
    text = spelled(data.draw, name, params)
    spec = parse_quantizer(text, role)
    assert spec.name == name
    assert dict(spec.params) == params
    assert parse_quantizer(str(spec), role) == spec
    assert str(parse_quantizer(str(spec), role)) == str(spec)
    assert spec_from_mapping(spec.to_dict(), role) == spec
    assert spec.bits == params["bits"]


@given(bits=st.integers(1, 24), excess=st.integers(1, 8))
def test_integer_beyond_bits_is_refused(bits, excess):
    with pytest.raises(QuantizerSyntaxError, match="more than bits"):
        parse_quantizer(f"quantized_relu({bits}, {bits + excess})", "activation")
    with pytest.raises(QuantizerSyntaxError, match="leaves no room"):
        parse_quantizer(f"quantized_bits({bits}, {bits - 1 + excess})")  # one bit is the sign


@pytest.mark.parametrize(
    "text, message",
    [
        ("quantized_bits(6, bits=6)", "bits given twice"),
        ("quantized_bits(1, 0, 0, 1, 1, 0, 1, 0)", "at most 6 positional"),
        ("quantized_bits(-6)", "bits must be between 1 and 32, got -6"),
        ("quantized_bits(6.0)", "bits must be an integer"),
        ("quantized_bits(True)", "bits must be an integer"),
        ("quantized_bits(6, symmetric=2)", "symmetric must be true/false"),
        ("quantized_bits(6, alpha=0)", "alpha must be a positive number"),
        ("quantized_bits(6, alpha='max')", "alpha must be a positive number"),
        ("quantized_bits(6,", "cannot parse quantizer"),
        ("6", "expected a quantizer call"),
    ],
)
def test_bad_quantizer_text(text, message):
    with pytest.raises(QuantizerSyntaxError, match=message):
        parse_quantizer(text)


# Anything that is not a call of a known quantizer with literal arguments is refused
# before anything could run.
@pytest.mark.parametrize(
    "text",
    [
        "quantized_bits(__import__('os'))",
        "quantized_bits(6, 0+1)",
        "quantized_bits(6, integer=len('ab'))",
        "quantized_bits(*[6, 0])",
        "quantized_bits(**{'bits': 6})",
        "quantized_bits([6])",
        "quantized_bits(f'{6}')",
        "quantized_bits(6 if True else 4)",
        "quantized_bits(--6)",
        "__import__('os').system('true')",
        "(lambda: 6)()",
        "quantized_bits(6)(0)",
        "quantized_bits.__class__",
        "quantized_bits(6); import os",
        "eval('quantized_bits(6)')",
    ],
)
def test_code_is_refused(text):
    with pytest.raises(QuantizerSyntaxError):
        parse_quantizer(text)


def test_quantizer_text_is_never_evaluated(monkeypatch):
    monkeypatch.delenv("QCONVERT_EVAL_PROBE", raising=False)
    probe = "quantized_bits(__import__('os').environ.setdefault('QCONVERT_EVAL_PROBE', '6'))"
    with pytest.raises(QuantizerSyntaxError, match="only literal"):
        parse_quantizer(probe)
    assert "QCONVERT_EVAL_PROBE" not in os.environ


# Positional arguments beyond the ones qconvert reads in QKeras's own order are refused,
# never read as a different parameter than QKeras would.
@pytest.mark.parametrize(
    "text, role, misread_as",
    [
        # qkeras-v3: quantized_bits(bits, integer, symmetric, keep_negative, alpha,
        #                           use_stochastic_rounding, scale_axis, qnoise_factor, ...)
        ("quantized_bits(6, 0, 0, 1, 1, 0, 0.5)", "weight", "qnoise_factor"),
        # qkeras-v3: quantized_relu(..., relu_upper_bound, is_quantized_clip, qnoise_factor, ...)
        ("quantized_relu(6, 0, 0, 0, 0, None, 1)", "activation", "qnoise_factor"),
        # qkeras-v3: binary(use_01, alpha, training, use_stochastic_rounding, ...)
        ("binary(0, 1, 1)", "weight", "use_stochastic_rounding"),
    ],
)
def test_positional_arguments_follow_qkeras_order(text, role, misread_as):
    with pytest.raises(QuantizerSyntaxError, match="positional arguments"):
        parse_quantizer(text, role)


def test_infinite_values_are_refused():
    with pytest.raises(QuantizerSyntaxError, match="finite"):
        parse_quantizer("quantized_relu(4, relu_upper_bound=1e999)", "activation")


# --- rule-file errors: line, key, message ---------------------------------------
# Each text marks the line the error must name with "# <-" (no marker: no line).
ERROR_CASES = {
    "malformed YAML": (
        """
        version: 1
        defaults:
          kernel: quantized_bits(6, 0)
           bias: quantized_bits(6, 0)   # <-
        """,
        None,
        "malformed YAML",
    ),
    "unknown top-level key": (
        """
        version: 1
        descripton: typo   # <-
        """,
        "descripton",
        "unknown key; expected one of version, description, input, defaults, rules",
    ),
    "unknown key in defaults": (
        """
        version: 1
        defaults:
          kernel: quantized_bits(6, 0)
          kernal: quantized_bits(6, 0)   # <-
        """,
        "defaults.kernal",
        "unknown key",
    ),
    "unknown key in a rule": (
        """
        version: 1
        rules:
          - match: {name: fc1}
            kernel: quantized_bits(4, 0)
          - match: {name: fc2}
            kernal: quantized_bits(4, 0)   # <-
        """,
        "rules[1].kernal",
        "unknown key",
    ),
    "unknown quantizer": (
        """
        version: 1
        defaults:
          bias: quantized_bits(6, 0)
          kernel: quantised_bits(6, 0)   # <-
        """,
        "defaults.kernel",
        "unknown quantizer 'quantised_bits'",
    ),
    "unknown quantizer in a mapping": (
        """
        version: 1
        rules:
          - match: {name: output}
            kernel: {quantizer: quantised_bits, bits: 8}   # <-
        """,
        "rules[0].kernel",
        "unknown quantizer 'quantised_bits'",
    ),
    "unknown quantizer parameter": (
        """
        version: 1
        defaults:
          kernel: quantized_bits(6, 0, alpah=1)   # <-
        """,
        "defaults.kernel",
        "quantized_bits has no parameter 'alpah'",
    ),
    "bits 0": (
        """
        version: 1
        defaults:
          kernel: quantized_bits(6, 0)
          activation: quantized_relu(0)   # <-
        """,
        "defaults.activation",
        "bits must be between 1 and 32, got 0",
    ),
    "bits 0 in a mapping": (
        """
        version: 1
        defaults:
          bias: {quantizer: quantized_bits, bits: 0}   # <-
        """,
        "defaults.bias",
        "bits must be between 1 and 32, got 0",
    ),
    "integer beyond bits": (
        """
        version: 1
        defaults:
          activation: quantized_relu(4, 5)   # <-
        """,
        "defaults.activation",
        "integer=5 is more than bits=4",
    ),
    "no room for the sign": (
        """
        version: 1
        defaults:
          kernel: quantized_bits(4, 4)   # <-
        """,
        "defaults.kernel",
        "integer=4 leaves no room in bits=4 (one bit is the sign)",
    ),
    "activation-only quantizer for a weight": (
        """
        version: 1
        defaults:
          kernel: quantized_relu(4)   # <-
        """,
        "defaults.kernel",
        "quantized_relu cannot quantize weights",
    ),
    "activation-only quantizer for the input": (
        """
        version: 1
        input: quantized_tanh(8)   # <-
        """,
        "input",
        "quantized_tanh cannot quantize weights",
    ),
    "bad regex": (
        """
        version: 1
        rules:
          - match:
              glob: "fc*"
              regex: "fc[0-"   # <-
            kernel: quantized_bits(4, 0)
        """,
        "rules[0].match.regex",
        "invalid regular expression",
    ),
    "unknown activation function in a per-function mapping": (
        """
        version: 1
        defaults:
          activation:
            relu: quantized_relu(4)
            rleu: quantized_relu(4)   # <-
        """,
        "defaults.activation.rleu",
        "unknown activation function 'rleu'",
    ),
    "unknown activation function in a match": (
        """
        version: 1
        rules:
          - match: {activation: sofmax}   # <-
            keep: true
        """,
        "rules[0].match.activation",
        "unknown activation function 'sofmax'",
    ),
    "keep with a quantizer": (
        """
        version: 1
        rules:
          - match: {name: fc1}
            kernel: quantized_bits(4, 0)
          - match: {name: output}   # <-
            keep: true
            kernel: quantized_bits(8, 0)
        """,
        "rules[1]",
        "'keep: true' leaves the layer float; it cannot also set quantizers",
    ),
    "rule sets nothing": (
        """
        version: 1
        rules:
          - match: {name: fc1}
            kernel: quantized_bits(4, 0)
          - match: {name: fc2}   # <-
            note: forgot the quantizer
        """,
        "rules[1]",
        "sets nothing",
    ),
    "empty match": (
        """
        version: 1
        rules:
          - match: {}   # <-
            kernel: quantized_bits(4, 0)
        """,
        "rules[0].match",
        "needs at least one of type, name, glob, regex, activation",
    ),
    "bad batchnorm mode": (
        """
        version: 1
        defaults:
          batchnorm: folded   # <-
        """,
        "defaults.batchnorm",
        "must be one of fold, quantize, float, got 'folded'",
    ),
    "version 2": (
        """
        description: from the future
        version: 2   # <-
        """,
        "version",
        "must be 1, got 2",
    ),
    "missing version": (
        """
        description: no version   # <-
        defaults: {batchnorm: fold}
        """,
        "version",
        "must be 1, got None",
    ),
    "not a mapping": (
        """
        - version: 1   # <-
        """,
        None,
        "a rule file is a mapping",
    ),
    "eval: __import__": (
        """
        version: 1
        defaults:
          kernel: quantized_bits(__import__('os'))   # <-
        """,
        "defaults.kernel",
        "only literal numbers, strings, True/False/None are allowed",
    ),
    "eval: arithmetic": (
        """
        version: 1
        defaults:
          kernel: quantized_bits(6, 0+1)   # <-
        """,
        "defaults.kernel",
        "only literal numbers, strings, True/False/None are allowed, got '0 + 1'",
    ),
    "eval: attribute call": (
        """
        version: 1
        defaults:
          activation: __import__('os').system('true')   # <-
        """,
        "defaults.activation",
        "expected a quantizer call",
    ),
}


@pytest.mark.parametrize("text, key, message", ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_rule_errors_name_line_and_key(text, key, message):
    text = doc(text)
    with pytest.raises(RuleError) as info:
        loads_rules(text, "case.yaml")
    err = info.value
    assert message in err.message
    assert err.line == marked_line(text)
    assert err.key == key
    assert err.source == "case.yaml"


def test_duplicate_key():
    text = doc(
        """
        version: 1
        defaults:
          kernel: quantized_bits(6, 0)
          kernel: quantized_bits(4, 0)   # <-
        """
    )
    with pytest.raises(RuleError, match="duplicate key") as info:
        loads_rules(text)
    assert info.value.line == marked_line(text)
    # Other errors give the dotted path ("defaults.kernel"); this one gives the bare key.
    assert info.value.key in ("kernel", "defaults.kernel")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"], ids=["empty", "blank", "comment"])
def test_empty_file(text):
    with pytest.raises(RuleError, match="empty") as info:
        loads_rules(text)
    assert info.value.line is None and info.value.key is None


def test_error_renders_file_line_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\ndefaults:\n  kernel: quantized_relu(4)\n", encoding="utf-8")
    with pytest.raises(RuleError) as info:
        load_rules(path)
    assert str(info.value) == f"{path}:3: defaults.kernel: {info.value.message}"
    assert info.value.message.startswith("quantized_relu cannot quantize weights")


def test_missing_file(tmp_path):
    with pytest.raises(RuleError, match="no such rule file"):
        load_rules(tmp_path / "absent.yaml")
    with pytest.raises(RuleError, match="is a directory"):
        load_rules(tmp_path)


# --- precedence --------------------------------------------------------------------
def winner(ruleset, name: str, type_: str = "Dense", activation: str | None = None):
    rule = ruleset.select(LayerView(name, type_, activation))
    return None if rule is None else rule.note


def test_rank_name_over_regex_over_glob_over_type():
    # The most specific rule is listed last, so list order cannot explain the result.
    ruleset = loads_rules(
        doc(
            """
            version: 1
            rules:
              - {match: {type: Dense}, kernel: quantized_bits(2), note: type}
              - {match: {glob: "fc*"}, kernel: quantized_bits(3), note: glob}
              - {match: {regex: "fc[0-9]"}, kernel: quantized_bits(4), note: regex}
              - {match: {name: fc1}, kernel: quantized_bits(5), note: name}
            """
        )
    )
    assert winner(ruleset, "fc1") == "name"
    assert winner(ruleset, "fc2") == "regex"
    assert winner(ruleset, "fcx") == "glob"
    assert winner(ruleset, "dense") == "type"
    assert winner(ruleset, "conv", "Conv2D") is None
    assert winner(ruleset, "fc12", "Conv2D") == "glob"  # regex must match the whole name


def test_more_selectors_win_at_equal_rank_but_not_over_rank():
    ruleset = loads_rules(
        doc(
            """
            version: 1
            rules:
              - {match: {glob: "fc*"}, kernel: quantized_bits(3), note: glob}
              - {match: {glob: "fc*", type: Dense}, kernel: quantized_bits(4), note: glob+type}
              - {match: {glob: "fc*", type: Dense, activation: relu}, kernel: quantized_bits(5), note: glob+type+act}
              - {match: {regex: "fc1"}, kernel: quantized_bits(6), note: regex}
            """
        )
    )
    assert winner(ruleset, "fc2", "Conv2D") == "glob"
    assert winner(ruleset, "fc2", "Dense") == "glob+type"
    assert winner(ruleset, "fc2", "Dense", "relu") == "glob+type+act"
    assert winner(ruleset, "fc1", "Dense", "relu") == "regex"  # rank 3 beats three rank-2/1 selectors


@pytest.mark.parametrize("first, second", [("f*", "fc*"), ("fc*", "f*")])
def test_first_listed_wins_a_full_tie(first, second):
    ruleset = loads_rules(
        doc(
            f"""
            version: 1
            rules:
              - {{match: {{glob: "{first}"}}, kernel: quantized_bits(3), note: first}}
              - {{match: {{glob: "{second}"}}, kernel: quantized_bits(4), note: second}}
            """
        )
    )
    assert winner(ruleset, "fc1") == "first"


def test_keys_the_winner_omits_come_from_defaults():
    ruleset = loads_rules(
        doc(
            """
            version: 1
            defaults:
              kernel: quantized_bits(6, 0, alpha=1)
              bias: quantized_bits(6, 0, alpha=1)
              activation: quantized_relu(6)
            rules:
              - match: {type: Dense}
                bias: quantized_bits(2, 0)
              - match: {name: output}
                kernel: quantized_bits(8, 0, alpha=1)
            """
        )
    )
    rule = ruleset.select(LayerView("output", "Dense"))
    effective = rule.settings.over(ruleset.defaults)
    assert effective.kernel == qb(8, 0, alpha=1)
    assert effective.bias == qb(6, 0, alpha=1)  # from defaults, not from the losing type rule
    assert effective.activation == ruleset.defaults.activation


def test_extra_rules_compete_by_the_same_precedence():
    ruleset = loads_rules(
        doc(
            """
            version: 1
            rules:
              - {match: {name: fc1}, activation: quantized_relu(3), note: parent}
              - {match: {regex: "relu[0-9]"}, activation: quantized_relu(4), note: regex}
            """
        )
    )
    parent = ruleset.rules[0]
    assert ruleset.select(LayerView("act", "Activation", "relu"), extra=[parent]).note == "parent"
    assert ruleset.select(LayerView("relu1", "Activation", "relu"), extra=[parent]).note == "parent"  # name 4 > regex 3


DECIDE_RULES = doc(
    """
    version: 1
    defaults:
      kernel: quantized_bits(6, 0, alpha=1)
    rules:
      - {match: {type: Dense}, activation: quantized_relu(4), note: by type}
      - {match: {name: fc1}, kernel: "quantized_bits(8, 0, alpha=1)", activation: quantized_relu(3), note: by name}
      - {match: {name: out}, keep: true}
    """
)


def test_decide_merges_defaults_keeps_and_counts_every_matching_rule():
    ruleset = loads_rules(DECIDE_RULES)
    fc1 = decide(ruleset, LayerView("fc1", "Dense"))
    assert (fc1.rule.note, fc1.keep, fc1.matched) == ("by name", False, frozenset({0, 1}))
    assert fc1.settings.kernel == qb(8, 0, alpha=1) and fc1.settings.activation.default == act("quantized_relu(3)")
    fc2 = decide(ruleset, LayerView("fc2", "Dense"))
    assert fc2.rule.note == "by type" and fc2.settings.kernel == qb(6, 0, alpha=1)  # kernel from defaults
    out = decide(ruleset, LayerView("out", "Dense"))
    assert out.keep and out.settings == Settings() and out.matched == frozenset({0, 2})
    none = decide(ruleset, LayerView("flat", "Flatten"))
    assert none.rule is None and none.settings == ruleset.defaults and none.matched == frozenset()


def test_decide_without_a_name_sees_only_the_rules_that_do_not_select_by_name():
    """Source code without a literal name= (the codemod): name/glob/regex rules cannot match, even with name ''."""
    ruleset = loads_rules(DECIDE_RULES + "  - {match: {glob: '*'}, kernel: 'quantized_bits(2, 0)'}\n")
    unnamed = decide(ruleset, LayerView("", "Dense"), named=False)
    assert unnamed.rule.note == "by type" and unnamed.matched == frozenset({0})
    assert decide(ruleset, LayerView("", "Dense")).rule.index == 3  # the glob matches '' when the name counts


def test_a_split_activation_inherits_its_parents_activation_rules():
    ruleset = loads_rules(DECIDE_RULES)
    split = decide_split(ruleset, "relu1", "relu", LayerView("fc1", "Dense"))
    assert split.rule.note == "by name" and split.settings.activation.default == act("quantized_relu(3)")
    assert inherited(ruleset, LayerView("fc1", "Dense"), named=False) == (ruleset.rules[0],)
    split = decide_split(ruleset, "relu1", "relu", LayerView("", "Dense"), parent_named=False)
    assert split.rule.note == "by type" and split.matched == frozenset({0})


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
    with pytest.raises(RuleError, match=r"no such rule file \(shipped presets: 4bit, 4bit-auto, 6bit, ") as err:
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
