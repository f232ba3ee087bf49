"""Trace a QKeras (qkeras-v3) model into da4ml operations: the logic the RTL implements.

Each layer maps onto da4ml's symbolic fixed-point arrays (``FixedVariableArray``): Dense and Conv
become constant-matrix-vector products with the quantized weights (da4ml solves them as adder
graphs), biases constant additions, pooling ``max``/sums, and every QActivation a rounding and a
saturation. The one place where QKeras and da4ml differ is the rounding: QKeras rounds half to even
(``keras.ops.round``; hls4ml's ``AP_RND_CONV``), da4ml's ``quantize`` truncates or rounds half up.
:func:`round_half_even` builds the exact rounding from da4ml operations (see its docstring), so the
traced logic computes what Keras computes, bit for bit.

Layers with no exact da4ml form are refused in one line naming the layer (:class:`RtlRefusal`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import ExportError
from ...model.graph import graph_of, run
from ..inputs import input_quantizer_layer
from ..precision import DEFAULT_INPUT, FixedType, data_type, quantizer_type
from .layers import (
    MOVERS,
    Mul,
    RtlRefusal,
    activation,
    arr,
    conv,
    dense,
    depthwise,
    fn_name,
    global_pool,
    move,
    pool,
    product,
)

__all__ = ["RtlRefusal", "Traced", "input_kif", "round_half_even", "trace_model"]

_PASS = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "Identity", "GaussianNoise", "GaussianDropout",
         "ActivityRegularization")  # fmt: skip


@dataclass
class Traced:
    """The traced logic: da4ml's input and output arrays, and what the emulation must feed it."""

    inp: Any  # FixedVariableArrayInput, flat
    out: Any  # FixedVariableArray, flat: the logits (before a final softmax)
    input_type: FixedType
    input_source: str
    input_quantizer: Any = None  # the QActivation the input type comes from (inputs go through it)
    logits_layer: str = ""
    softmax: str | None = None  # a final softmax left out of the RTL
    layers: dict[str, Any] = field(default_factory=dict)  # layer name → its traced output (for divergence)


def input_kif(t: FixedType) -> tuple[int, int, int]:
    """(sign, integer bits without sign, fraction bits) of a fixed type, as da4ml counts them."""
    return int(t.signed), t.integer - int(t.signed), t.frac


def round_half_even(x: Any, k: int, i: int, f: int, overflow: str = "SAT") -> Any:
    """``x`` rounded to ``f`` fraction bits half to even, then saturated (or wrapped) to ``k, i, f``.

    da4ml rounds only by truncation (floor) and half up. With ``u`` the step of ``x`` (``2^-F``,
    ``F > f``), ``h = 2^-(f+1)`` and ``b`` the bit of ``x`` at weight ``2^-f`` (the parity of
    ``floor(x·2^f)``), half to even is exactly::

        floor_f(x + h - u + b·u)

    With remainder ``r = x - floor_f(x)`` (a multiple of ``u``): ``r > h`` gives ``r ≥ h + u``, so the
    sum carries into the next step whatever ``b``; ``r < h`` gives ``r ≤ h - u`` and no carry; at the tie
    ``r = h`` the sum is ``1 - u + b·u`` steps: it carries only when ``b = 1`` (odd rounds up to even).
    ``b`` is one wire (``x`` wrapped to one bit at ``2^-f``); ``b·u`` is a shift. Saturation clips
    after rounding, which is what QKeras does (it clips to bounds that lie on the grid, then rounds).
    """
    from da4ml.trace import FixedVariableArray

    flat = np.asarray(x._vars).ravel() if isinstance(x, FixedVariableArray) else [x]
    out = [_round_one(v, k, i, f, overflow) for v in flat]
    if isinstance(x, FixedVariableArray):
        return FixedVariableArray(np.array(out, dtype=object).reshape(x.shape), x.solver_options)
    return out[0]


def _round_one(v: Any, k: int, i: int, f: int, overflow: str) -> Any:
    _, _, vf = v.kif
    if vf > f and v.low != v.high:
        u = 2.0**-vf
        parity = v.quantize(0, 1 - f, f, "WRAP", "TRN")  # b · 2^-f
        v = (v + (2.0 ** -(f + 1) - u) + parity * 2.0 ** (f - vf)).quantize(1, 64, f, "WRAP", "TRN")
    elif vf > f:  # a constant: round it here
        v = v.from_const(float(np.round(float(v.low) * 2.0**f) / 2.0**f), hwconf=v.hwconf)  # low is a Decimal
    return v.quantize(k, i, f, overflow, "TRN")


