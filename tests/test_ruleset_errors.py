"""Rule-file errors: each names the file, the line and the dotted key, with one message.

Pure parsing (qconvert.rules): nothing here imports Keras, TensorFlow or QKeras.
"""

from __future__ import annotations

import pytest
from kit import doc

from qconvert.errors import RuleError
from qconvert.rules import load_rules, loads_rules


def marked_line(text: str) -> int | None:
    """The line carrying the ``# <-`` marker: where an error must point."""
    for number, line in enumerate(text.splitlines(), start=1):
        if "# <-" in line:
            return number
    return None



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
        "unknown key; did you mean 'description'? expected one of version, description, input, defaults, rules",
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
