"""Dense and convolution layers → their QKeras counterparts.

qkeras-v3 has a Q-layer for each class below; the quantizer roles each takes
(``kernel``, ``bias``, ``depthwise``, ``pointwise``) are listed beside it.
A fused ``activation=`` is removed here and split into its own layer by the
rewrite stage, which names it. ``padding="causal"`` (Conv1D, SeparableConv1D),
which the Q-layers cannot compute, becomes what Keras computes for it: a
``ZeroPadding1D`` of ``dilation_rate * (kernel_size - 1)`` steps on the left,
named ``NAME_causal_pad``, then the Q-layer with ``padding="valid"``.
"""

from __future__ import annotations

from typing import Any

from ...quantizers import QuantizerSpec
from .registry import NewLayer, register, with_quantizers

__all__ = ["WEIGHTED", "causal_padding", "rewrite_weighted"]

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
    new = with_quantizers(dict(config, activation="linear"), roles, quantizers, _INERT)
    if new.get("padding") == "causal":
        return [causal_padding(new), NewLayer(q_class, dict(new, padding="valid"))]
    return [NewLayer(q_class, new)]


def causal_padding(config: dict[str, Any]) -> NewLayer:
    """The left zero-padding that makes a ``padding="valid"`` 1D convolution causal, as Keras pads it."""
    kernel = config["kernel_size"]
    dilation = config.get("dilation_rate", 1)
    steps = (_first(dilation)) * (_first(kernel) - 1)
    return NewLayer("ZeroPadding1D", {"name": f"{config['name']}_causal_pad", "padding": [steps, 0]}, takes_weights=False)


def _first(value: Any) -> int:
    return int(value[0]) if isinstance(value, (list, tuple)) else int(value)
