"""Fixed-point types as hls4ml implements them, derived from QKeras quantizers. No hls4ml import.

A :class:`FixedType` is ``ap_[u]fixed<width, integer>`` (``integer`` counts the sign bit, as
``ap_fixed`` does), optionally with a rounding and a saturation mode. The rules:

* a quantizer's type holds exactly the values it produces: ``quantized_bits(b, i)`` →
  ``ap_fixed<b, i+1>`` (``ap_ufixed<b, i>`` without ``keep_negative``), ``quantized_relu(b, i)`` →
  ``ap_ufixed<b, i>``; as an *activation* it also rounds half to even and saturates
  (``AP_RND_CONV, AP_SAT``), which is what QKeras computes;
* a sum of ``n`` products (Dense, Conv) accumulates in a type that can never overflow:
  fractional bits ``max(F_in + F_w, F_bias)``, integer bits from the largest magnitude
  ``n·max|x|·max|w| + max|b|`` (:func:`accumulator`). The layer's result keeps that type, so logits
  are exact;
* layers that only move data keep their input's type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_INPUT", "UNCOMPUTED", "FixedType", "accumulator", "activation_type", "data_type", "holding",
           "quantizer_type", "uncomputed_parameter"]

RND, SAT = "AP_RND_CONV", "AP_SAT"


@dataclass(frozen=True)
class FixedType:
    """A fixed-point type as hls4ml spells it: ``ap_[u]fixed<width, integer>`` (``integer`` counts the sign bit), with
    optional rounding (``AP_RND_CONV``, ...) and saturation (``AP_SAT``, ...) modes. ``kind`` ``"xnor"`` is a binary ±1
    stored in one bit, ``"exponent"`` a power of two (hls4ml's ``exponent<width>``)."""

    width: int
    integer: int
    signed: bool = True
    rounding: str | None = None
    saturation: str | None = None
    kind: str = "fixed"  # fixed | xnor (binary ±1 stored as one bit) | exponent (power of two)

    @property
    def frac(self) -> int:
        """Fraction bits: ``width - integer``."""
        return self.width - self.integer

    @property
    def max_abs(self) -> float:
        """Largest magnitude the type holds (the most negative value for signed types)."""
        if self.kind == "xnor":
            return 1.0
        if self.kind == "exponent":
            return 2.0 ** (2 ** (self.width - 1) - 1)
        return 2.0 ** (self.integer - 1) if self.signed else 2.0**self.integer - 2.0**-self.frac

    def with_modes(self, rounding: str | None = RND, saturation: str | None = SAT) -> FixedType:
        """The same type with rounding and saturation modes (by default half to even and saturating)."""
        return FixedType(self.width, self.integer, self.signed, rounding, saturation, self.kind)

    def hls(self) -> str:
        """The type as hls4ml reads it in a configuration."""
        if self.kind == "xnor":
            return "ap_uint<1>"
        if self.kind == "exponent":
            return f"exponent<{self.width}>"
        prefix = "fixed" if self.signed else "ufixed"
        modes = [m for m in (self.rounding, self.saturation) if m]
        if not modes and self.frac == 0:
            return f"ap_{'int' if self.signed else 'uint'}<{self.width}>"
        if self.saturation and not self.rounding:
            modes = ["AP_TRN", self.saturation]
        return f"ap_{prefix}<{', '.join([str(self.width), str(self.integer), *modes])}>"

    def __str__(self) -> str:
        return self.hls()


DEFAULT_INPUT = FixedType(16, 6, True, RND, SAT)  # hls4ml's default ap_fixed<16,6>, rounding and saturating


def _name_and_config(quantizer: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(quantizer, dict):
        return quantizer["class_name"], dict(quantizer.get("config", {}))
    if hasattr(quantizer, "get_config"):
        return type(quantizer).__name__, quantizer.get_config()
    return getattr(quantizer, "__name__", type(quantizer).__name__), {}


def quantizer_type(quantizer: Any) -> FixedType | None:
    """The type that holds every value ``quantizer`` produces, or None if QKeras has no fixed grid for it."""
    name, cfg = _name_and_config(quantizer)
    bits = int(cfg.get("bits", 0) or 0)
    integer = int(cfg.get("integer", 0) or 0)
    if "binary" in name:
        return FixedType(1, 1, True, kind="xnor")
    if "ternary" in name:
        return FixedType(2, 2, True)
    if name in ("quantized_po2", "quantized_relu_po2"):
        return FixedType(bits, bits, True, kind="exponent")
    if name == "quantized_bits":
        if cfg.get("alpha") not in (None, 1, 1.0):
            return None  # a scale the layer learns: hls4ml factors it out (ApplyAlpha)
        if cfg.get("keep_negative", True):
            return FixedType(bits, integer + 1, True)
        return FixedType(bits, integer, False)
    if name == "quantized_relu":
        if float(cfg.get("negative_slope", 0.0) or 0.0) != 0.0:
            return FixedType(bits, integer + 1, True)
        return FixedType(bits, integer, False)
    if name == "quantized_tanh":
        return FixedType(bits, 1, True)
    if name == "quantized_sigmoid":
        return FixedType(bits, 0, False)
    return None


#: Activation-quantizer parameters the hls4ml layers of ``handlers.activation_config`` do not compute, at the
#: value that has no effect (QKeras's default): another value is refused, naming the parameter. Parameters that
#: act in training only are not here (use_ste, use_variables, var_name; stochastic rounding rounds to nearest
#: outside training).
UNCOMPUTED: dict[str, dict[str, float]] = {
    "quantized_bits": {"symmetric": 0, "qnoise_factor": 1.0},
    "quantized_relu": {"use_sigmoid": 0, "qnoise_factor": 1.0},
    "quantized_tanh": {"symmetric": 0, "use_real_tanh": 0},  # use_real_*: hls4ml's table, not QKeras's grid
    "quantized_sigmoid": {"symmetric": 0, "use_real_sigmoid": 0},
}


def uncomputed_parameter(name: str, cfg: dict[str, Any]) -> str | None:
    """The first parameter of activation quantizer ``name`` (config ``cfg``) whose effect hls4ml would not compute,
    as ``key=value``; None when hls4ml computes it exactly. A ``relu_upper_bound`` below the largest value of the
    quantizer's type clips where hls4ml's ReLU does not; QKeras applies it only with ``is_quantized_clip=False``
    (its default, True, clips at the type's largest value, as hls4ml's saturation does)."""
    for key, default in UNCOMPUTED.get(name, {}).items():
        value = cfg.get(key, default)
        if value is not None and float(value) != default:
            return f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
    bound = cfg.get("relu_upper_bound") if name == "quantized_relu" else None
    if bound is not None and not cfg.get("is_quantized_clip", True):  # QKeras applies the bound only then
        bits, integer = int(cfg.get("bits", 8)), int(cfg.get("integer", 0) or 0)
        top = 2.0**integer - 2.0 ** (integer - bits)
        if float(bound) < top:
            return (f"relu_upper_bound={float(bound):g} with is_quantized_clip=False (below {top:g}, the largest "
                    f"value of its {bits}-bit type)")
    return None


def activation_type(quantizer: Any) -> FixedType | None:
    """The result type of a QActivation: the quantizer's grid, rounding half to even and saturating."""
    t = quantizer_type(quantizer)
    if t is None:
        return None
    if t.kind != "fixed":
        return t
    return t.with_modes()


def _int_bits(max_abs: float) -> int:
    """Integer bits, sign included, of a signed type that holds every value of magnitude <= max_abs."""
    if max_abs <= 0:
        return 1
    return math.floor(math.log2(max_abs)) + 2


def accumulator(inp: FixedType, weight: FixedType, bias: FixedType | None, fan_in: int) -> FixedType:
    """A signed type that holds every sum of ``fan_in`` products plus the bias, without rounding."""
    w_frac = 0 if weight.kind in ("xnor",) else weight.frac
    frac = inp.frac + w_frac
    if weight.kind == "exponent":
        frac = inp.frac + 2 ** (weight.width - 1)  # smallest power of two the weight can be
    if bias is not None:
        frac = max(frac, bias.frac)
    bound = fan_in * inp.max_abs * weight.max_abs + (bias.max_abs if bias is not None else 0.0)
    integer = _int_bits(bound)
    return FixedType(integer + frac, integer, True)


def holding(max_abs: float, frac: int) -> FixedType:
    """The signed type with ``frac`` fractional bits that holds every value of magnitude <= ``max_abs``."""
    integer = _int_bits(max_abs)
    return FixedType(integer + frac, integer, True)


def widen(t: FixedType, extra_int: int = 0, extra_frac: int = 0) -> FixedType:
    """``t`` (as a type without modes) with ``extra_int`` more integer and ``extra_frac`` more fraction bits."""
    return FixedType(t.width + extra_int + extra_frac, t.integer + extra_int, t.signed)


def union(types: list[FixedType]) -> FixedType:
    """A signed type that holds every value of each type."""
    frac = max(t.frac for t in types)
    integer = _int_bits(max(t.max_abs for t in types))
    return FixedType(integer + frac, integer, True)


def data_type(max_abs: float, width: int = 16) -> FixedType:
    """Input type from the data's range: enough integer bits for ``max_abs``, ``width`` bits in all."""
    integer = max(_int_bits(max_abs), 1)
    return FixedType(max(width, integer + 1), integer, True, RND, SAT)


def parse_hls(text: str) -> FixedType:
    """``ap_fixed<16,6>`` / ``fixed<16,6,AP_RND,AP_SAT>`` / ``ap_ufixed<8,0>`` / ``ap_int<8>`` → FixedType."""
    s = text.strip().replace(" ", "")
    if s.startswith("ap_"):
        s = s[3:]
    head, _, rest = s.partition("<")
    if not rest.endswith(">") or head not in ("fixed", "ufixed", "int", "uint"):
        raise ValueError(f"not a fixed-point type: {text!r}")
    parts = rest[:-1].split(",")
    try:
        width = int(parts[0])
        integer = width if head in ("int", "uint") else int(parts[1])
    except (ValueError, IndexError):
        raise ValueError(f"not a fixed-point type: {text!r}") from None
    modes = parts[2:] if head in ("fixed", "ufixed") else []
    rounding = next((m for m in modes if m.startswith("AP_RND") or m == "AP_TRN" or m == "AP_TRN_ZERO"), None)
    saturation = next((m for m in modes if m.startswith("AP_SAT") or m.startswith("AP_WRAP")), None)
    if width < 1:
        raise ValueError(f"not a fixed-point type: {text!r}")
    return FixedType(width, integer, head in ("fixed", "int"), rounding, saturation)
