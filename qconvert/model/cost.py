"""Bit operations (BOPs) of a Keras / QKeras model.

For a layer whose outputs each sum ``n`` products (fan-in ``n``), computing
``macs`` multiply-accumulates with ``b_w``-bit weights on ``b_a``-bit inputs
costs, as in the QAT literature (Baskin et al. 2018; Hawks et al. 2021)::

    BOPs = macs * (b_w * b_a + b_w + b_a + log2(n))

the product plus the adder tree. Input bits follow the graph: an input
quantizer or a QActivation sets them; layers that only move data (Flatten,
pooling, Add, ...) pass the widest input on; anything else produces float
(32 bits) in Keras. The same MACs are also costed at FP32 (32 × 32) and at
hls4ml's default ``ap_fixed<16,6>`` (16 × 16).

**EBOPs** (effective bit operations) follow HGQ2 0.2's formula (Sun et al.,
"Gradient-based Automatic Mixed Precision Quantization for Neural Networks
On-Chip", 2024), each weight at the bits its value needs::

    EBOPs = sum over multiplies  b_in' * b_w'   +   sum over outputs  b_bias'

where ``b_in'`` is the bit width of the input's quantizer without its sign bit
(``quantized_relu(6)`` → 6, a signed 16-bit input → 15; float counts 32), and
``b_w'``, ``b_bias'`` are, per weight and bias, the magnitude bits of the
narrowest fixed-point format that holds its quantized value (:func:`value_bits`):
at most the quantizer's (``quantized_bits(6, 0)`` → 5), fewer for a value that
needs fewer (0.5 one bit, 0.75 two), none for a zero (a pruned multiply is not
built). HGQ2 learns a width per weight and counts those declared widths; a
QKeras quantizer declares one width per layer. The count here is HGQ2's at the
narrowest per-weight widths that hold the same values, so it is at most HGQ2's
count of the same weights (``benchmarks/hgq2_route.py`` gives both for HGQ2's
models: its own count is 7-83 % higher there), and equal where every value uses
its full width. It is also a proxy of what constant multipliers cost where the
weights are constants of the logic (hls4ml's Latency at reuse factor 1, da4ml):
a multiply by a power of two is a shift. Check: the seed's 6-bit jet tagger with
a signed 16-bit input and every weight and bias at a full-width value (31/32)
gives 1024·15·5 + 2048·6·5 + 1024·6·5 + 160·6·5 + 133·5 = 174,425, HGQ2's count
of the same network at those widths.

**Multiplies** are those left after pruning (non-zero quantized weights × the
times each is used). **DSPs** (hls4ml's Latency strategy, reuse factor 1): one
per multiply whose weight and input are both at least :data:`DSP_MIN_BITS`
wide (sign included); narrower products Vivado maps to LUTs. The threshold is
hls4ml's own DSP estimate (``VivadoDSPEstimator`` in
``hls4ml/optimization/dsp_aware_pruning/objectives/vivado_objectives.py``: "Vivado
doesn't use DSP when precision < 9"), applied to both operands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from .graph import graph_of, leaves, map_leaves, run
from .quantized import quantized_values
from .snapshot import Snapshot

__all__ = ["DSP_MIN_BITS", "LayerCost", "bops", "magnitude_bits", "model_cost", "quantizer_bits", "value_bits"]

FLOAT_BITS = 32
DSP_MIN_BITS = 9  # hls4ml's VivadoDSPEstimator: no DSP below 9 bits
AP_FIXED_DEFAULT_BITS = 16
_DATA_MOVERS = (
    "Flatten", "Reshape", "Dropout", "MaxPooling1D", "MaxPooling2D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "Permute", "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D",
    "UpSampling1D", "UpSampling2D", "Concatenate", "SpatialDropout1D", "SpatialDropout2D",
    "InputLayer", "Identity", "RepeatVector",
)  # fmt: skip


@dataclass(frozen=True)
class LayerCost:
    """The cost of one layer: MACs, the weight and input widths it was costed at, BOPs (at its precisions, at FP32
    and at ``ap_fixed<16,6>``), EBOPs (HGQ2's formula, by value), multiplies left after pruning and the DSP estimate; the
    formulas and their sources are in the module docstring."""

    name: str
    macs: int
    weight_bits: int
    input_bits: int
    bops: float
    bops_fp32: float
    bops_ap_fixed: float
    ebops: float = 0.0  # HGQ2's formula, each weight at its value's bits: see the module docstring
    multiplies: int = 0  # multiplies left after pruning (non-zero quantized weights × uses)
    dsp: int = 0  # estimated DSPs, hls4ml Latency strategy, reuse factor 1


def magnitude_bits(quantizer: Any) -> int:
    """Bits of a quantizer's values without the sign bit, as HGQ2 counts a declared width (32 for float):
    the most one of its values costs in EBOPs (:func:`value_bits`)."""
    bits = quantizer_bits(quantizer)
    if bits == FLOAT_BITS and (quantizer is None or isinstance(quantizer, str)):
        return bits
    name = type(quantizer).__name__
    if "binary" in name or "ternary" in name:
        return 1
    if "relu" in name or "sigmoid" in name:
        return bits
    signed = getattr(quantizer, "keep_negative", True)
    return max(bits - int(bool(signed)), 0)


def quantizer_bits(quantizer: Any) -> int:
    """Bits of the values a QKeras quantizer produces (32 when there is none)."""
    if quantizer is None or isinstance(quantizer, str):
        return FLOAT_BITS
    name = type(quantizer).__name__
    if "binary" in name:
        return 1
    if "ternary" in name:
        return 2
    bits = getattr(quantizer, "bits", None)
    return int(bits) if bits is not None else FLOAT_BITS


def bops(macs: int, fan_in: int, weight_bits: int, input_bits: int) -> float:
    """BOPs of ``macs`` multiply-accumulates of ``b_w``-bit weights on ``b_a``-bit inputs with fan-in ``n``:
    ``macs * (b_w * b_a + b_w + b_a + log2(n))`` (Baskin et al. 2018; see the module docstring)."""
    if macs == 0:
        return 0.0
    return float(macs) * (weight_bits * input_bits + weight_bits + input_bits + math.log2(max(fan_in, 1)))


def _weight_quantizer(layer: Any, role: str) -> Any:
    return getattr(layer, f"{role}_quantizer_internal", None)


def _macs(layer: Any, in_shape: tuple, out_shape: tuple) -> list[tuple[int, int, str]]:
    """(macs, fan_in, weight role) for each multiply stage of ``layer``."""
    kind = type(layer).__name__.removeprefix("Q")
    out_elems = int(np.prod([d for d in out_shape[1:] if d is not None]))
    if kind == "Dense":
        return [(out_elems * int(in_shape[-1]), int(in_shape[-1]), "kernel")]
    if kind in ("Conv1D", "Conv2D", "Conv3D"):
        fan_in = int(np.prod(layer.weights[0].shape[:-1]))
        return [(out_elems * fan_in, fan_in, "kernel")]
    if kind == "DepthwiseConv2D":
        fan_in = int(np.prod(layer.weights[0].shape[:-2]))
        return [(out_elems * fan_in, fan_in, "depthwise")]
    if kind in ("SeparableConv1D", "SeparableConv2D"):
        dk = layer.weights[0].shape
        fan_dw, mid = int(np.prod(dk[:-2])), int(dk[-2] * dk[-1])
        spatial = out_elems // int(out_shape[-1])
        return [(spatial * mid * fan_dw, fan_dw, "depthwise"), (out_elems * mid, mid, "pointwise")]
    if kind == "Conv2DTranspose":
        k = layer.weights[0].shape  # (kh, kw, out, in)
        in_elems = int(np.prod([d for d in in_shape[1:] if d is not None]))
        fan_in = int(k[0] * k[1] * k[3])
        return [(in_elems * int(k[0] * k[1] * k[2]), fan_in, "kernel")]
    if kind == "BatchNormalization":
        return [(out_elems, 1, "gamma")]
    return []


class _Val:
    """A symbolic tensor, the bit width of its values and that width without the sign bit."""

    def __init__(self, spec: Any, bits: int, mbits: int | None = None) -> None:
        self.spec, self.bits = spec, bits
        self.mbits = bits if mbits is None else mbits


_WEIGHT_ATTR = {"kernel": "kernel", "depthwise": "depthwise_kernel", "pointwise": "pointwise_kernel", "gamma": "gamma"}


_ROLES = {
    "Dense": ("kernel",), "Conv1D": ("kernel",), "Conv2D": ("kernel",), "Conv3D": ("kernel",),
    "Conv2DTranspose": ("kernel",), "DepthwiseConv2D": ("depthwise",),
    "SeparableConv1D": ("depthwise", "pointwise"), "SeparableConv2D": ("depthwise", "pointwise"),
    "BatchNormalization": ("gamma",),
}  # fmt: skip  # the weights :func:`_macs`'s stages multiply by, per layer family


def _quantize_weights(model: Any, snapshot: Snapshot | None) -> dict[tuple[int, str], np.ndarray]:
    """``{(id(layer), role): quantized values}`` of every weight the cost model reads, computed together."""
    wanted = []
    for layer in model._flatten_layers(include_self=False):
        roles = _ROLES.get(type(layer).__name__.removeprefix("Q"), ())
        for role in roles + (("bias",) if roles and getattr(layer, "use_bias", False) else ()):
            var = getattr(layer, "bias" if role == "bias" else _WEIGHT_ATTR[role], None)
            if var is not None:
                value = snapshot.value(var) if snapshot is not None else var
                wanted.append(((id(layer), role), value, _weight_quantizer(layer, role)))
    return quantized_values(wanted)


def _quantized(layer: Any, role: str, attr: str, values: dict[tuple[int, str], np.ndarray]) -> np.ndarray | None:
    """The values a weight takes after its quantizer (None when the layer has no such weight)."""
    if (id(layer), role) in values:
        return values[id(layer), role]
    var = getattr(layer, attr, None)
    if var is None:
        return None
    return quantized_values([(role, var, _weight_quantizer(layer, role))])[role]


def _effective(layer: Any, stage: tuple[int, int, str], in_val: _Val, out_elems: int,
               with_bias: bool, values: dict[tuple[int, str], np.ndarray]) -> tuple[float, int, int]:
    """(EBOPs, multiplies, DSPs) of one multiply stage, from its quantized weights (``values``: precomputed ones)."""
    n_macs, _, role = stage
    w = _quantized(layer, role, _WEIGHT_ATTR[role], values)
    quantizer = _weight_quantizer(layer, role)
    if w is None or w.size == 0:
        return 0.0, 0, 0
    uses = n_macs // w.size  # each weight multiplies this many inputs (output positions of a conv)
    multiplies = uses * int(np.count_nonzero(w))
    ebops = float(uses) * in_val.mbits * _bits_sum(w, quantizer)
    dsp = multiplies if min(quantizer_bits(quantizer), in_val.bits) >= DSP_MIN_BITS else 0
    bias = _quantized(layer, "bias", "bias", values) if with_bias and getattr(layer, "use_bias", False) else None
    if bias is not None and bias.size:
        per_channel = out_elems // bias.size  # each bias is added once per output position
        ebops += float(per_channel) * _bits_sum(bias, _weight_quantizer(layer, "bias"))
    return ebops, multiplies, dsp


def _bits_sum(values: np.ndarray, quantizer: Any) -> float:
    """The magnitude bits of ``values`` (a quantizer's outputs) summed: each at most the quantizer's, fewer where
    the value needs fewer (:func:`value_bits`); a float weight (no quantizer) costs 32 bits."""
    if quantizer is None or isinstance(quantizer, str):
        return float(np.count_nonzero(values)) * FLOAT_BITS
    return float(value_bits(values, magnitude_bits(quantizer)).sum())


def value_bits(values: Any, cap: float) -> np.ndarray:
    """Per value, the magnitude bits (sign excluded) of the narrowest fixed-point format that holds it exactly,
    at most ``cap`` (the declared width's); 0 for a zero.

    A value ``v = ±m · 2**e`` with ``m`` odd needs ``bit_length(m)`` bits: 0.25 one, 0.75 two, 11/16 four.
    That is the width HGQ2 would count for a weight whose own width is the narrowest holding it (Sun et al.,
    arXiv:2405.00645, per-weight widths; its learned widths are at least this), and a proxy of what a
    constant multiplier costs where the weights are constants of the logic (hls4ml's Latency at reuse
    factor 1, da4ml): a multiply by 0.25 is a shift. A value that is not a float64 dyadic fraction of at
    most ``cap`` bits gets ``cap`` (a float scale such as ``alpha='auto'``: up to 53 bits when ``cap`` is
    infinite); NaN and ±inf get ``cap``. Shape: that of ``values``; float64.
    """
    v = np.abs(np.atleast_1d(np.asarray(values, dtype=np.float64)))
    finite = np.isfinite(v)
    mantissa, _ = np.frexp(np.where(finite, v, 0.0))  # v = mantissa * 2**exponent, mantissa in [0.5, 1)
    m = (mantissa * 2.0**53).astype(np.uint64)  # 53 significant bits, exactly
    lowest = m & (~m + np.uint64(1))  # the lowest set bit (0 for a zero)
    with np.errstate(divide="ignore"):
        bits = 53.0 - np.log2(lowest.astype(np.float64))
    bits = np.where(v == 0, 0.0, np.minimum(bits, float(cap)))
    return np.where(finite, bits, float(cap)).reshape(np.shape(values))


def _spec(value: _Val) -> Any:
    return value.spec


def _known_output(layer: Any, ins: list[_Val]) -> Any:
    """The output spec Keras recorded when ``layer`` was called once, on inputs shaped as ``ins`` (None otherwise:
    then it is computed)."""
    nodes = getattr(layer, "_inbound_nodes", ())
    if len(nodes) != 1 or len(nodes[0].outputs) != 1:
        return None
    recorded = nodes[0].input_tensors
    same = len(recorded) == len(ins) and all(
        tuple(t.shape) == tuple(v.spec.shape) and t.dtype == v.spec.dtype for t, v in zip(recorded, ins))
    return nodes[0].outputs[0] if same else None


def _scope_cost(model: Any, inputs: list[_Val], prefix: str, out: list[LayerCost],
                values: dict[tuple[int, str], np.ndarray]) -> Any:
    graph = graph_of(model)

    def call(c: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        layer = model.get_layer(c.layer)
        ins = leaves(args, _Val)
        in_bits = max((v.bits for v in ins), default=FLOAT_BITS)
        if hasattr(layer, "layers") and hasattr(layer, "get_layer"):  # nested model
            return _scope_cost(layer, ins, f"{prefix}{layer.name}/", out, values)
        spec = _known_output(layer, ins)
        if spec is None:
            spec = layer.compute_output_spec(*map_leaves(args, _Val, _spec), **map_leaves(kwargs, _Val, _spec))
        kind = type(layer).__name__
        in_mbits = max((v.mbits for v in ins), default=FLOAT_BITS)
        if kind == "QActivation":
            result_bits, result_mbits = quantizer_bits(layer.activation), magnitude_bits(layer.activation)
        elif kind in _DATA_MOVERS or kind.startswith(("AveragePooling", "GlobalAveragePooling", "Add")):
            result_bits, result_mbits = in_bits, in_mbits
        else:
            result_bits = result_mbits = FLOAT_BITS
        stages = _macs(layer, tuple(ins[0].spec.shape), tuple(spec.shape)) if ins else []
        if stages:
            total = fp32 = ap = ebops = 0.0
            macs = multiplies = dsp = 0
            weight_bits = FLOAT_BITS
            out_elems = int(np.prod([d for d in spec.shape[1:] if d is not None]))
            in_val = _Val(None, in_bits, in_mbits)
            for i, (n_macs, fan_in, role) in enumerate(stages):
                weight_bits = quantizer_bits(_weight_quantizer(layer, role))
                total += bops(n_macs, fan_in, weight_bits, in_bits)
                fp32 += bops(n_macs, fan_in, FLOAT_BITS, FLOAT_BITS)
                ap += bops(n_macs, fan_in, AP_FIXED_DEFAULT_BITS, AP_FIXED_DEFAULT_BITS)
                macs += n_macs
                stage_in = in_val if i == 0 else _Val(None, FLOAT_BITS)  # a separable conv's middle is float
                e, m, d = _effective(layer, (n_macs, fan_in, role), stage_in, out_elems, i == len(stages) - 1, values)
                ebops, multiplies, dsp = ebops + e, multiplies + m, dsp + d
            out.append(LayerCost(prefix + layer.name, macs, weight_bits, in_bits, total, fp32, ap, ebops, multiplies, dsp))
        results = spec if isinstance(spec, (list, tuple)) else [spec]
        wrapped = [_Val(s, result_bits, result_mbits) for s in results]
        return wrapped if isinstance(spec, (list, tuple)) else wrapped[0]

    return run(graph, inputs, call)


def model_cost(model: Any, input_bits: int = FLOAT_BITS, *, snapshot: Snapshot | None = None) -> dict[str, LayerCost]:
    """Per-layer cost of ``model`` (nested layers as ``outer/inner``), keyed by name: BOPs, EBOPs, multiplies, DSPs.

    ``input_bits``: width of the model's inputs when no input quantizer says it (32: float). ``snapshot``: the
    one :func:`~qconvert.model.rewrite.apply_plan` filled while making ``model`` (its weights are then not read
    back); only while ``model`` has not changed since.
    """
    graph = graph_of(model)
    inputs = [
        _Val(keras.KerasTensor((None, *shape), dtype=dtype), input_bits)
        for shape, dtype in zip(graph.input_shapes, graph.input_dtypes)
    ]
    out: list[LayerCost] = []
    _scope_cost(model, inputs, "", out, _quantize_weights(model, snapshot))
    merged: dict[str, LayerCost] = {}
    for c in out:  # a shared layer costs once per call
        if c.name in merged:
            m = merged[c.name]
            c = LayerCost(c.name, m.macs + c.macs, c.weight_bits, max(m.input_bits, c.input_bits),
                          m.bops + c.bops, m.bops_fp32 + c.bops_fp32, m.bops_ap_fixed + c.bops_ap_fixed,
                          m.ebops + c.ebops, m.multiplies + c.multiplies, m.dsp + c.dsp)
        merged[c.name] = c
    return merged
