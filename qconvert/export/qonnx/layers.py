"""Activations, Dense, a float BatchNormalization, merges and shapes as standard ONNX ops and QONNX ``Quant`` nodes.

``Dense`` is ``MatMul`` + ``Add``; activation quantizers are :func:`.quant.activation_plan`'s ops; merges fold
their inputs left to right as Keras does; ``Reshape``, ``Flatten`` and ``Permute`` see Keras's element order (a
``Transpose`` back from channels-first first). Convolutions and pooling are in :mod:`.spatial`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .builder import Builder, Value
from .common import activation, converts, weight
from .quant import QonnxRefusal

__all__: list[str] = []  # converters register themselves in .common.CONVERTERS


@converts("QActivation", "Activation")
def _activation_layer(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    return activation(b, layer.activation, ins[0], layer.name, where)


@converts("ReLU")
def _relu(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    if layer.max_value is not None or float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
        raise QonnxRefusal(f"{where}: ReLU with max_value, negative_slope or threshold is not exported to QONNX")
    return Value(b.node("Relu", [ins[0].name], layer.name), ins[0].shape, ins[0].first)


@converts("LeakyReLU")
def _leaky(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    return Value(b.node("LeakyRelu", [ins[0].name], layer.name, alpha=float(layer.negative_slope)), ins[0].shape, ins[0].first)


@converts("Softmax")
def _softmax(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    v = b.layout(ins[0], False)
    axis = layer.axis if isinstance(layer.axis, int) else -1
    if axis % (len(v.shape) + 1) != len(v.shape):
        raise QonnxRefusal(f"{where}: a softmax over axis {layer.axis} (not the last) is not exported to QONNX")
    return Value(b.node("Softmax", [v.name], layer.name, axis=-1), v.shape)


@converts("BatchNormalization")
def _batchnorm(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    """A BatchNormalization the rules left float: ``x·inv + (β - μ·inv)``, ``inv = γ / sqrt(σ² + ε)`` — the
    constants computed with Keras's own ops, in the order ``tf.nn.batch_normalization`` applies them."""
    import keras

    v = ins[0]
    if layer.axis not in (-1, len(v.shape)):
        raise QonnxRefusal(f"{where}: BatchNormalization over axis {layer.axis} is not exported to QONNX")
    ops = keras.ops
    inv = ops.rsqrt(ops.add(layer.moving_variance, layer.epsilon))
    if layer.scale:
        inv = ops.multiply(inv, layer.gamma)
    mean_inv = ops.multiply(layer.moving_mean, inv)
    shift = ops.subtract(layer.beta, mean_inv) if layer.center else ops.negative(mean_inv)
    shape = (-1, *([1] * (len(v.shape) - 1))) if v.first else (-1,)
    mul = b.const(f"{layer.name}_scale", np.reshape(ops.convert_to_numpy(inv), shape))
    add = b.const(f"{layer.name}_shift", np.reshape(ops.convert_to_numpy(shift), shape))
    return Value(b.node("Add", [b.node("Mul", [v.name, mul], layer.name), add], layer.name), v.shape, v.first)


@converts("QDense", "Dense")
def _dense(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    v = b.layout(ins[0], False)
    w = weight(b, layer, "kernel", "kernel", where, lambda a: a, channel_axis=1)
    y = b.node("MatMul", [v.name, w], layer.name)
    bias = weight(b, layer, "bias", "bias", where, lambda a: a) if layer.use_bias else None
    if bias is not None:
        y = b.node("Add", [y, bias], layer.name)
    shape = (*v.shape[:-1], int(layer.units))
    return activation(b, layer.activation, Value(y, shape), layer.name, where)


# --- merges and shapes ---------------------------------------------------------------------------------------


def _common(b: Builder, ins: list[Value]) -> list[Value]:
    """The inputs in one layout: channels-first when all are, else Keras's."""
    first = all(v.first for v in ins) and len({len(v.shape) for v in ins}) == 1
    return [b.layout(v, first) for v in ins]


@converts("Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average")
def _merge(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    """Left to right, as Keras's merge layers fold their inputs; ``Average`` divides the sum by their number."""
    cls = type(layer).__name__
    op = {"Add": "Add", "Subtract": "Sub", "Multiply": "Mul", "Maximum": "Max", "Minimum": "Min", "Average": "Add"}[cls]
    vs = _common(b, ins)
    if any(v.shape != vs[0].shape for v in vs):
        raise QonnxRefusal(f"{where}: inputs of different shapes (broadcasting) are not exported to QONNX")
    y = vs[0].name
    for v in vs[1:]:
        y = b.node(op, [y, v.name], layer.name)
    if cls == "Average":
        y = b.node("Div", [y, b.const(f"{layer.name}_count", float(len(vs)))], layer.name)
    return Value(y, (), vs[0].first)


@converts("Concatenate")
def _concatenate(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    vs = _common(b, ins)
    return Value(b.node("Concat", [v.name for v in vs], layer.name, axis=vs[0].axis(layer.axis)), (), vs[0].first)


@converts("Reshape")
def _reshape(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    v = b.layout(ins[0], False)
    target = [int(d) for d in layer.target_shape]
    if -1 in target:
        known = int(np.prod([d for d in target if d != -1]))
        target[target.index(-1)] = int(np.prod(v.shape)) // known
    return Value(b.node("Reshape", [v.name, b.const(f"{layer.name}_shape", [1, *target], np.int64)], layer.name), ())


@converts("Flatten")
def _flatten(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    v = b.layout(ins[0], False)
    return Value(b.node("Flatten", [v.name], layer.name, axis=1), ())


@converts("Permute")
def _permute(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    v = b.layout(ins[0], False)
    return Value(b.node("Transpose", [v.name], layer.name, perm=[0, *[int(d) for d in layer.dims]]), ())
