"""Dense and convolution layers → their QKeras counterparts.

qkeras-v3 has a Q-layer for each class below; the quantizer roles each takes
(``kernel``, ``bias``, ``depthwise``, ``pointwise``) are listed beside it.
A fused ``activation=`` is removed here and split into its own layer by the
rewrite stage, which names it.
"""

from __future__ import annotations

from typing import Any

from ...quantizers import QuantizerSpec
from . import NewLayer, register

__all__ = ["WEIGHTED", "rewrite_weighted"]

#: Keras class → (QKeras class, quantizer roles it takes)
WEIGHTED: dict[str, tuple[str, tuple[str, ...]]] = {
    "Dense": ("QDense", ("kernel", "bias")),
    "Conv1D": ("QConv1D", ("kernel", "bias")),
    "Conv2D": ("QConv2D", ("kernel", "bias")),
    "Conv2DTranspose": ("QConv2DTranspose", ("kernel", "bias")),
    "DepthwiseConv2D": ("QDepthwiseConv2D", ("depthwise", "bias")),
    "SeparableConv1D": ("QSeparableConv1D", ("depthwise", "pointwise", "bias")),
    "SeparableConv2D": ("QSeparableConv2D", ("depthwise", "pointwise", "bias")),
}

# Keras 3 arguments with no counterpart in the Q-layers; dropped only at their
# inert value, refused otherwise.
_INERT = {"quantization_config": None, "lora_rank": None, "lora_alpha": None, "groups": 1}


@register(*WEIGHTED)
def rewrite_weighted(class_name: str, config: dict[str, Any], quantizers: dict[str, QuantizerSpec]) -> list[NewLayer]:
    """``Dense(…, activation=…)`` → ``QDense(…, kernel_quantizer=…, bias_quantizer=…)``."""
    q_class, roles = WEIGHTED[class_name]
    new = dict(config)
    for key, inert in _INERT.items():
        if key in new and new[key] == inert:
            del new[key]
    new["activation"] = "linear"
    for role in roles:
        spec = quantizers.get(role)
        new[f"{role}_quantizer"] = None if spec is None or spec.is_float else spec
    return [NewLayer(q_class, new)]
