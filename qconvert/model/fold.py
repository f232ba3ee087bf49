"""Exact BatchNormalization folding: which BatchNormalization folds where, and the folded weights (NumPy).

Backward, into the linear layer before it: ``y = s * (W x + b) + t`` is ``(s W) x + (s b + t)``, per output
channel. Forward, into the Dense or valid-padded convolution after it, when it cannot fold backward (its
producer is shared, has an activation, or is the model's input): ``W (s x + t) + b`` is ``(W s) x + (W t + b)``,
per input channel, ``W t`` summed over the kernel's window. Here ``s = gamma / sqrt(var + eps)`` and
``t = beta - mean * s`` (Ioffe & Szegedy 2015, eq. in Alg. 2; Jacob et al. 2018, sec. 3.2 for folding).
A "same"-padded convolution is never folded forward: its zero padding would be ``t`` after the fold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .graph import Graph

__all__ = ["FORWARD_INTO", "Fold", "find_folds", "folded_weights"]

#: The layers a BatchNormalization before them can fold into (kernel ``(..., in, out)``, one group).
FORWARD_INTO = ("Dense", "Conv1D", "Conv2D")

BatchNorm = tuple[list[np.ndarray], dict[str, Any]]  # (weights, config) of a BatchNormalization


@dataclass(frozen=True)
class Fold:
    """BatchNormalization ``bn`` folds into layer ``into``: the layer before it, or with ``forward`` the
    layer after it."""

    bn: str
    into: str
    forward: bool = False


def _last_axis(config: dict[str, Any], rank: int) -> bool:
    return config.get("axis") in (-1, [-1], rank - 1, [rank - 1])


def find_folds(model: Any, graph: Graph, config_of: Callable[[Any], dict[str, Any]],
               backward_into: tuple[str, ...]) -> list[Fold]:
    """The BatchNormalizations of one scope that fold, each into one layer (backward when it can).

    Backward: its single input is the output of a linear ``backward_into`` layer called once and used only by
    it. Forward: its output is used only by one call of a Dense/Conv1D/Conv2D (valid padding, one group, its
    only input) called once. In both, the normalized axis is the last. ``config_of`` gives a layer's config.
    """
    layers = {layer.name: layer for layer in model.layers}
    consumers = graph.consumers()
    folds: list[Fold] = []
    for layer in model.layers:
        if type(layer).__name__ != "BatchNormalization" or len(graph.calls_of(layer.name)) != 1:
            continue
        rank = len(layer.output.shape)
        if not _last_axis(config_of(layer), rank):
            continue
        inputs = graph.calls_of(layer.name)[0].inputs()
        producer = layers.get(inputs[0].layer) if len(inputs) == 1 else None
        if (producer is not None and type(producer).__name__ in backward_into
                and config_of(producer).get("activation", "linear") == "linear"
                and len(graph.calls_of(producer.name)) == 1 and consumers[producer.name] == 1):
            folds.append(Fold(layer.name, producer.name))
            continue
        users = [c for c in graph.calls if any(ref.layer == layer.name for ref in c.inputs())]
        if consumers[layer.name] != 1 or len(users) != 1 or len(users[0].inputs()) != 1:
            continue
        consumer = layers.get(users[0].layer)
        if consumer is None or type(consumer).__name__ not in FORWARD_INTO or len(graph.calls_of(consumer.name)) != 1:
            continue
        config = config_of(consumer)
        if config.get("padding", "valid") != "valid" or config.get("groups", 1) != 1:
            continue
        if config.get("data_format", "channels_last") != "channels_last":
            continue
        folds.append(Fold(layer.name, consumer.name, forward=True))
    return folds


def _bn_scale_shift(bn_weights: list[np.ndarray], bn_config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    weights = list(bn_weights)
    gamma = weights.pop(0) if bn_config.get("scale", True) else None
    beta = weights.pop(0) if bn_config.get("center", True) else None
    mean, var = weights
    scale = 1.0 / np.sqrt(var.astype(np.float64) + bn_config.get("epsilon", 1e-3))
    if gamma is not None:
        scale = scale * gamma
    shift = -mean * scale
    if beta is not None:
        shift = shift + beta
    return scale, shift


def _backward(class_name: str, weights: list[np.ndarray], bias: np.ndarray | None,
              bn: BatchNorm) -> list[np.ndarray]:
    scale, shift = _bn_scale_shift(*bn)
    if class_name in ("SeparableConv1D", "SeparableConv2D"):
        depthwise, pointwise = weights[0], weights[1]
        kernels = [depthwise, pointwise * scale]
    else:
        kernel = weights[0]
        if class_name == "Conv2DTranspose":  # (kh, kw, out, in)
            kernel = kernel * scale[:, None]
        elif class_name == "DepthwiseConv2D":  # (kh, kw, in, multiplier)
            kernel = kernel * scale.reshape(kernel.shape[-2], kernel.shape[-1])
        else:
            kernel = kernel * scale
        kernels = [kernel]
    bias = np.zeros(scale.shape[0]) if bias is None else bias
    return kernels + [bias * scale + shift]


def _forward(weights: list[np.ndarray], bias: np.ndarray | None, bn: BatchNorm) -> list[np.ndarray]:
    scale, shift = _bn_scale_shift(*bn)
    kernel = weights[0]  # (..., in, out)
    bias = np.zeros(kernel.shape[-1]) if bias is None else bias
    window = kernel.reshape(-1, *kernel.shape[-2:])  # (positions of the window, in, out)
    return [kernel * scale[:, None], bias + np.einsum("kio,i->o", window, shift)]


def folded_weights(class_name: str, weights: list[np.ndarray], use_bias: bool, *, before: BatchNorm | None = None,
                   after: BatchNorm | None = None) -> tuple[list[np.ndarray], bool]:
    """The weights of a ``class_name`` layer with the BatchNormalization ``before`` it (forward) and the one
    ``after`` it (backward) folded in, each given as ``(weights, config)``; and whether it has a bias now.

    Computed in float64, returned in the BatchNormalization's dtype; a fold always gives the layer a bias.
    """
    if before is None and after is None:
        return weights, use_bias
    arrays = [w.astype(np.float64) for w in weights]
    n_kernels = len(arrays) - int(use_bias)
    kernels, bias = arrays[:n_kernels], (arrays[n_kernels] if use_bias else None)
    if before is not None:
        *kernels, bias = _forward(kernels, bias, before)
    if after is not None:
        *kernels, bias = _backward(class_name, kernels, bias, after)
    dtype = (before or after)[0][-1].dtype
    return [w.astype(dtype) for w in [*kernels, bias]], True

