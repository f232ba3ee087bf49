"""The registry of layer converters and what they share: weights behind their Quant, activations as ops.

A converter takes the :class:`~.graph.Builder`, the Keras layer, its input :class:`~.graph.Value` s and a
``where`` for messages, and returns the output value. :mod:`.layers` (activations, Dense, merges, shapes)
and :mod:`.spatial` (convolutions, pooling, padding) register theirs with :func:`converts`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .builder import Builder, Value
from .quant import QonnxRefusal, activation_plan, weight_quant

__all__ = ["CONVERTERS", "activation", "convert_layer", "converts", "fn_name", "weight"]

Converter = Callable[[Builder, Any, list[Value], str], Value]
CONVERTERS: dict[str, Converter] = {}
_IDENTITY = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
             "ActivityRegularization", "Identity", "AlphaDropout")  # fmt: skip
_FLOAT_FUNCTIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}


def converts(*class_names: str) -> Callable[[Converter], Converter]:
    """Register a converter for the Keras layer classes ``class_names``."""

    def register(fn: Converter) -> Converter:
        for name in class_names:
            CONVERTERS[name] = fn
        return fn

    return register


def _output_shape(layer: Any, node: int) -> tuple[int, ...]:
    """The Keras output shape (no batch axis) of call ``node`` of ``layer``."""
    nodes = getattr(layer, "_inbound_nodes", [])
    tensor = nodes[node].outputs[0] if len(nodes) > 1 else layer.output
    return tuple(int(d) for d in tensor.shape[1:])


def convert_layer(b: Builder, layer: Any, ins: list[Value], node: int = 0) -> Value:
    """Call ``node`` of ``layer`` applied to ``ins`` in graph ``b``; :class:`QonnxRefusal` when it has no converter."""
    cls = type(layer).__name__
    where = f"layer '{layer.name}' ({cls})"
    if cls in _IDENTITY:
        return ins[0]
    fn = CONVERTERS.get(cls)
    if fn is None:
        raise QonnxRefusal(f"{where}: no QONNX form in qconvert's export (supported: {', '.join(sorted(CONVERTERS))})")
    out = fn(b, layer, ins, where)
    return Value(out.name, _output_shape(layer, node), out.first)


def weight(b: Builder, layer: Any, attr: str, role: str, where: str, to_onnx: Callable[[np.ndarray], np.ndarray],
            channel_axis: int = 0) -> str | None:
    """The tensor of weight ``attr`` (quantized by ``<role>_quantizer_internal`` as the layer's call does), stored
    in ONNX's layout (``to_onnx``), behind its Quant; None when the layer has no such weight."""
    import keras

    var = getattr(layer, attr, None)
    if var is None:
        return None
    q = getattr(layer, f"{role}_quantizer_internal", None)
    values = q(var) if callable(q) else var
    stored = np.ascontiguousarray(to_onnx(np.asarray(keras.ops.convert_to_numpy(values), dtype=np.float32)))
    name = b.const(f"{layer.name}_{attr}", stored)
    if not callable(q):
        return name  # float weights: no Quant (the verification says whether Keras's float sums are matched)
    return b.quant(name, weight_quant(q, stored, f"{where} {role}", channel_axis), f"{layer.name}_{attr}")


def fn_name(act: Any) -> str:
    """The name of a layer's activation (a function's ``__name__``, a quantizer's class); ``linear`` for None."""
    return "linear" if act is None else getattr(act, "__name__", type(act).__name__)


def activation(b: Builder, act: Any, v: Value, base: str, where: str) -> Value:
    """``act`` (a QKeras quantizer or a Keras activation function) applied to ``v``."""
    name = fn_name(act)
    if name == "linear":
        return v
    if not hasattr(act, "get_config") and callable(act):  # a float Keras activation
        if name == "softmax":
            v = b.layout(v, False)
            return Value(b.node("Softmax", [v.name], base, axis=-1), v.shape)
        op = _FLOAT_FUNCTIONS.get(name)
        if op is None:
            raise QonnxRefusal(f"{where}: float activation '{name}' has no QONNX form here (relu, sigmoid, tanh, softmax do)")
        return Value(b.node(op, [v.name], base), v.shape, v.first)
    x = v.name
    for op, p in activation_plan(act, where).steps:
        if op == "Quant":
            x = b.quant(x, p["params"], base)
        elif op in ("Mul", "Add"):
            x = b.node(op, [x, b.const(f"{base}_{op.lower()}", p["value"])], base)
        elif op == "Clip":
            lo = b.const(f"{base}_min", p["lo"]) if p["lo"] is not None else ""
            hi = b.const(f"{base}_max", p["hi"]) if p["hi"] is not None else ""
            x = b.node("Clip", [x, lo, hi] if hi else [x, lo], base)
        elif op == "LeakyRelu":
            x = b.node(op, [x], base, alpha=p["alpha"])
        else:
            x = b.node(op, [x], base)
    return Value(x, v.shape, v.first)