def _quantizer_kif(q: Any, where: str) -> tuple[int, int, int, str]:
    """(k, i, f, overflow mode) of a fixed-point QKeras activation quantizer, or a refusal."""
    name = type(q).__name__
    cfg = q.get_config() if hasattr(q, "get_config") else {}
    noise = cfg.get("qnoise_factor")
    if noise is not None and float(noise) != 1.0:
        raise RtlRefusal(f"{where}: {name} with qnoise_factor={float(noise):g} adds part of the unquantized input to "
                         "its output (x + qnoise_factor·(q(x) − x) in QKeras), which has no fixed-point grid; use "
                         "qnoise_factor=1")
    if name == "quantized_relu":
        if float(cfg.get("negative_slope", 0.0) or 0.0) != 0.0:
            raise RtlRefusal(f"{where}: leaky quantized_relu (negative_slope) is not traced for da4ml yet")
        if cfg.get("use_sigmoid") or cfg.get("relu_upper_bound") is not None:
            raise RtlRefusal(f"{where}: quantized_relu with use_sigmoid or relu_upper_bound is not traced for da4ml")
    elif name == "quantized_bits":
        if cfg.get("alpha") not in (None, 1, 1.0):
            raise RtlRefusal(f"{where}: quantized_bits with alpha={cfg.get('alpha')!r} scales by a learned factor; "
                             "da4ml needs a fixed grid (alpha=1)")
    else:
        raise RtlRefusal(f"{where}: {name} has no exact da4ml form (only quantized_bits and quantized_relu)")
    t = quantizer_type(q)
    if t is None or t.kind != "fixed":
        raise RtlRefusal(f"{where}: {name} has no fixed-point grid")
    k, i, f = input_kif(t)
    overflow = "SAT_SYM" if name == "quantized_bits" and cfg.get("symmetric") else "SAT"
    return k, i, f, overflow


def _flat_args(args: Any) -> list[Any]:
    """The traced arrays a call receives: ``(x,)`` or ``([a, b],)`` (Add, Concatenate) → ``[x]`` / ``[a, b]``."""
    if isinstance(args, (list, tuple)):
        return [v for a in args for v in _flat_args(a)]
    return [args]


def _layer(layer: Any, args: Any, where: str, final_softmax: bool, mul: Mul = product) -> Any:
    kind = type(layer).__name__
    ins = _flat_args(args)
    x = ins[0]
    if kind == "QActivation":
        act = layer.activation
        if isinstance(act, str) or not hasattr(act, "get_config"):
            return activation(x, getattr(act, "__name__", str(act)), where)
        k, i, f, overflow = _quantizer_kif(act, where)
        return round_half_even(x, k, i, f, overflow)
    if kind in ("QDense", "Dense"):
        return dense(layer, x, where, mul)
    if kind in ("QConv1D", "QConv2D", "Conv1D", "Conv2D"):
        return conv(layer, x, where, mul)
    if kind in ("QDepthwiseConv2D", "QSeparableConv1D", "QSeparableConv2D"):
        return depthwise(layer, x, where, kind.startswith("QSeparable"), mul)
    if kind in ("Activation", "ReLU"):
        fn = fn_name(layer) if kind == "Activation" else "relu"
        if kind == "ReLU" and (layer.max_value is not None or float(layer.negative_slope) or float(layer.threshold)):
            raise RtlRefusal(f"{where}: ReLU with max_value, negative_slope or threshold is not traced for da4ml")
        if fn == "softmax" and final_softmax:
            return x
        return activation(x, fn, where)
    if kind in ("Flatten", "Reshape"):
        return x.reshape(tuple(int(d) for d in layer.compute_output_shape((1, *x.shape))[1:]))
    if kind in _PASS:
        return x
    if kind in MOVERS:
        return move(layer, x, kind)
    if kind in ("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D"):
        return pool(layer, x, where, "max" if kind.startswith("Max") else "avg")
    if kind in ("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D"):
        if layer.get_config().get("keepdims"):
            raise RtlRefusal(f"{where}: keepdims=True is not traced for da4ml")
        return global_pool(x, "max" if "Max" in kind else "avg", where)
    if kind == "Add":
        out = ins[0]
        for other in ins[1:]:
            out = out + other
        return out
    if kind == "Concatenate":
        axis = int(layer.get_config().get("axis", -1))
        axis = axis - 1 if axis > 0 else axis  # the batch axis is not traced
        return arr(np.concatenate([np.asarray(a._vars) for a in ins], axis=axis), x)
    raise RtlRefusal(f"{where}: da4ml cannot express this layer in qconvert's RTL trace "
                     "(traced: QDense, QConv1D/2D, QDepthwiseConv2D, QSeparableConv1D/2D, QActivation with quantized_bits/quantized_relu, relu, pooling, "
                     "Flatten, Reshape, ZeroPadding, Cropping, UpSampling, Permute, Add, Concatenate, Dropout, a final softmax)")


