"""Convolutions, pooling, up-sampling, padding and cropping: channels-first ONNX ops, TensorFlow's padding.

Convolutions (1-D, 2-D, depthwise as a grouped ``Conv``, separable as a depthwise then a pointwise ``Conv``,
transposed) and pooling run channels-first with TensorFlow's ``same`` padding written out as explicit pads;
``UpSampling`` is a nearest ``Resize``; zero padding and cropping act on whichever layout their input has.
Biases are an ``Add`` after the convolution.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .builder import Builder, Value
from .common import activation, converts, weight
from .quant import QonnxRefusal

__all__: list[str] = []  # converters register themselves in .common.CONVERTERS


def _same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow's ``same``: ``ceil(size / s)`` outputs, the padding split with the odd one at the end."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _pads(layer: Any, spatial: tuple[int, ...], kernel: tuple[int, ...], where: str) -> list[int]:
    """ONNX ``pads`` (all begins, then all ends) of a Keras conv or pooling layer's padding."""
    padding = getattr(layer, "padding", "valid")
    strides = tuple(layer.strides)
    dilation = tuple(getattr(layer, "dilation_rate", (1,) * len(kernel)) or (1,) * len(kernel))
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    if padding == "valid":
        return [0] * (2 * len(kernel))
    if padding == "same":
        pairs = [_same_pads(n, k, s) for n, k, s in zip(spatial, eff, strides)]
    elif padding == "causal":
        pairs = [(eff[0] - 1, 0)]
    else:
        raise QonnxRefusal(f"{where}: padding '{padding}' is not exported to QONNX")
    return [p[0] for p in pairs] + [p[1] for p in pairs]


def _check_format(layer: Any, where: str) -> None:
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise QonnxRefusal(f"{where}: data_format '{layer.data_format}' is not exported (Keras's channels_last is)")


def _kernel_to_onnx(a: np.ndarray) -> np.ndarray:
    """Keras ``(k..., in, out)`` → ONNX ``(out, in, k...)``."""
    r = a.ndim
    return np.transpose(a, (r - 1, r - 2, *range(r - 2)))


def _depthwise_to_onnx(a: np.ndarray) -> np.ndarray:
    """Keras depthwise ``(k..., in, mult)`` → ONNX grouped ``(in·mult, 1, k...)`` (channel ``c·mult + j``, as Keras)."""
    flat = a.reshape(*a.shape[:-2], -1)
    return np.expand_dims(np.moveaxis(flat, -1, 0), 1)


def _bias(b: Builder, layer: Any, y: str, dims: int, where: str) -> str:
    """``y + bias``, the bias ``(1, C, 1...)`` behind its Quant: a node of its own (FINN's and hls4ml's frontends fold
    an ``Add`` after a ``Conv``; qonnx 1.0's ``ExtractBiasFromConv`` fails on a Conv bias with one scale)."""
    if not layer.use_bias:
        return y
    bias = weight(b, layer, "bias", "bias", where, lambda a: a.reshape(1, -1, *([1] * dims)), channel_axis=1)
    return b.node("Add", [y, bias], layer.name)


def _conv_attrs(layer: Any, v: Value, kernel: tuple[int, ...], where: str, group: int = 1) -> dict[str, Any]:
    return {"kernel_shape": list(kernel), "strides": list(layer.strides), "pads": _pads(layer, v.shape[:-1], kernel, where),
            "dilations": list(getattr(layer, "dilation_rate", (1,) * len(kernel))), "group": group}


