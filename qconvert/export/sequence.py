"""hls4ml Keras-3 handlers for sequence layers: recurrent Q-layers, the left zero-padding of a causal convolution.

``padding="causal"`` is rewritten by :mod:`qconvert.model.rewriters.weighted` into
``ZeroPadding1D((k - 1) * dilation, 0)`` + a ``padding="valid"`` Q-convolution;
hls4ml 1.3.0 has a ZeroPadding1D layer but no Keras-3 handler for it.

QSimpleRNN, QLSTM and QGRU (qkeras-v3: ``keras.layers.RNN`` subclasses, not LSTM/GRU) become
hls4ml's SimpleRNN, LSTM and GRU. hls4ml's recurrent layers take no weight quantizers (they
store whatever data they get at the configured precision), so the weights are handed over already
quantized, on the quantizer's grid. hls4ml computes a cell's tanh and sigmoid by lookup table and
its gates and state at the model's default precision: the emulation of a recurrent layer is
approximate, never bit-exact, and the verification measures by how much. hls4ml's Vivado and Vitis
backends have no SimpleRNN function: :func:`qconvert.export.support.backend_refusal` refuses it there.
Registered through :data:`qconvert.export.handlers.HANDLERS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from hls4ml.converters.keras_v3._base import KerasV3LayerHandler

from ..errors import ExportError

__all__ = ["SEQUENCE_HANDLERS", "QRecurrentHandler", "ZeroPadding1DHandler"]

_QR = "qkeras.qrecurrent."
#: activation functions hls4ml's recurrent cells implement (by table, except linear and relu)
_CELL_ACTIVATIONS = frozenset({"tanh", "sigmoid", "hard_sigmoid", "relu", "linear", "softmax"})


def _quantized(layer: Any, role: str, data: np.ndarray) -> np.ndarray:
    """``data`` on the grid of the layer's ``role`` quantizer (unchanged without one)."""
    import keras

    q = getattr(layer, f"{role}_quantizer_internal", None)
    return data if q is None else np.asarray(keras.ops.convert_to_numpy(q(np.asarray(data, dtype="float32"))))


def _activation_name(layer: Any, attr: str) -> str:
    fn = getattr(layer.cell, attr)
    name = getattr(fn, "__name__", None)
    if name not in _CELL_ACTIVATIONS:
        raise ExportError(f"layer '{layer.name}' ({type(layer).__name__}): {attr}={fn!r} inside the cell has no "
                          "hls4ml bridge (tanh, sigmoid, hard_sigmoid, relu, linear do)")
    return str(name)


class QRecurrentHandler(KerasV3LayerHandler):
    """QSimpleRNN / QLSTM / QGRU → hls4ml SimpleRNN / LSTM / GRU, weights on their quantizers' grids."""

    handles = (f"{_QR}QSimpleRNN", f"{_QR}QLSTM", f"{_QR}QGRU")

    def default_class_name(self, layer: Any) -> str:
        """The hls4ml class: the QKeras name without its ``Q``."""
        return type(layer).__name__.removeprefix("Q")

    def maybe_get_activation_config(self, layer: Any, out_tensors: Sequence[Any]) -> tuple[None, None]:
        """No activation layer after the cell: a recurrent layer's ``activation`` (its cell's, inside every step)
        is in the layer dictionary. hls4ml's base handler would append it as a layer of its own, so the cell's
        output went through tanh a second time (argmax agreement 98 % instead of 100 %, with any tables)."""
        return None, None

    def handle(self, layer: Any, in_tensors: Sequence[Any], out_tensors: Sequence[Any]) -> dict[str, Any]:
        """hls4ml's recurrent layer dictionary with the quantized kernel, recurrent kernel and bias; return_state,
        go_backwards, stateful and a state quantizer are refused (:class:`ExportError`)."""
        kind = type(layer).__name__
        where = f"layer '{layer.name}' ({kind})"
        if layer.return_state or layer.go_backwards or layer.stateful:
            raise ExportError(f"{where}: return_state, go_backwards and stateful have no hls4ml implementation")
        if layer.cell.state_quantizer_internal is not None:
            raise ExportError(f"{where}: a state_quantizer has no hls4ml counterpart; leave 'state' unset for hls4ml")
        kernel = _quantized(layer, "kernel", self.load_weight(layer.cell, "kernel"))
        recurrent = _quantized(layer, "recurrent", self.load_weight(layer.cell, "recurrent_kernel"))
        units = int(layer.cell.units)
        if layer.cell.use_bias:
            bias = _quantized(layer, "bias", self.load_weight(layer.cell, "bias"))
        else:
            bias = np.zeros((2, kernel.shape[-1]) if kind == "QGRU" else (kernel.shape[-1],), dtype="float32")
        config: dict[str, Any] = {
            "direction": "forward",
            "return_sequences": bool(layer.return_sequences),
            "return_state": False,
            "time_major": False,
            "n_timesteps": int(in_tensors[0].shape[1]),
            "n_in": int(in_tensors[0].shape[2]),
            "n_out": units,
            "weight_data": kernel,
            "recurrent_weight_data": recurrent,
            "bias_data": bias[0] if kind == "QGRU" else bias,
            "activation": _activation_name(layer, "activation"),
        }
        if kind == "QGRU":
            config["recurrent_bias_data"] = bias[1]
            config["apply_reset_gate"] = "after" if layer.cell.reset_after else "before"
        if kind != "QSimpleRNN":
            config["recurrent_activation"] = _activation_name(layer, "recurrent_activation")
        return config


class ZeroPadding1DHandler(KerasV3LayerHandler):
    """``ZeroPadding1D((left, right))`` on channels-last ``(steps, channels)``: zeros before and after."""

    handles = ("keras.src.layers.reshaping.zero_padding1d.ZeroPadding1D",)

    def handle(self, layer: Any, in_tensors: Sequence[Any], out_tensors: Sequence[Any]) -> dict[str, Any]:
        """hls4ml's ZeroPadding1D dictionary: ``pad_left``/``pad_right`` steps around ``in_width`` steps."""
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


SEQUENCE_HANDLERS: tuple[type[KerasV3LayerHandler], ...] = (ZeroPadding1DHandler, QRecurrentHandler)