def _input_quantizer(model: Any, graph: Any) -> Any:
    """The input QActivation (:func:`~qconvert.export.inputs.input_quantizer_layer`) when da4ml can express its
    quantizer, else None."""
    layer = input_quantizer_layer(model, graph)
    if layer is None:
        return None
    try:
        _quantizer_kif(layer.activation, "")
    except RtlRefusal:
        return None
    return layer


def trace_model(qmodel: Any, x: Any = None, input_precision: str | None = None, mul: Mul = product) -> Traced:
    """The da4ml trace of a flat, single-input QKeras model; outputs are the logits before a final softmax.

    ``mul``: how a traced array is multiplied by a constant matrix (:func:`.layers.product`, da4ml in this
    process, or :meth:`.solver.Solver.matmul`, in a child process with a time budget).

    The input type: ``input_precision`` (an ``ap_fixed<W,I>`` string), else the rules' input quantizer
    (a QActivation with a ``quantized_bits`` right after the input), else 16 bits from the range of
    ``x``, else hls4ml's ``ap_fixed<16,6>`` — the same order as the hls4ml bridge.
    """
    from da4ml.trace import FixedVariableArrayInput

    from ..precision import parse_hls

    if len(qmodel.inputs) != 1 or len(qmodel.outputs) != 1:
        raise ExportError(f"model '{qmodel.name}': the RTL trace handles single-input, single-output models "
                          f"(this one has {len(qmodel.inputs)} inputs and {len(qmodel.outputs)} outputs)")
    graph = graph_of(qmodel)
    absorbed = _input_quantizer(qmodel, graph)
    if input_precision is not None:
        in_t, source, absorbed = parse_hls(input_precision), f"given ({input_precision})", None
    elif absorbed is not None:
        in_t = quantizer_type(absorbed.activation)
        source = f"input quantizer ({absorbed.name})"
    elif x is not None:
        in_t, source = data_type(float(np.max(np.abs(np.asarray(x))))), "data range"
    else:
        in_t, source = DEFAULT_INPUT, "default"
    shape = tuple(int(d) for d in qmodel.inputs[0].shape[1:])
    inp = FixedVariableArrayInput(int(np.prod(shape)))
    start = inp.quantize(*input_kif(in_t)).reshape(shape)

    out_ref = graph.outputs[0] if isinstance(graph.outputs, (list, tuple)) else graph.outputs
    last = qmodel.get_layer(out_ref.layer)
    final_softmax = type(last).__name__ == "Activation" and fn_name(last) == "softmax"
    logits_layer = out_ref.layer
    layers: dict[str, Any] = {}

    def call(c: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        nonlocal logits_layer
        layer = qmodel.get_layer(c.layer)
        where = f"layer '{layer.name}' ({type(layer).__name__})"
        if absorbed is not None and layer is absorbed:
            value = _flat_args(args)[0]
        else:
            is_final = final_softmax and layer is last
            value = _layer(layer, args, where, is_final, mul)
            if is_final:
                logits_layer = c.inputs()[0].layer
                return value
        layers[layer.name] = value
        return value

    out = run(graph, [start], call)
    out = out[0] if isinstance(out, (list, tuple)) else out
    return Traced(inp=inp, out=out.ravel(), input_type=in_t, input_source=source,
                  input_quantizer=absorbed.activation if absorbed is not None else None,
                  logits_layer=logits_layer, softmax=last.name if final_softmax else None, layers=layers)
