"""Quantizer specifications: the QKeras quantizers a rule file may name.

A :class:`QuantizerSpec` is plain data (a name and its parameters). It is
parsed from the familiar QKeras spelling ``quantized_bits(6, 0, alpha=1)`` by a
real parser (Python's ``ast`` in ``eval`` mode, then a whitelist of literal
nodes; nothing is ever evaluated) or from a mapping
``{quantizer: quantized_bits, bits: 6, integer: 0, alpha: 1}``.

This module imports neither Keras nor QKeras: ``qconvert rules check`` runs
without them. :func:`build` turns a spec into the QKeras object when a model is
rewritten. The parameter table below mirrors qkeras-v3's signatures; a test
checks it against the installed package.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ACTIVATION_QUANTIZERS",
    "AUTO",
    "FLOAT",
    "QUANTIZERS",
    "WEIGHT_QUANTIZERS",
    "QuantizerSpec",
    "build",
    "parse_quantizer",
    "spec_from_mapping",
]

#: ``integer: auto``: the integer bits are resolved per layer by calibration
#: (:mod:`qconvert.model.calibrate`) before any QKeras object is built.
AUTO = "auto"

# --- parameter checks ---------------------------------------------------------
Check = Callable[[Any], str | None]  # returns a complaint, or None when fine


def _int_range(lo: int, hi: int) -> Check:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int):
            return f"must be an integer, got {v!r}"
        if not lo <= v <= hi:
            return f"must be between {lo} and {hi}, got {v}"
        return None

    return check


def _number(lo: float = -math.inf, hi: float = math.inf, *, none_ok: bool = False) -> Check:
    def check(v: Any) -> str | None:
        if v is None and none_ok:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return f"must be a finite number, got {v!r}"
        if not lo <= v <= hi:
            return f"must be between {lo} and {hi}, got {v}"
        return None

    return check


def _flag(v: Any) -> str | None:
    if isinstance(v, bool) or (type(v) is int and v in (0, 1)):
        return None
    return f"must be true/false (or 0/1), got {v!r}"


def _slope(v: Any) -> str | None:
    complaint = _number(0, 1)(v)
    if complaint is None and v and math.log2(v) != int(math.log2(v)):
        complaint = f"must be 0 or a power of two (QKeras's limit), got {v}"
    return complaint


def _alpha(v: Any) -> str | None:
    if v is None or v in ("auto", "auto_po2"):
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
        return f"must be a positive number, 'auto' or 'auto_po2', got {v!r}"
    return None


_BITS = _int_range(1, 32)


def _INTEGER(v: Any) -> str | None:
    if v == AUTO:
        return None
    return _int_range(0, 32)(v)


#: The quantizers whose ``integer`` calibration resolves (``integer: auto``).
_AUTO_INTEGER = ("quantized_bits", "quantized_relu")


def _FIXED_INTEGER(v: Any) -> str | None:  # quantizers whose integer bits calibration does not resolve
    return _int_range(0, 32)(v)


@dataclass(frozen=True)
class QuantizerInfo:
    """What qconvert knows of one QKeras quantizer."""

    params: dict[str, Check]  # in QKeras's positional order
    roles: frozenset[str]  # "weight", "activation"
    fixed_bits: int | None = None  # binary = 1, ternary = 2
    positional: int | None = None  # how many leading params QKeras's signature takes in this order (None: all)

    @property
    def positional_names(self) -> list[str]:
        names = list(self.params)
        return names if self.positional is None else names[: self.positional]


_W, _A = "weight", "activation"
QUANTIZERS: dict[str, QuantizerInfo] = {
    "quantized_bits": QuantizerInfo(
        {
            "bits": _BITS,
            "integer": _INTEGER,
            "symmetric": _flag,
            "keep_negative": _flag,
            "alpha": _alpha,
            "use_stochastic_rounding": _flag,
            "qnoise_factor": _number(0, 1),
        },
        frozenset({_W, _A}),
        positional=6,  # QKeras's 7th is scale_axis
    ),
    "quantized_relu": QuantizerInfo(
        {
            "bits": _BITS,
            "integer": _INTEGER,
            "use_sigmoid": _flag,
            "negative_slope": _slope,
            "use_stochastic_rounding": _flag,
            "relu_upper_bound": _number(0, none_ok=True),
            "qnoise_factor": _number(0, 1),
        },
        frozenset({_A}),
        positional=6,  # QKeras's 7th is is_quantized_clip: not accepted, qkeras-v3's get_config drops it (not saved)
    ),
    "quantized_tanh": QuantizerInfo(
        {"bits": _BITS, "use_stochastic_rounding": _flag, "symmetric": _flag, "use_real_tanh": _flag},
        frozenset({_A}),
    ),
    "quantized_sigmoid": QuantizerInfo(
        {"bits": _BITS, "symmetric": _flag, "use_real_sigmoid": _flag, "use_stochastic_rounding": _flag},
        frozenset({_A}),
    ),
    "quantized_po2": QuantizerInfo(
        {"bits": _BITS, "max_value": _number(0, none_ok=True), "use_stochastic_rounding": _flag},
        frozenset({_W, _A}),
    ),
    "quantized_relu_po2": QuantizerInfo(
        {
            "bits": _BITS,
            "max_value": _number(0, none_ok=True),
            "negative_slope": _slope,
            "use_stochastic_rounding": _flag,
        },
        frozenset({_A}),
    ),
    "quantized_hswish": QuantizerInfo(
        {"bits": _BITS, "integer": _FIXED_INTEGER, "symmetric": _flag, "alpha": _alpha},
        frozenset({_A}),
    ),
    "binary": QuantizerInfo(
        {"use_01": _flag, "alpha": _alpha, "use_stochastic_rounding": _flag},
        frozenset({_W, _A}),
        fixed_bits=1,
        positional=2,  # QKeras's 3rd is training
    ),
    "ternary": QuantizerInfo(
        {"alpha": _alpha, "threshold": _number(0, 1, none_ok=True), "use_stochastic_rounding": _flag},
        frozenset({_W, _A}),
        fixed_bits=2,
    ),
    "stochastic_binary": QuantizerInfo(
        {"alpha": _alpha, "temperature": _number(0), "use_real_sigmoid": _flag},
        frozenset({_W, _A}),
        fixed_bits=1,
    ),
    "stochastic_ternary": QuantizerInfo(
        {"alpha": _alpha, "threshold": _number(0, 1, none_ok=True), "temperature": _number(0)},
        frozenset({_W, _A}),
        fixed_bits=2,
    ),
}
WEIGHT_QUANTIZERS = frozenset(n for n, i in QUANTIZERS.items() if _W in i.roles)
ACTIVATION_QUANTIZERS = frozenset(n for n, i in QUANTIZERS.items() if _A in i.roles)
_POSITIONAL_IN_TEXT = ("bits", "integer")  # rendered positionally, as QKeras users write them


@dataclass(frozen=True)
class QuantizerSpec:
    """A validated quantizer: ``name`` and the parameters set explicitly.

    ``FLOAT`` (name ``"float"``) is the pass-through: no quantization.
    """

    name: str
    params: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def is_float(self) -> bool:
        return self.name == "float"

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)

    @property
    def is_auto(self) -> bool:
        """``integer: auto``: calibration must resolve the integer bits before the quantizer is built."""
        return self.get("integer") == AUTO

    def with_params(self, **extra: Any) -> QuantizerSpec:
        """A copy with ``extra`` parameters set (kept in QKeras's order)."""
        merged = dict(self.params) | extra
        order = list(QUANTIZERS[self.name].params)
        return QuantizerSpec(self.name, tuple(sorted(merged.items(), key=lambda kv: order.index(kv[0]))))

    @property
    def bits(self) -> int:
        """Bit width of a value this quantizer produces (32 for float)."""
        if self.is_float:
            return 32
        info = QUANTIZERS[self.name]
        if info.fixed_bits is not None:
            return info.fixed_bits
        return int(self.get("bits", 8))

    def __str__(self) -> str:
        if self.is_float:
            return "float"
        params = dict(self.params)
        parts: list[str] = []
        for key in _POSITIONAL_IN_TEXT:
            if key not in params:
                break
            value = params.pop(key)
            parts.append(AUTO if value == AUTO else _literal(value))  # bare, as a rule file writes it
        parts += [f"{k}={_literal(v)}" for k, v in params.items()]
        return f"{self.name}({','.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        return {"quantizer": self.name, **dict(self.params)}


FLOAT = QuantizerSpec("float")


def _literal(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v)


# --- parsing ------------------------------------------------------------------
class QuantizerSyntaxError(ValueError):
    """The text is not a quantizer spec; the message says why."""


def _validate(name: str, params: Mapping[str, Any], role: str) -> QuantizerSpec:
    if name == "float":
        if params:
            raise QuantizerSyntaxError("'float' takes no parameters")
        return FLOAT
    info = QUANTIZERS.get(name)
    if info is None:
        from .errors import did_you_mean

        hint = did_you_mean(name, [*QUANTIZERS, "float"])
        raise QuantizerSyntaxError(f"unknown quantizer {name!r}{hint or ';'} known: {', '.join(sorted(QUANTIZERS))}, float")
    if role not in info.roles:
        allowed = WEIGHT_QUANTIZERS if role == _W else ACTIVATION_QUANTIZERS
        raise QuantizerSyntaxError(
            f"{name} cannot quantize {role}s; use one of {', '.join(sorted(allowed))}"
        )
    for key, value in params.items():
        if value == AUTO and key != "alpha" and not (key == "integer" and name in _AUTO_INTEGER):
            raise QuantizerSyntaxError(f"{name}: {key} cannot be auto; 'auto' is for the integer bits of "
                                       f"{' and '.join(_AUTO_INTEGER)}")
        check = info.params.get(key)
        if check is None:
            raise QuantizerSyntaxError(
                f"{name} has no parameter {key!r}; known: {', '.join(info.params)}"
            )
        complaint = check(value)
        if complaint:
            raise QuantizerSyntaxError(f"{name}: {key} {complaint}")
    bits, integer = params.get("bits", 8), params.get("integer", 0)
    if integer == AUTO:
        pass  # resolved by calibration, within bits
    elif name == "quantized_bits":
        sign = 1 if params.get("keep_negative", True) else 0
        if integer + sign > bits:
            raise QuantizerSyntaxError(
                f"quantized_bits: integer={integer} leaves no room in bits={bits}"
                + (" (one bit is the sign)" if sign else "")
            )
    elif "integer" in info.params and integer > bits:
        raise QuantizerSyntaxError(f"{name}: integer={integer} is more than bits={bits}")
    order = list(info.params)
    return QuantizerSpec(name, tuple(sorted(params.items(), key=lambda kv: order.index(kv[0]))))


def _literal_value(node: ast.AST) -> Any:
    if isinstance(node, ast.Name) and node.id == AUTO:
        return AUTO
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, (ast.USub, ast.UAdd))
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
        and not isinstance(node.operand.value, bool)
    ):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    raise QuantizerSyntaxError(f"only literal numbers, strings, True/False/None are allowed, got {ast.unparse(node)!r}")


