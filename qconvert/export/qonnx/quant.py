"""QKeras quantizers → QONNX ``Quant`` / ``BipolarQuant`` parameters, exactly or not at all.

QONNX's ``Quant(x, scale, zero_point, bitwidth; signed, narrow, rounding_mode)`` computes
``(round(clip(x / scale + z, lo, hi)) - z) · scale`` with ``[lo, hi]`` the integer range of ``bitwidth``
bits (``narrow`` drops the most negative value of a signed range, the largest of an unsigned one) and
``rounding_mode="ROUND"`` numpy's round half to even; ``BipolarQuant(x, scale)`` is ``±scale``, ``+``
for ``x >= 0`` (qonnx 1.0, ``custom_op/general``). Clipping before rounding equals rounding before
clipping here: the bounds are integers.

What QKeras computes (qkeras-v3, ``quantizers.py``), mapped one to one:

* ``quantized_bits(bits, integer, symmetric, keep_negative, alpha=1)``: ``round(x·2^f)`` half to even
  (``keras.ops.round``), clipped to ``[-2^(bits-1) + symmetric, 2^(bits-1) - 1]`` (``[0, 2^bits - 1]``
  without ``keep_negative``), times ``2^-f`` with ``f = bits - keep_negative - integer``: a ``Quant`` with
  scale ``2^-f``, ``signed = keep_negative``, ``narrow = symmetric``. One bit with ``keep_negative`` is the
  sign, ``x >= 0 → +1``: ``BipolarQuant`` with scale 1.
* ``quantized_relu(bits, integer)``: the unsigned ``Quant`` of ``bits`` bits at ``2^(integer-bits)``, after a
  ``Relu``. With ``negative_slope = s`` (a power of two): ``LeakyRelu(s)``, a signed ``Quant`` at
  ``2^(integer-bits+1)`` and a ``Clip`` at ``-s·2^integer`` (QKeras clips the negative side there).
* ``quantized_tanh(bits)`` / ``quantized_sigmoid(bits)``: QKeras's own piecewise-linear sigmoid
  (``hard``: ``clip(0.5·x + 0.5, 0, 1)``; ``smooth``: ``clip(0.1875·x + 0.5, 0, 1)``) as ``Mul``, ``Add``,
  ``Clip`` in the same float32 order (tanh: ``2·σ - 1``), then a ``Quant`` at ``2^-(bits-1)`` (signed) or
  ``2^-bits`` (unsigned).
* ``binary(alpha=1)`` as an activation: ``BipolarQuant`` with scale 1.

QKeras returns ``x + (xq - x)`` (its straight-through estimator): equal to ``xq`` in float32 unless ``|x|``
is beyond 2^24 steps of the grid, far outside any trained model's range.

Weights are stored as QKeras quantizes them (the quantizer run on the float weights), with a ``Quant``
node that reproduces every stored value (checked here, value by value, with qonnx's own ``quant``): its
parameters come from the quantizer (scale per output channel for ``alpha="auto_po2"``, ternary and binary
scales from the values), and a quantizer the check does not pass is refused naming the layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import ExportError

__all__ = ["ActivationPlan", "QonnxRefusal", "QuantParams", "activation_plan", "input_quant", "weight_quant"]


class QonnxRefusal(ExportError):
    """A layer (or a quantizer in it) that has no exact QONNX form; the message names it."""


@dataclass(frozen=True)
class QuantParams:
    """One ``Quant`` node (``bipolar``: one ``BipolarQuant``). ``scale``: a float32 scalar or an array that
    broadcasts against the tensor it quantizes (per output channel)."""

    scale: Any
    bits: int
    signed: bool = True
    narrow: bool = False
    rounding: str = "ROUND"
    bipolar: bool = False

    def apply(self, x: np.ndarray) -> np.ndarray:
        """What qonnx's execution computes for this node on ``x`` (qonnx's own functions)."""
        from qonnx.custom_op.general.bipolar_quant import binary_quant
        from qonnx.custom_op.general.quant import quant

        x = np.asarray(x, dtype=np.float32)
        scale = np.asarray(self.scale, dtype=np.float32)
        if self.bipolar:
            return binary_quant(x, scale)
        return quant(x, scale, np.float32(0.0), np.float32(self.bits), int(self.signed), int(self.narrow), self.rounding)

    def describe(self) -> str:
        """``Quant(6 bits, signed, scale 2^-5)``: what the report and the refusals print."""
        scale = np.asarray(self.scale)
        if scale.size == 1:
            s = float(scale)
            text = f"2^{int(math.log2(s))}" if s > 0 and math.log2(s).is_integer() else f"{s:g}"
        else:
            text = f"per channel ({scale.size})"
        if self.bipolar:
            return f"BipolarQuant(scale {text})"
        kind = ("signed" if self.signed else "unsigned") + (", narrow" if self.narrow else "")
        return f"Quant({self.bits} bits, {kind}, scale {text}, {self.rounding})"


@dataclass(frozen=True)
class ActivationPlan:
    """The ONNX ops that compute one activation quantizer, in order: ``(op, params)`` with ``op`` one of
    ``Relu``, ``LeakyRelu`` (``alpha``), ``Mul`` / ``Add`` (``value``), ``Clip`` (``lo``, ``hi``, either None)
    and ``Quant`` (``params``: :class:`QuantParams`)."""

    steps: tuple[tuple[str, dict[str, Any]], ...]
    text: str  # the quantizer, as QKeras prints it

    @property
    def quant(self) -> QuantParams:
        """The plan's quantization node."""
        return next(p["params"] for op, p in self.steps if op == "Quant")