@converts("QConv1D", "QConv2D", "Conv1D", "Conv2D", "QDepthwiseConv2D", "DepthwiseConv2D", "DepthwiseConv1D")
def _conv(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    """A ``Conv``; a depthwise one is grouped by input channel (its kernel is ``depthwise_kernel``)."""
    _check_format(layer, where)
    v = b.layout(ins[0], True)
    kernel = tuple(layer.kernel_size)
    if "Depthwise" in type(layer).__name__:
        w = weight(b, layer, "depthwise_kernel", "depthwise", where, _depthwise_to_onnx)
        group = int(v.shape[-1])
    else:
        w = weight(b, layer, "kernel", "kernel", where, _kernel_to_onnx)
        group = int(getattr(layer, "groups", 1))
    y = b.node("Conv", [v.name, w], layer.name, **_conv_attrs(layer, v, kernel, where, group))
    return activation(b, layer.activation, Value(_bias(b, layer, y, len(kernel), where), (), True), layer.name, where)


@converts("QSeparableConv1D", "QSeparableConv2D", "SeparableConv1D", "SeparableConv2D")
def _separable(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    _check_format(layer, where)
    v = b.layout(ins[0], True)
    kernel = tuple(layer.kernel_size)
    dw = weight(b, layer, "depthwise_kernel", "depthwise", where, _depthwise_to_onnx)
    mid = b.node("Conv", [v.name, dw], layer.name, **_conv_attrs(layer, v, kernel, where, group=int(v.shape[-1])))
    pw = weight(b, layer, "pointwise_kernel", "pointwise", where, _kernel_to_onnx)
    ones = [1] * len(kernel)
    y = b.node("Conv", [mid, pw], layer.name, kernel_shape=ones, strides=ones,
               pads=[0] * (2 * len(kernel)))
    return activation(b, layer.activation, Value(_bias(b, layer, y, len(kernel), where), (), True), layer.name, where)


@converts("QConv2DTranspose", "Conv2DTranspose", "Conv1DTranspose")
def _conv_transpose(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    """``ConvTranspose``: Keras's kernel ``(k..., out, in)`` is ONNX's ``(in, out, k...)``; the full output
    ``(n-1)·s + k`` is cropped (``same``) or extended (kernel shorter than the stride) to Keras's length."""
    _check_format(layer, where)
    if any(d != 1 for d in getattr(layer, "dilation_rate", (1,))) or getattr(layer, "output_padding", None) is not None:
        raise QonnxRefusal(f"{where}: a transposed convolution with dilation or output_padding is not exported")
    v = b.layout(ins[0], True)
    kernel, strides = tuple(layer.kernel_size), tuple(layer.strides)
    w = weight(b, layer, "kernel", "kernel", where, lambda a: np.transpose(a, (a.ndim - 1, a.ndim - 2, *range(a.ndim - 2))),
                channel_axis=1)
    begins, ends, extra = [], [], []
    for n, k, s in zip(v.shape[:-1], kernel, strides):
        full = (n - 1) * s + k
        want = n * s + max(k - s, 0) if layer.padding == "valid" else n * s
        total = max(full - want, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
        extra.append(max(want - full, 0))
    y = b.node("ConvTranspose", [v.name, w], layer.name, kernel_shape=list(kernel),
               strides=list(strides), pads=begins + ends, output_padding=extra)
    return activation(b, layer.activation, Value(_bias(b, layer, y, len(kernel), where), (), True), layer.name, where)


@converts("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D")
def _pool(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    _check_format(layer, where)
    v = b.layout(ins[0], True)
    kernel = tuple(layer.pool_size)
    attrs: dict[str, Any] = {"kernel_shape": list(kernel), "strides": list(layer.strides),
                             "pads": _pads(layer, v.shape[:-1], kernel, where)}
    if type(layer).__name__.startswith("Average"):
        return Value(b.node("AveragePool", [v.name], layer.name, count_include_pad=0, **attrs), (), True)
    return Value(b.node("MaxPool", [v.name], layer.name, **attrs), (), True)


@converts("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D")
def _global_pool(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    _check_format(layer, where)
    v = b.layout(ins[0], True)
    op = "GlobalAveragePool" if "Average" in type(layer).__name__ else "GlobalMaxPool"
    y = b.node(op, [v.name], layer.name)
    if getattr(layer, "keepdims", False):
        return Value(y, (), True)
    return Value(b.node("Flatten", [y], layer.name, axis=1), ())


@converts("UpSampling1D", "UpSampling2D")
def _upsampling(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    if getattr(layer, "interpolation", "nearest") != "nearest":
        raise QonnxRefusal(f"{where}: interpolation '{layer.interpolation}' is not exported (nearest is)")
    _check_format(layer, where)
    v = b.layout(ins[0], True)
    size = layer.size if isinstance(layer.size, (list, tuple)) else (layer.size,)
    roi = b.const(f"{layer.name}_roi", np.zeros(0))
    scales = b.const(f"{layer.name}_scales", [1.0, 1.0, *[float(s) for s in size]])
    y = b.node("Resize", [v.name, roi, scales], layer.name, mode="nearest", coordinate_transformation_mode="asymmetric",
               nearest_mode="floor")
    return Value(y, (), True)


def _spatial_pairs(layer: Any, attr: str) -> list[tuple[int, int]]:
    value = getattr(layer, attr)
    if isinstance(value[0], int):  # 1-D: (begin, end)
        return [tuple(value)]
    return [tuple(p) for p in value]


@converts("ZeroPadding1D", "ZeroPadding2D")
def _zero_padding(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    _check_format(layer, where)
    v = ins[0]
    rank = len(v.shape) + 1
    begins, ends = [0] * rank, [0] * rank
    for i, (lo, hi) in enumerate(_spatial_pairs(layer, "padding"), start=1):
        begins[v.axis(i)], ends[v.axis(i)] = lo, hi
    pads = b.const(f"{layer.name}_pads", begins + ends, np.int64)
    return Value(b.node("Pad", [v.name, pads], layer.name, mode="constant"), (), v.first)


@converts("Cropping1D", "Cropping2D")
def _cropping(b: Builder, layer: Any, ins: list[Value], where: str) -> Value:
    _check_format(layer, where)
    v = ins[0]
    pairs = _spatial_pairs(layer, "cropping")
    axes = [v.axis(i) for i in range(1, len(pairs) + 1)]
    starts = [lo for lo, _ in pairs]
    ends = [v.shape[i] - hi for i, (_, hi) in enumerate(pairs)]
    y = b.node("Slice", [v.name, b.const(f"{layer.name}_starts", starts, np.int64),
                         b.const(f"{layer.name}_ends", ends, np.int64), b.const(f"{layer.name}_axes", axes, np.int64)],
               layer.name)
    return Value(y, (), v.first)


