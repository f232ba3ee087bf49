"""The values weights take after their quantizers, for the cost model (which counts the bits each needs).

A QKeras quantizer called eagerly runs a few dozen small TensorFlow operations whatever the size of its
input; for the seed's four layers that took longer than the rest of the cost model. QKeras's
``quantized_bits`` with a fixed scale (``alpha`` None or a number, no stochastic rounding) is a short
element-wise formula; it is evaluated here with NumPy in float32, operation by operation in the order
``quantized_bits.__call__`` (qkeras-v3) runs them, so every value is the one QKeras computes
(``tests/test_quantized.py`` holds the two equal, bit for bit, over a grid of settings and inputs).
Every other quantizer (an ``auto`` scale, stochastic rounding, binary, ternary, po2, ...) is called.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import keras
import numpy as np

__all__ = ["fixed_quantized_bits", "quantized_values"]


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def fixed_quantized_bits(quantizer: Any, x: np.ndarray) -> np.ndarray | None:
    """``quantizer(x)`` for a ``quantized_bits`` with a fixed scale, computed with NumPy; None for any other
    quantizer (or settings this does not cover: scalar bits, integer, alpha and noise factor; float32)."""
    if type(quantizer).__name__ != "quantized_bits" or not type(quantizer).__module__.startswith("qkeras"):
        return None
    alpha = quantizer.alpha
    settings = (quantizer.bits, quantizer.integer, quantizer.qnoise_factor, 1.0 if alpha is None else alpha)
    if not all(_is_scalar(v) for v in settings) or quantizer.use_stochastic_rounding or quantizer.use_variables:
        return None
    if keras.config.floatx() != "float32":
        return None
    with np.errstate(over="ignore", invalid="ignore"):  # huge values overflow to inf / nan, as in QKeras
        return _fixed(quantizer, np.asarray(x).astype(np.float32))


def _fixed(quantizer: Any, x: np.ndarray) -> np.ndarray:
    f = np.float32
    alpha = quantizer.alpha
    unsigned = quantizer.bits - quantizer.keep_negative
    m = np.power(f(2.0), f(unsigned))
    m_i = np.power(f(2.0), f(quantizer.integer))
    scale = f(1.0 if alpha is None else alpha)
    if unsigned > 0:
        p = x * m / m_i
        rounded = p + (-p + np.round(p))  # QKeras's straight-through round: equal to round(p)
        low = f(quantizer.keep_negative) * (-m + f(quantizer.symmetric))
        xq = m_i * np.clip(rounded, low, m - f(1.0)) / m
    else:  # one bit: a sign
        xq = np.sign(x)
        xq = xq + (f(1.0) - np.abs(xq))
        if not quantizer.keep_negative:
            xq = (xq + f(1.0)) / f(2.0)
    xq = scale * xq
    noise = f(quantizer.qnoise_factor)
    if quantizer.use_ste:
        return x + noise * (-x + xq)
    return f(1 - quantizer.qnoise_factor) * x + noise * xq  # 1 - noise taken in Python, as QKeras does


def quantized_values(weights: Iterable[tuple[Hashable, Any, Any]]) -> dict[Hashable, np.ndarray]:
    """``{key: quantizer(value)}`` as NumPy arrays for ``(key, value, quantizer)`` triples (value: a variable or
    an array; quantizer: None, or not callable, for none)."""
    out: dict[Hashable, np.ndarray] = {}
    for key, value, quantizer in weights:
        array = np.asarray(keras.ops.convert_to_numpy(value))
        if not callable(quantizer):
            out[key] = array
            continue
        fixed = fixed_quantized_bits(quantizer, array)
        out[key] = fixed if fixed is not None else np.asarray(keras.ops.convert_to_numpy(quantizer(array)))
    return out
