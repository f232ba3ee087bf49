"""Recurrent layers → their QKeras counterparts: SimpleRNN, LSTM, GRU → QSimpleRNN, QLSTM, QGRU.

Quantizer roles (rule keys): ``kernel`` (input kernel), ``recurrent`` (recurrent kernel; defaults
to ``kernel``), ``bias`` and ``state`` (the hidden state, quantized after each step; no default:
float unless a rule sets it). The cell's ``activation`` and ``recurrent_activation`` are kept as
the model has them (tanh, sigmoid: float; hls4ml computes them by table), so the rules' activation
quantizers do not reach inside a cell. Weights keep their shapes: a QLSTM stores exactly an LSTM's
kernel, recurrent kernel and bias.
"""

from __future__ import annotations

from typing import Any

from ...quantizers import QuantizerSpec
from .registry import NewLayer, register, with_quantizers

__all__ = ["RECURRENT", "rewrite_recurrent"]

#: Keras class → (QKeras class, quantizer roles it takes)
RECURRENT: dict[str, tuple[str, tuple[str, ...]]] = {
    "SimpleRNN": ("QSimpleRNN", ("kernel", "recurrent", "bias", "state")),
    "LSTM": ("QLSTM", ("kernel", "recurrent", "bias", "state")),
    "GRU": ("QGRU", ("kernel", "recurrent", "bias", "state")),
}

#: Keras 3 arguments the Q-layers do not take, dropped at the value where they change nothing.
_INERT = {"use_cudnn": "auto", "seed": None}


@register(*RECURRENT)
def rewrite_recurrent(class_name: str, config: dict[str, Any], quantizers: dict[str, QuantizerSpec]) -> list[NewLayer]:
    """``LSTM(units, …)`` → ``QLSTM(units, …, kernel_quantizer=…, recurrent_quantizer=…, bias_quantizer=…)``."""
    q_class, roles = RECURRENT[class_name]
    return [NewLayer(q_class, with_quantizers(config, roles, quantizers, _INERT))]
