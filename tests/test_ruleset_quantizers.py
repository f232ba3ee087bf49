"""Quantizer specs of rule files: string and mapping forms, round trips, refused text (never evaluated).

Pure parsing (qconvert.quantizers): nothing here imports Keras, TensorFlow or QKeras.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kit import doc

from qconvert.quantizers import (
    FLOAT,
    QUANTIZERS,
    QuantizerSpec,
    QuantizerSyntaxError,
    parse_quantizer,
    spec_from_mapping,
)
from qconvert.rules import loads_rules


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