def _cfg(q: Any) -> tuple[str, dict[str, Any]]:
    return type(q).__name__, (q.get_config() if hasattr(q, "get_config") else {})


def _pow2(e: float) -> np.float32:
    return np.float32(2.0**e)


def _fixed(cfg: dict[str, Any]) -> QuantParams:
    """``quantized_bits`` with a fixed grid (alpha None or 1)."""
    bits, integer = int(cfg["bits"]), int(cfg.get("integer", 0))
    keep_negative = bool(cfg.get("keep_negative", True))
    unsigned_bits = bits - int(keep_negative)
    if unsigned_bits <= 0:
        return QuantParams(np.float32(1.0), 1, bipolar=True)
    return QuantParams(_pow2(integer - unsigned_bits), bits, keep_negative,
                       bool(cfg.get("symmetric", False)) and keep_negative)


def _hard_sigmoid_steps(where: str, text: str) -> list[tuple[str, dict[str, Any]]]:
    """QKeras's internal sigmoid (a module setting: hard by default) as float32 ops in QKeras's order."""
    from ...runtime import import_qkeras

    qq = import_qkeras().quantizers

    slope = {qq.hard_sigmoid: 0.5, qq.smooth_sigmoid: 0.1875}.get(qq._sigmoid)
    if slope is None:
        raise QonnxRefusal(f"{where}: {text} uses the real sigmoid (qkeras set_internal_sigmoid('real')); "
                           "a float transcendental has no exact QONNX form")
    return [("Mul", {"value": slope}), ("Add", {"value": 0.5}), ("Clip", {"lo": 0.0, "hi": 1.0})]


def activation_plan(q: Any, where: str) -> ActivationPlan:
    """The exact QONNX ops of activation quantizer ``q``; :class:`QonnxRefusal` naming ``where`` otherwise."""
    name, cfg = _cfg(q)
    text = str(q)
    if float(cfg.get("qnoise_factor", 1.0) if cfg.get("qnoise_factor") is not None else 1.0) != 1.0:
        raise QonnxRefusal(f"{where}: {text} has qnoise_factor {cfg['qnoise_factor']} (a training mix of float and "
                           "quantized values); QONNX needs the quantized values alone")
    if name == "quantized_bits":
        if cfg.get("alpha") not in (None, 1, 1.0):
            raise QonnxRefusal(f"{where}: {text} scales by alpha={cfg.get('alpha')!r}; an activation Quant needs a "
                               "fixed grid (alpha=1)")
        p = _fixed(cfg)
        return ActivationPlan((("Quant", {"params": p}),), text)
    if name == "quantized_relu":
        if cfg.get("use_sigmoid"):
            raise QonnxRefusal(f"{where}: {text} with use_sigmoid has no exact QONNX form")
        bits, integer = int(cfg["bits"]), int(cfg.get("integer", 0))
        slope = float(cfg.get("negative_slope", 0.0) or 0.0)
        if slope == 0.0:
            return ActivationPlan((("Relu", {}), ("Quant", {"params": QuantParams(_pow2(integer - bits), bits, False)})), text)
        m = 2.0 ** (bits - 1)
        if not (slope * m).is_integer() or bits < 2:
            raise QonnxRefusal(f"{where}: {text}: the negative side's bound -{slope}·2^{bits - 1} is not on the grid")
        p = QuantParams(_pow2(integer - bits + 1), bits, True)
        steps: list[tuple[str, dict[str, Any]]] = [("LeakyRelu", {"alpha": slope}), ("Quant", {"params": p})]
        if slope < 1.0:
            steps.append(("Clip", {"lo": float(-slope * m * float(p.scale)), "hi": None}))
        return ActivationPlan(tuple(steps), text)
    if name in ("quantized_tanh", "quantized_sigmoid"):
        real = cfg.get("use_real_tanh") or cfg.get("use_real_sigmoid")
        if real:
            raise QonnxRefusal(f"{where}: {text} uses the real {name[10:]}: a float transcendental has no exact QONNX form")
        bits, symmetric = int(cfg["bits"]), bool(cfg.get("symmetric", False))
        steps = _hard_sigmoid_steps(where, text)
        if name == "quantized_tanh":
            steps += [("Mul", {"value": 2.0}), ("Add", {"value": -1.0})]
            return ActivationPlan((*steps, ("Quant", {"params": QuantParams(_pow2(1 - bits), bits, True, symmetric)})), text)
        if symmetric:
            raise QonnxRefusal(f"{where}: {text}: a symmetric sigmoid's lowest value 2^-{bits} has no QONNX Quant range")
        return ActivationPlan((*steps, ("Quant", {"params": QuantParams(_pow2(-bits), bits, False)})), text)
    if name == "binary":
        if cfg.get("use_01") or cfg.get("alpha") not in (1, 1.0):
            raise QonnxRefusal(f"{where}: {text} as an activation needs alpha=1 and use_01=False for QONNX's BipolarQuant")
        return ActivationPlan((("Quant", {"params": QuantParams(np.float32(1.0), 1, bipolar=True)}),), text)
    raise QonnxRefusal(f"{where}: activation quantizer {text} has no exact QONNX form "
                       "(quantized_bits, quantized_relu, quantized_tanh, quantized_sigmoid, binary do)")


