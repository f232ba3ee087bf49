"""The values weights take after their quantizers, with one quantizer call per distinct elementwise quantizer.

A QKeras quantizer called eagerly costs a few dozen small TensorFlow operations whatever the size of
its input, so the cost model's "which quantized weights are zero" took more time than the rest of a
conversion. A quantizer that maps each value on its own (no scale computed from the data, no random
rounding) gives the same values for a weight whether it is called on that weight alone or on the
weights of many layers laid end to end; such quantizers with equal configurations are called once
on all their weights together. Any other quantizer is called on each weight alone, as before.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import keras
import numpy as np

__all__ = ["elementwise_key", "quantized_values"]


def elementwise_key(quantizer: Any) -> Hashable | None:
    """A key shared by quantizers that quantize every value alike and independently of the others; None otherwise.

    Only QKeras's ``quantized_bits`` with scalar ``bits``, ``integer`` and ``alpha`` (None or a number:
    ``scale = alpha``; an ``"auto"`` alpha computes a scale per channel from the data, an array one scales
    per channel) and without stochastic rounding or variables qualifies.
    """
    if type(quantizer).__name__ != "quantized_bits" or not type(quantizer).__module__.startswith("qkeras"):
        return None
    scalars = (quantizer.bits, quantizer.integer, 0 if quantizer.alpha is None else quantizer.alpha)
    if not all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in scalars):
        return None
    if quantizer.use_stochastic_rounding or quantizer.use_variables:
        return None
    config = quantizer.get_config()
    return repr((sorted(config.items()), quantizer.use_ste, quantizer.scale_axis))


def quantized_values(weights: Iterable[tuple[Hashable, Any, Any]]) -> dict[Hashable, np.ndarray]:
    """``{key: quantizer(value)}`` as NumPy arrays for ``(key, value, quantizer)`` triples (value: a variable or
    an array; quantizer: None or a non-callable for none). The result of each weight is the one its quantizer
    gives it when called on that weight alone."""
    out: dict[Hashable, np.ndarray] = {}
    groups: dict[Hashable, list[tuple[Hashable, np.ndarray, Any]]] = {}
    for key, value, quantizer in weights:
        if not callable(quantizer):
            out[key] = np.asarray(keras.ops.convert_to_numpy(value))
            continue
        array = np.asarray(keras.ops.convert_to_numpy(value))
        shared = elementwise_key(quantizer)
        if shared is None:
            out[key] = np.asarray(keras.ops.convert_to_numpy(quantizer(value)))
        else:
            groups.setdefault((shared, str(array.dtype)), []).append((key, array, quantizer))
    for members in groups.values():
        flat = np.concatenate([array.ravel() for _, array, _ in members])
        result = np.asarray(keras.ops.convert_to_numpy(members[0][2](flat)))
        start = 0
        for key, array, _ in members:
            out[key] = result[start:start + array.size].reshape(array.shape)
            start += array.size
    return out