def parse_quantizer(text: str, role: str = _W) -> QuantizerSpec:
    """Parse ``quantized_bits(6, 0, alpha=1)`` (or ``binary``, ``float``).

    ``role`` is ``"weight"`` or ``"activation"``; a quantizer that cannot play
    it is refused. Raises :class:`QuantizerSyntaxError` with a one-line reason.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise QuantizerSyntaxError(f"cannot parse quantizer {text!r}: {exc.msg}") from None
    node = tree.body
    if isinstance(node, ast.Name):
        return _validate(node.id, {}, role)
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise QuantizerSyntaxError(f"expected a quantizer call like quantized_bits(6, 0), got {text!r}")
    name = node.func.id
    info = QUANTIZERS.get(name)
    if info is None and name != "float":
        return _validate(name, {}, role)  # raises: unknown quantizer
    names = info.positional_names if info else []
    params: dict[str, Any] = {}
    if len(node.args) > len(names):
        raise QuantizerSyntaxError(f"{name} takes at most {len(names)} positional arguments, got {len(node.args)}")
    for key, arg in zip(names, node.args):
        params[key] = _literal_value(arg)
    for kw in node.keywords:
        if kw.arg is None:
            raise QuantizerSyntaxError(f"'**' is not allowed in {text!r}")
        if kw.arg in params:
            raise QuantizerSyntaxError(f"{name}: {kw.arg} given twice")
        params[kw.arg] = _literal_value(kw.value)
    return _validate(name, params, role)


def spec_from_mapping(data: Mapping[str, Any], role: str = _W) -> QuantizerSpec:
    """``{quantizer: quantized_bits, bits: 6, integer: 0}`` → spec."""
    params = dict(data)
    name = params.pop("quantizer", None)
    if not isinstance(name, str):
        raise QuantizerSyntaxError("a quantizer mapping needs 'quantizer: <name>'")
    return _validate(name, params, role)


def build(spec: QuantizerSpec | None) -> Any:
    """The QKeras quantizer object for ``spec`` (None for float).

    Raises ``ValueError`` for ``integer: auto`` not yet resolved by calibration (a programming error:
    the pipeline calibrates before it rewrites).
    """
    if spec is None or spec.is_float:
        return None
    if spec.is_auto:
        raise ValueError(f"{spec}: integer bits not resolved; calibrate the plan first")
    from .runtime import import_qkeras  # local: keep `rules check` free of Keras

    quantizers = import_qkeras().quantizers

    return getattr(quantizers, spec.name)(**dict(spec.params))
