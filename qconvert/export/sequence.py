"""hls4ml Keras-3 handlers for sequence layers: the left zero-padding of a causal convolution.

``padding="causal"`` is rewritten by :mod:`qconvert.model.rewriters.weighted` into
``ZeroPadding1D((k - 1) * dilation, 0)`` + a ``padding="valid"`` Q-convolution;
hls4ml 1.3.0 has a ZeroPadding1D layer but no Keras-3 handler for it.
Registered through :data:`qconvert.export.handlers.HANDLERS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hls4ml.converters.keras_v3._base import KerasV3LayerHandler

__all__ = ["SEQUENCE_HANDLERS", "ZeroPadding1DHandler"]


class ZeroPadding1DHandler(KerasV3LayerHandler):
    """``ZeroPadding1D((left, right))`` on channels-last ``(steps, channels)``: zeros before and after."""

    handles = ("keras.src.layers.reshaping.zero_padding1d.ZeroPadding1D",)

    def handle(self, layer: Any, in_tensors: Sequence[Any], out_tensors: Sequence[Any]) -> dict[str, Any]:
        left, right = layer.padding
        _, steps, channels = in_tensors[0].shape
        return {
            "pad_left": int(left),
            "pad_right": int(right),
            "in_width": int(steps),
            "out_width": int(left) + int(steps) + int(right),
            "n_chan": int(channels),
            "data_format": "channels_last",
        }


SEQUENCE_HANDLERS: tuple[type[KerasV3LayerHandler], ...] = (ZeroPadding1DHandler,)
