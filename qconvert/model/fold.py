"""Exact BatchNormalization folding: pure numpy on weight lists.

``y = gamma * (W x + b - mean) / sqrt(var + eps) + beta`` is
``(s * W) x + (s * (b - mean) + beta)`` with ``s = gamma / sqrt(var + eps)``,
applied per output channel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["fold_batchnorm"]


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


def fold_batchnorm(
    class_name: str,
    weights: list[np.ndarray],
    use_bias: bool,
    bn_weights: list[np.ndarray],
    bn_config: dict[str, Any],
) -> list[np.ndarray]:
    """The weights of ``class_name`` with the BN after it folded in (bias always present)."""
    scale, shift = _bn_scale_shift(bn_weights, bn_config)
    weights = [w.astype(np.float64) for w in weights]
    if class_name in ("SeparableConv1D", "SeparableConv2D"):
        depthwise, pointwise = weights[0], weights[1]
        bias = weights[2] if use_bias else np.zeros(pointwise.shape[-1])
        kernels = [depthwise, pointwise * scale]
    else:
        kernel = weights[0]
        bias = weights[1] if use_bias else np.zeros(scale.shape[0])
        if class_name == "Conv2DTranspose":  # (kh, kw, out, in)
            kernel = kernel * scale[:, None]
        elif class_name == "DepthwiseConv2D":  # (kh, kw, in, multiplier)
            kernel = kernel * scale.reshape(kernel.shape[-2], kernel.shape[-1])
        else:
            kernel = kernel * scale
        kernels = [kernel]
    dtype = bn_weights[-1].dtype
    return [k.astype(dtype) for k in kernels] + [(bias * scale + shift).astype(dtype)]
