"""The da4ml form of each layer family the RTL trace implements (:mod:`.trace` dispatches to them).

Every function takes the layer, its traced input (a da4ml ``FixedVariableArray`` without the batch axis) and
``where`` (the layer named for errors), and returns the traced output; what has no exact fixed-point form
raises :class:`RtlRefusal` naming the layer. Weights are the quantized values QKeras computes with. The layers
with a kernel take ``mul(x, w, where)``, the product of a traced array and a constant matrix (:func:`product`:
da4ml's own, in this process; :meth:`.solver.Solver.matmul` in a child process).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import ExportError

__all__ = [
    "MOVERS",
    "RtlRefusal",
    "activation",
    "arr",
    "conv",
    "dense",
    "depthwise",
    "fn_name",
    "global_pool",
    "move",
    "pool",
    "product",
    "weights",
]  # fmt: skip

#: ``mul(x, w, where)``: a traced array (..., K) times a constant matrix (K, C).
Mul = Callable[[Any, np.ndarray, str], Any]


def product(x: Any, w: np.ndarray, where: str) -> Any:
    """``x @ w`` as da4ml computes it, in this process (each row's constant matrix solved here)."""
    return x @ w


class RtlRefusal(ExportError):
    """A layer (or a quantizer in it) that da4ml cannot implement exactly; the message names it."""


def weights(layer: Any, role: str, attr: str) -> np.ndarray | None:
    """The quantized values of ``layer``'s weight ``attr`` (float64, the weight's shape) through its ``role`` quantizer,
    or None when the layer has no such weight. Refused when the weight is float or its quantizer's alpha is learned."""
    var = getattr(layer, attr, None)
    if var is None:
        return None
    q = getattr(layer, f"{role}_quantizer_internal", None)
    where = f"layer '{layer.name}' ({type(layer).__name__})"
    if not callable(q):
        raise RtlRefusal(f"{where}: its {role} is float; da4ml needs quantized weights (give it a {role} quantizer)")
    cfg = q.get_config() if hasattr(q, "get_config") else {}
    if isinstance(cfg.get("alpha"), str):
        raise RtlRefusal(f"{where}: {role} quantizer alpha={cfg['alpha']!r} is not traced for da4ml (use alpha=1)")
    import keras

    return np.asarray(keras.ops.convert_to_numpy(q(var)), dtype=np.float64)


def activation(x: Any, fn: str, where: str) -> Any:
    """``x`` through the Keras activation named ``fn``: ``linear`` and ``relu`` are exact; others are refused."""
    if fn == "linear":
        return x
    if fn == "relu":
        return x.relu()
    raise RtlRefusal(f"{where}: activation '{fn}' has no exact da4ml form (only relu and linear)")


def arr(vars_: np.ndarray, like: Any) -> Any:
    """An object array of da4ml variables as a ``FixedVariableArray`` with the solver options of ``like``."""
    from da4ml.trace import FixedVariableArray

    return FixedVariableArray(vars_, like.solver_options)


def dense(layer: Any, x: Any, where: str, mul: Mul = product) -> Any:
    """A (Q)Dense layer: ``x @ kernel + bias`` with the quantized weights, then its activation."""
    w = weights(layer, "kernel", "kernel")
    y = mul(x, w, where)
    if getattr(layer, "use_bias", False):
        y = y + weights(layer, "bias", "bias")
    return activation(y, fn_name(layer), where)


def fn_name(layer: Any) -> str:
    """The name of ``layer``'s activation function (``"linear"`` when it has none)."""
    act = getattr(layer, "activation", None)
    return "linear" if act is None else getattr(act, "__name__", str(act))


def _pad(v: np.ndarray, pads: list[tuple[int, int]], fill: Any) -> np.ndarray:
    """``v`` (spatial..., C) padded by ``pads`` (before, after) on each spatial axis with ``fill``."""
    return np.pad(v, pads + [(0, 0)], constant_values=fill)


def _same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _windows(v: np.ndarray, kernel: tuple[int, ...], strides: tuple[int, ...]) -> np.ndarray:
    """(out positions..., kernel positions..., C) windows of an object array (spatial..., C)."""
    spatial = v.shape[:-1]
    outs = [(n - k) // s + 1 for n, k, s in zip(spatial, kernel, strides)]
    idx = np.indices(outs + list(kernel))
    nd = len(kernel)
    coords = [idx[d] * strides[d] + idx[nd + d] for d in range(nd)]
    return v[tuple(coords)]


def _patches(layer: Any, x: Any, kernel: tuple[int, ...], where: str) -> np.ndarray:
    """(outs..., kernel..., C) windows of ``x`` for a channels_last, undilated convolution (zeros for 'same')."""
    cfg = layer.get_config()
    if cfg.get("data_format", "channels_last") != "channels_last" or int(cfg.get("groups", 1) or 1) != 1:
        raise RtlRefusal(f"{where}: only channels_last, ungrouped convolutions are traced for da4ml")
    if any(int(d) != 1 for d in np.atleast_1d(cfg.get("dilation_rate", 1))):
        raise RtlRefusal(f"{where}: dilated convolutions are not traced for da4ml")
    strides = tuple(int(s) for s in np.atleast_1d(cfg["strides"]))
    strides = strides * (len(kernel) // len(strides))
    v = np.asarray(x._vars)
    if cfg["padding"] == "same":
        v = _pad(v, [_same_pads(n, k, s) for n, k, s in zip(v.shape[:-1], kernel, strides)], 0.0)
    elif cfg["padding"] != "valid":
        raise RtlRefusal(f"{where}: padding='{cfg['padding']}' is not traced for da4ml")
    return _windows(v, kernel, strides)


def _bias_act(layer: Any, y: Any, where: str) -> Any:
    if getattr(layer, "use_bias", False):
        y = y + weights(layer, "bias", "bias")
    return activation(y, fn_name(layer), where)


def _pointwise(cols: Any, w: np.ndarray, outs: tuple[int, ...], where: str, mul: Mul) -> Any:
    """Each row of ``cols`` (one output position) times the kernel ``w`` (fan-in..., out channels)."""
    return mul(cols, w.reshape(-1, w.shape[-1]), where).reshape(*outs, w.shape[-1])


def conv(layer: Any, x: Any, where: str, mul: Mul = product) -> Any:
    """A (Q)Conv1D/2D layer (channels_last, ungrouped, undilated, 'valid' or 'same'): every window times the kernel,
    plus bias, then its activation; ``x`` is (spatial..., C)."""
    w = weights(layer, "kernel", "kernel")
    kernel = tuple(w.shape[:-2])
    patches = _patches(layer, x, kernel, where)
    outs = patches.shape[: len(kernel)]
    return _bias_act(layer, _pointwise(arr(patches.reshape(int(np.prod(outs)), -1), x), w, outs, where, mul), where)


def depthwise(layer: Any, x: Any, where: str, separable: bool, mul: Mul = product) -> Any:
    """Each channel's windows times its own kernel (depth_multiplier outputs per channel, channel-major),
    then, for a separable convolution, the pointwise kernel over all of them."""
    w = weights(layer, "depthwise", "depthwise_kernel")  # (kernel..., C, multiplier)
    kernel = tuple(w.shape[:-2])
    patches = _patches(layer, x, kernel, where)
    outs = patches.shape[: len(kernel)]
    per_pos = patches.reshape(int(np.prod(outs)), -1, w.shape[-2])  # (positions, kernel taps, C)
    channels = [_pointwise(arr(per_pos[:, :, c], x), w[..., c, :], outs, where, mul) for c in range(w.shape[-2])]
    y = arr(np.concatenate([np.asarray(c._vars) for c in channels], axis=-1), x)  # (outs..., C·multiplier)
    if separable:
        y = _pointwise(arr(np.asarray(y._vars).reshape(int(np.prod(outs)), -1), x),
                       weights(layer, "pointwise", "pointwise_kernel"), outs, where, mul)
    return _bias_act(layer, y, where)


def pool(layer: Any, x: Any, where: str, kind: str) -> Any:
    """Max (``kind="max"``) or average pooling with 'valid' padding; an average over a window whose size is not a
    power of two is refused (no exact fixed-point division)."""
    cfg = layer.get_config()
    v = np.asarray(x._vars)
    nd = v.ndim - 1
    size = tuple(int(p) for p in np.atleast_1d(cfg["pool_size"]))
    strides = tuple(int(s) for s in np.atleast_1d(cfg.get("strides") or size))
    size, strides = size * (nd // len(size)), strides * (nd // len(strides))
    n = int(np.prod(size))
    if cfg["padding"] != "valid":
        raise RtlRefusal(f"{where}: padding='{cfg['padding']}' pooling is not traced for da4ml (use 'valid')")
    win = _windows(v, size, strides)  # (outs..., size..., C)
    outs = win.shape[:nd]
    flat = win.reshape(*outs, n, win.shape[-1])
    if kind == "max":
        red = np.empty((*outs, win.shape[-1]), dtype=object)
        for pos in np.ndindex(red.shape):
            vals = flat[pos[:-1] + (slice(None), pos[-1])]
            m = vals[0]
            for other in vals[1:]:
                m = m.max_of(other)
            red[pos] = m
        return arr(red, x)
    if n & (n - 1):
        raise RtlRefusal(f"{where}: averaging {n} values divides by a number that is not a power of two; "
                         "no exact fixed-point form")
    return arr(flat.sum(axis=nd) * (1.0 / n), x)


def global_pool(x: Any, kind: str, where: str) -> Any:
    """Global max or average over every position, one value per channel (averages over a power of two only)."""
    v = np.asarray(x._vars)
    flat = v.reshape(-1, v.shape[-1])
    n = flat.shape[0]
    if kind == "max":
        out = []
        for c in range(flat.shape[1]):
            m = flat[0, c]
            for other in flat[1:, c]:
                m = m.max_of(other)
            out.append(m)
        return arr(np.array(out, dtype=object), x)
    if n & (n - 1):
        raise RtlRefusal(f"{where}: averaging {n} values divides by a number that is not a power of two; "
                         "no exact fixed-point form")
    return arr(flat.sum(axis=0) * (1.0 / n), x)


def move(layer: Any, x: Any, kind: str) -> Any:
    """Layers that only move values (padding with zeros, cropping, repeating, permuting): index operations."""
    cfg = layer.get_config()
    v = np.asarray(x._vars)
    nd = v.ndim - 1
    if kind.startswith("ZeroPadding"):
        pads = np.broadcast_to(np.asarray(cfg["padding"]).reshape(-1, 2), (nd, 2))
        return arr(_pad(v, [tuple(int(p) for p in row) for row in pads], 0.0), x)
    if kind.startswith("Cropping"):
        crops = np.broadcast_to(np.asarray(cfg["cropping"]).reshape(-1, 2), (nd, 2))
        return arr(v[tuple(slice(int(a), n - int(b)) for (a, b), n in zip(crops, v.shape))], x)
    if kind.startswith("UpSampling"):
        if cfg.get("interpolation", "nearest") != "nearest":
            raise RtlRefusal(f"layer '{layer.name}' ({kind}): only nearest-neighbour upsampling is traced for da4ml")
        sizes = np.atleast_1d(cfg["size"] if "size" in cfg else cfg["length"])
        for axis, n in enumerate(np.broadcast_to(sizes, (nd,))):
            v = np.repeat(v, int(n), axis=axis)
        return arr(v, x)
    return arr(np.transpose(v, [int(d) - 1 for d in cfg["dims"]]), x)  # Permute: dims count from 1


MOVERS = ("ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D", "Permute")
