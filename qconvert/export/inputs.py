"""The inputs an exported design is checked on: the validation inputs given, or inputs sampled in the input type's
range; both as the firmware receives them (rounded to its input type). Shared by the hls4ml and the RTL checks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import VerificationError
from .precision import FixedType

__all__ = ["N_SAMPLED", "check_inputs", "class_labels", "input_quantizer_layer", "round_to_type", "sample_inputs"]

N_SAMPLED = 1000  # inputs sampled when none are given


def sample_inputs(qmodel: Any, t: FixedType, n: int = N_SAMPLED, seed: int = 0) -> np.ndarray:
    """``n`` inputs of ``qmodel``'s (single) input shape, ``(n, *shape)`` float64: normal around 0 with a standard
    deviation of a quarter of the input type's largest magnitude, at most 1 (so they use the type's range without
    saturating it). Deterministic for a given ``seed``."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in qmodel.inputs[0].shape[1:])
    return rng.normal(0.0, min(1.0, t.max_abs / 4), size=(n, *shape))


def check_inputs(qmodel: Any, t: FixedType, x: Any = None, y: Any = None) -> tuple[np.ndarray, str]:
    """``(inputs, source)``: ``x`` as float64 (``"given"``), or :data:`N_SAMPLED` sampled inputs (``"sampled"``).

    Raises :class:`VerificationError` when ``x``'s sample shape is not the model's input shape, or when labels ``y``
    are not one per sample.
    """
    if x is None:
        return sample_inputs(qmodel, t), "sampled"
    xs = np.asarray(x, dtype="float64")
    shape = tuple(qmodel.inputs[0].shape[1:])  # None: any length
    fits = len(xs.shape) == len(shape) + 1 and all(d is None or int(d) == n for d, n in zip(shape, xs.shape[1:]))
    if not fits or len(xs) == 0:
        raise VerificationError(f"model '{qmodel.name}': inputs to check the export on have shape {xs.shape}; "
                                f"expected (n, {', '.join(map(str, shape))}) with n >= 1")
    if y is not None and len(y) != len(xs):
        raise VerificationError(f"model '{qmodel.name}': {len(y)} labels for {len(xs)} inputs to check the export on")
    return xs, "given"


def round_to_type(x: np.ndarray, t: FixedType) -> np.ndarray:
    """``x`` as the firmware receives it in type ``t``: rounded half to even to ``t``'s step, saturated to its range
    (float64, same shape). Types that are not fixed-point (xnor, exponent) pass ``x`` unchanged."""
    if t.kind != "fixed":
        return np.asarray(x, dtype="float64")
    step = 2.0**-t.frac
    low = -t.max_abs if t.signed else 0.0
    high = (2.0 ** (t.integer - 1) if t.signed else 2.0**t.integer) - step
    return np.clip(np.round(np.asarray(x, dtype="float64") / step) * step, low, high)


def class_labels(y: Any) -> np.ndarray:
    """Class indices ``(n,)`` from one-hot (or probability) rows ``(n, classes)``, or from indices as given."""
    y = np.asarray(y)
    return np.argmax(y, axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(-1).astype(int)


def input_quantizer_layer(qmodel: Any, graph: Any) -> Any:
    """The QActivation with a ``quantized_bits`` quantizer that every use of ``qmodel``'s single input goes through
    (the rules' ``input:``), or None. ``graph``: :func:`qconvert.model.graph.graph_of` of ``qmodel``."""
    entry = graph.inputs[0].layer
    users = [c for c in graph.calls if any(r.layer == entry for r in c.inputs())]
    if len(users) != 1:
        return None
    layer = qmodel.get_layer(users[0].layer)
    name = type(getattr(layer, "activation", None)).__name__
    return layer if type(layer).__name__ == "QActivation" and name == "quantized_bits" else None