def input_quant(width: int, integer: int, signed: bool = True) -> QuantParams:
    """The input ``Quant`` of a fixed-point type ``ap_fixed<width, integer>``: round half to even, saturate."""
    return QuantParams(_pow2(integer - width), width, signed)


def _channel_scale(values: np.ndarray, top: int, axis: int | None) -> np.ndarray:
    """The step that puts ``values``'s largest magnitude at integer ``top``, per ``axis`` (None: one for all)."""
    if axis is None:
        peak = np.max(np.abs(values)) if values.size else 0.0
    else:
        other = tuple(i for i in range(values.ndim) if i != axis % values.ndim)
        peak = np.max(np.abs(values), axis=other, keepdims=True)
    return np.where(peak > 0, peak / top, 1.0).astype(np.float32)


def weight_quant(q: Any, values: np.ndarray, where: str, channel_axis: int = -1) -> QuantParams:
    """The ``Quant`` that reproduces ``values`` (weights as quantizer ``q`` made them, in the layout they are
    stored in; ``channel_axis``: their output channels) bit for bit, or :class:`QonnxRefusal`."""
    name, cfg = _cfg(q)
    text = str(q)
    values = np.asarray(values, dtype=np.float32)
    if name == "quantized_bits":
        alpha = cfg.get("alpha")
        keep_negative = bool(cfg.get("keep_negative", True))
        bits = int(cfg["bits"])
        if isinstance(alpha, str):  # auto / auto_po2: QKeras's scales per output channel, integers up to 2^(b-1)-1
            p = QuantParams(_channel_scale(values, max(2 ** (bits - 1) - 1, 1), channel_axis), bits, True, True)
        else:
            p = _fixed(cfg)
            if alpha not in (None, 1, 1.0):
                p = QuantParams(np.float32(float(p.scale) * float(alpha)), p.bits, p.signed, p.narrow, bipolar=p.bipolar)
        if not keep_negative and isinstance(alpha, str):
            raise QonnxRefusal(f"{where}: {text}: an unsigned quantizer with alpha={alpha!r} is not exported to QONNX")
    elif name == "binary":
        axis = channel_axis if isinstance(cfg.get("alpha"), str) else None
        scale = _channel_scale(values, 1, axis)
        p = QuantParams(scale, 1, False) if cfg.get("use_01") else QuantParams(scale, 1, bipolar=True)
    elif name == "ternary":
        axis = channel_axis if isinstance(cfg.get("alpha"), str) else None
        p = QuantParams(_channel_scale(values, 1, axis), 2, True, True)
    else:
        raise QonnxRefusal(f"{where}: weight quantizer {text} has no QONNX Quant form "
                           "(quantized_bits, binary, ternary do)")
    if not np.array_equal(p.apply(values), values):
        bad = int(np.sum(p.apply(values) != values))
        raise QonnxRefusal(f"{where}: the weights {text} makes are not reproduced by {p.describe()} "
                           f"({bad} of {values.size} values differ)")
    return p
