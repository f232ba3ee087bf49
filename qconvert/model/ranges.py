"""Fixed-point ranges as QKeras counts them: what a ``quantized_bits`` / ``quantized_relu`` holds, and what it clips.

``quantized_bits(b, i)`` (signed) holds ``[-2^i, 2^i - lsb]`` and
``quantized_relu(b, i)`` holds ``[0, 2^i - lsb]``, with ``lsb = 2^(i - m)`` and
``m`` the bits below the sign; a value "fits" when rounding does not clip it (at
most ``2^i - lsb/2``). Used by :mod:`.calibrate` to resolve ``integer: auto``
and to count saturation.
"""

from __future__ import annotations

import math

import numpy as np

from ..quantizers import QuantizerSpec

__all__ = ["clip_bounds", "clipped_fraction", "has_fixed_range", "integer_bits_for", "magnitude_bits"]


def magnitude_bits(spec: QuantizerSpec) -> tuple[int, bool]:
    """Bits below the sign, and whether negative values are kept (quantized_relu: with a negative slope)."""
    if spec.name == "quantized_bits":
        signed = bool(spec.get("keep_negative", True))
    else:
        signed = bool(spec.get("negative_slope", 0.0))
    return spec.bits - int(signed), signed


def clip_bounds(spec: QuantizerSpec, integer: int) -> tuple[float, float]:
    """Values outside ``(lo, hi)`` are clipped by ``spec`` at ``integer`` bits (inside, they round to a step).

    The largest value is ``2^i - lsb`` with ``lsb = 2^(i - m)``; anything above ``2^i - lsb/2`` rounds to it
    clipped. The smallest is ``-2^i`` (quantized_bits), ``-slope·2^i`` (quantized_relu with a negative slope),
    0 when negatives are not kept; a plain quantized_relu's relu sets negatives to 0, which is no clipping.
    """
    m, signed = magnitude_bits(spec)
    top = 2.0 ** integer
    half = 2.0 ** (integer - m) / 2
    if spec.name == "quantized_relu":
        lo = -float(spec.get("negative_slope", 0.0)) * top - half if signed else -math.inf
    else:
        lo = -top - half if signed else -half
    return lo, top - half


def integer_bits_for(value: float, spec: QuantizerSpec) -> int:
    """The smallest integer part ``i >= 0`` at which ``spec`` holds ``value`` (a magnitude) without clipping it,
    at most what ``spec.bits`` allows (``bits`` below the sign)."""
    top, _ = magnitude_bits(spec)
    for integer in range(0, max(top, 0) + 1):
        if value <= clip_bounds(spec, integer)[1]:
            return integer
    return max(top, 0)


def has_fixed_range(spec: QuantizerSpec) -> bool:
    """Whether ``spec``'s range is fixed by its bits (a ``quantized_bits``/``quantized_relu`` whose scale
    ``alpha`` is not learned), so that clipping can be counted."""
    return spec.name in ("quantized_bits", "quantized_relu") and spec.get("alpha", 1) in (1, 1.0, None)


def clipped_fraction(values: np.ndarray, spec: QuantizerSpec) -> tuple[float, int, float] | None:
    """``(fraction clipped, worst channel, its fraction)`` of ``(values, channels)`` under ``spec``
    (None when its range is not fixed: alpha learned)."""
    if not has_fixed_range(spec) or values.size == 0:
        return None
    lo, hi = clip_bounds(spec, int(spec.get("integer", 0)))
    outside = (values > hi) | (values < lo)
    per_channel = outside.mean(axis=0)
    worst = int(np.argmax(per_channel))
    return float(outside.mean()), worst, float(per_channel[worst])
