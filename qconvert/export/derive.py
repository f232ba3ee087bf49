"""The hls4ml configuration qconvert derives from a parsed model: one precision per layer and tensor.

Works on the layer dictionaries hls4ml's Keras-3 parser returns (with qconvert's handlers
registered), in their order (producers first), carrying a :class:`FixedType` per layer output.
No hls4ml import: weight types come from the quantizer objects the handlers attach
(``.qtype`` for qconvert's, ``.hls_type`` for hls4ml's own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .precision import DEFAULT_INPUT, FixedType, accumulator, activation_type, data_type, parse_hls, union, widen

__all__ = ["RECURRENT_TABLE_SIZE", "SOFTMAX_TABLE_BUDGET", "Derived", "LayerPrecision", "SoftmaxPlan", "derive"]

# Softmax tables: 18-bit words (the seed's types); at most 4096 entries each (72 Kb: two BRAM36, or
# LUT ROM when io_parallel replicates them). Pin ``table_size`` in the user config to trade agreement for area.
SOFTMAX_TABLE_BUDGET = 4096
FLOAT32_SIGNIFICAND = 24  # Keras computes in float32: a wider exact sum may be rounded on the Keras side
# Recurrent cells (LSTM, GRU): hls4ml's sigmoid and tanh tables span [-8, 8); its default 1,024 entries (step
# 1/64) left 2.5 % of a 6-bit LSTM tagger's argmaxes different from Keras's exact functions, 8,192 (step 1/512)
# 0.5 % (200 jets). Their values lie in [-1, 1]: hls4ml's default table type ap_fixed<18,8> keeps 10 fraction
# bits of them, ap_fixed<18,2> (rounded) 16 at the same width: on 600 sequences of 6-bit taggers, argmax
# agreement GRU 99.00 → 99.67 %, LSTM 99.67 → 99.83 %. Pin ``table_size``/``table_t`` to trade agreement for area.
RECURRENT_TABLE_SIZE = 8192
RECURRENT_TABLE_T = FixedType(18, 2, True, "AP_RND_CONV")
EXP_TABLE_T = FixedType(18, 8, True)  # the seed's exp_table_t ap_fixed<18,8>
INV_TABLE_T = FixedType(18, 4, True)  # the seed's inv_table_t ap_fixed<18,4>

_PASS_THROUGH = {
    "Reshape", "Flatten", "MaxPooling1D", "MaxPooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "Transpose", "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D",
}  # fmt: skip


@dataclass(frozen=True)
class LayerPrecision:
    """What hls4ml implements for one layer (types as hls4ml spells them; bits for the cost model)."""

    name: str
    class_name: str
    input: str | None
    weight: str | None
    bias: str | None
    accum: str | None
    result: str
    input_bits: int | None
    weight_bits: int | None
    accum_bits: int | None
    exact: bool = True  # the type holds what Keras computes (False: a table, a float weight, ...)
    note: str = ""


@dataclass(frozen=True)
class SoftmaxPlan:
    """A final softmax's lookup tables: ``layer`` and the ``logits_layer`` feeding it, ``table_size`` entries per
    table, ``step`` (the resolution of ``x_max - x`` at the exp table's address, in logit units) and the table types
    (``exp_table_t``, ``inv_table_t``, ``inp_norm_t``, ...) as hls4ml spells them."""

    layer: str
    logits_layer: str
    table_size: int
    step: float  # resolution of x_max - x at the exp table's address
    types: dict[str, str]


@dataclass
class Derived:
    """What :func:`derive` returns: hls4ml's HLSConfig (``config``), one :class:`LayerPrecision` per parsed layer
    in order, the softmax plan (None without a final softmax), where the input type came from, and notes for the report."""

    config: dict[str, Any]  # hls4ml HLSConfig
    precisions: list[LayerPrecision]
    softmax: SoftmaxPlan | None
    input_source: str
    notes: list[str] = field(default_factory=list)


def _from_hls4ml(q: Any) -> FixedType | None:
    if q is None:
        return None
    if hasattr(q, "qtype"):
        return q.qtype
    t = q.hls_type
    kind = type(t).__name__
    if kind == "XnorPrecisionType":
        return FixedType(1, 1, True, kind="xnor")
    if kind == "ExponentPrecisionType":
        return FixedType(t.width, t.width, True, kind="exponent")
    return FixedType(t.width, getattr(t, "integer", t.width), bool(t.signed))


def _float_weights(data: Any) -> FixedType:
    arr = np.asarray(data if data is not None else 0.0, dtype="float64")
    return data_type(float(np.max(np.abs(arr))) if arr.size else 0.0, 16)


def _bits(t: FixedType | None) -> int | None:
    return None if t is None else t.width


def _pads_with_minimum(d: dict[str, Any]) -> bool:
    """hls4ml pads max pooling with the bit pattern 1000…: the minimum of a signed type, but half the
    range of an unsigned one (Keras ignores padded cells), so a padded max pool needs a signed input."""
    pads = (int(d.get(k, 0) or 0) for k in ("pad_top", "pad_bottom", "pad_left", "pad_right"))
    return d["class_name"].startswith("MaxPooling") and any(pads) and bool(d.get("inputs"))


def derive(layers: list[dict[str, Any]], *, reuse_factor: int = 1, input_precision: str | None = None,
           x: Any = None, table_sizes: dict[str, int] | None = None) -> Derived:
    """Precisions for every layer of ``layers`` (hls4ml's parsed layer list, producers first).

    ``input_precision``: the input type (``ap_fixed<W,I>``), else the linear fixed-point input quantizer right after
    the input, else the range of ``x`` (16 bits), else hls4ml's default ``ap_fixed<16,6>``. ``table_sizes``: softmax table entries pinned per layer. Raises :class:`ValueError`
    for a pinned table size that is not a power of two or an input precision that is not a fixed-point type.
    """
    types: dict[str, FixedType] = {}
    names: dict[str, dict[str, Any]] = {}
    precisions: list[LayerPrecision] = []
    notes: list[str] = []
    softmax: SoftmaxPlan | None = None
    layer_cfg: dict[str, Any] = {}
    input_source = ""
    consumers: dict[str, list[dict[str, Any]]] = {}
    for d in layers:
        for i in d.get("inputs", []):
            consumers.setdefault(i, []).append(d)
    signed_for_padding = {d["inputs"][0] for d in layers if _pads_with_minimum(d)}

    for d in layers:
        name, cls = d["name"], d["class_name"]
        names[name] = d
        ins = [types[i] for i in d.get("inputs", []) if i in types]
        in_t = ins[0] if ins else None
        cfg: dict[str, Any] = {"Trace": True, "ReuseFactor": reuse_factor}
        prec: dict[str, str] = {}
        w_t = b_t = acc = None
        exact, note = True, ""

        if cls == "InputLayer":
            follow = [c for c in consumers.get(name, []) if c.get("activation_quantizer")]
            q_t = activation_type(follow[0]["activation_quantizer"]) if len(follow) == 1 else None
            if input_precision is not None:
                out, input_source = parse_hls(input_precision), f"given ({input_precision})"
            elif q_t is not None and q_t.kind == "fixed" and follow[0]["activation"] == "linear":
                out, input_source = q_t, f"input quantizer ({follow[0]['name']})"
            elif x is not None:
                out = data_type(float(np.max(np.abs(np.asarray(x)))))
                input_source = "data range"
            else:
                out, input_source = DEFAULT_INPUT, "default"
            if not input_source.startswith("input quantizer"):
                exact, note = False, "no input quantizer: inputs are rounded to this type"
                notes.append(f"inputs are rounded to {out.hls()} ({input_source}); the verification gives Keras the same rounded inputs")
        elif cls in ("Dense", "Conv1D", "Conv2D", "DepthwiseConv1D", "DepthwiseConv2D", "PointwiseConv1D", "PointwiseConv2D"):
            q = d.get("weight_quantizer") or d.get("depthwise_quantizer")
            w_t = _from_hls4ml(q) or _float_weights(d.get("weight_data"))
            b_t = _from_hls4ml(d.get("bias_quantizer"))
            if b_t is None and d.get("bias_data") is not None:
                b_t = _float_weights(d.get("bias_data"))
            if q is None or (d.get("bias_data") is not None and d.get("bias_quantizer") is None):
                exact, note = False, "float weights rounded to 16 bits"
            if cls == "Dense":
                fan_in = int(d["n_in"])
            elif cls.startswith("Depthwise"):
                fan_in = int(d.get("filt_height", 1)) * int(d["filt_width"])
            else:
                fan_in = int(d.get("filt_height", 1)) * int(d["filt_width"]) * int(d["n_chan"])
            acc = accumulator(in_t or DEFAULT_INPUT, w_t, b_t, fan_in)
            out = acc
            prec = {"weight": w_t.hls(), "accum": acc.hls()}
            if b_t is not None:
                prec["bias"] = b_t.hls()
        elif cls in ("SeparableConv1D", "SeparableConv2D"):
            dw_t = _from_hls4ml(d.get("depthwise_quantizer")) or _float_weights(d.get("depthwise_data"))
            pw_t = _from_hls4ml(d.get("pointwise_quantizer")) or _float_weights(d.get("pointwise_data"))
            b_t = _from_hls4ml(d.get("bias_quantizer"))
            if b_t is None and d.get("bias_data") is not None:
                b_t = _float_weights(d.get("bias_data"))
            k = int(d.get("filt_height", 1)) * int(d["filt_width"])
            dw_acc = accumulator(in_t or DEFAULT_INPUT, dw_t, None, k)
            n_mid = int(d["n_chan"]) * int(d.get("depth_multiplier", 1))
            acc = accumulator(dw_acc, pw_t, b_t, n_mid)
            out, w_t = acc, pw_t
            prec = {"depthwise": dw_t.hls(), "pointwise": pw_t.hls(), "depthwise_accum": dw_acc.hls(),
                    "depthwise_result": dw_acc.hls(), "pointwise_accum": acc.hls()}
            if b_t is not None:
                prec["bias"] = b_t.hls()
        elif cls == "Softmax":
            size = (table_sizes or {}).get(name)
            if size is not None and (size < 2 or size & (size - 1)):
                raise ValueError(f"layer {name}: softmax table size must be a power of two. Received: {size}")
            softmax, out, sm_cfg = _softmax(d, in_t or DEFAULT_INPUT, size)
            prec = sm_cfg.pop("Precision")
            cfg.update(sm_cfg)
            exact, note = False, "table lookup"
        elif cls in ("Activation", "LeakyReLU", "HardActivation", "TernaryTanh"):
            fn = d.get("activation")
            q = d.get("activation_quantizer")
            q_t = activation_type(q) if q else None
            if d.get("clip_integer") is not None and in_t is not None:  # saturate at -2^i, keep every bit below
                i = int(d["clip_integer"])
                out = FixedType(i + 1 + max(in_t.frac, int(d["clip_frac"])), i + 1, True, None, "AP_SAT")
            elif fn in ("binary_tanh", "ternary_tanh"):
                out = FixedType(2, 2, True)
            elif q_t is not None:
                out = q_t
            elif fn in ("relu", "linear") and in_t is not None:
                out = in_t
            else:
                out = DEFAULT_INPUT
                exact, note = False, f"float {fn}: hls4ml computes it by table at {out.hls()}"
                notes.append(f"layer {name}: float {fn} has no quantizer; hls4ml uses a table at {out.hls()}")
        elif cls in ("SimpleRNN", "LSTM", "GRU"):
            # hls4ml's LSTM cell feeds its state back through the input's dense product: input, state,
            # products and result share one type (the input's, when it is a signed fixed type)
            out = acc = in_t if in_t is not None and in_t.kind == "fixed" and in_t.signed else DEFAULT_INPUT
            prec = {"accum": acc.hls()}
            cfg["table_size"] = RECURRENT_TABLE_SIZE
            cfg["table_t"] = RECURRENT_TABLE_T.hls()
            exact, note = False, (f"recurrent cell: tanh/sigmoid by lookup table ({RECURRENT_TABLE_SIZE:,} entries over "
                                  f"[-8, 8), values at {RECURRENT_TABLE_T.hls()}), gates and state at {acc.hls()}")
        elif cls in _PASS_THROUGH and in_t is not None:
            out = in_t
        elif cls.startswith(("AveragePooling", "GlobalAveragePooling")) and in_t is not None:
            area = int(d.get("pool_height", 1)) * int(d.get("pool_width", 1))
            extra = math.ceil(math.log2(max(area, 1)))
            acc = widen(in_t, extra_int=extra, extra_frac=extra)  # the sum, then the division, in accum_t
            out = widen(in_t, extra_frac=extra).with_modes()
            prec = {"accum": acc.hls()}
            if area & (area - 1):
                exact, note = False, f"average over {area} (not a power of two) rounds"
        elif cls == "BatchNormalization" and in_t is not None:
            s_t, b_t = _float_weights(d.get("scale_data")), _float_weights(d.get("bias_data"))
            w_t = FixedType(18, s_t.integer, True, "AP_RND_CONV", "AP_SAT")
            b_t = FixedType(18, b_t.integer, True, "AP_RND_CONV", "AP_SAT")
            out = accumulator(in_t, w_t, b_t, 1)
            prec = {"scale": w_t.hls(), "bias": b_t.hls()}
            exact, note = False, "scale and bias rounded to 18 bits"
            notes.append(f"layer {name}: batch normalization scale/bias are rounded to 18 bits (fold it for exactness)")
        elif cls == "Merge" and d.get("op") in ("add", "subtract", "maximum", "minimum", "average") and ins:
            out = union(ins)  # hls4ml computes the merge in the result type
            if d["op"] in ("add", "subtract"):
                out = widen(out, extra_int=math.ceil(math.log2(len(ins))))
            if d["op"] == "average":
                out = widen(out, extra_frac=math.ceil(math.log2(len(ins))))
        elif cls == "Merge" and d.get("op") == "multiply" and len(ins) == 2:
            out = FixedType(ins[0].width + ins[1].width, ins[0].integer + ins[1].integer, True)
            if out.width > FLOAT32_SIGNIFICAND:
                note = (f"its products need up to {out.width} bits; Keras multiplies in float32 "
                        f"({FLOAT32_SIGNIFICAND}-bit significand) and may round them")
        elif cls == "Concatenate" and ins:
            out = union(ins)
        else:
            out = in_t or DEFAULT_INPUT
            exact, note = False, f"{cls}: no derived precision, result {out.hls()}"
            notes.append(f"layer {name} ({cls}): no derived precision; result {out.hls()}")

        if acc is not None and exact and not note and acc.width > FLOAT32_SIGNIFICAND:
            note = f"its sums need up to {acc.width} bits; Keras adds in float32 ({FLOAT32_SIGNIFICAND}-bit significand) and may round them"
        if name in signed_for_padding and not out.signed and out.kind == "fixed":
            out = FixedType(out.width + 1, out.integer + 1, True, out.rounding, out.saturation)
        types[name] = out
        prec["result"] = out.hls()
        cfg["Precision"] = prec
        layer_cfg[name] = cfg
        precisions.append(LayerPrecision(
            name, cls, in_t.hls() if in_t else None, w_t.hls() if w_t else None, b_t.hls() if b_t else None,
            acc.hls() if acc else None, out.hls(), _bits(in_t), _bits(w_t), _bits(acc), exact, note,
        ))  # fmt: skip

    strategy = "Latency" if reuse_factor == 1 else "Resource"
    model_cfg = {"Precision": {"default": DEFAULT_INPUT.hls()}, "ReuseFactor": reuse_factor, "Strategy": strategy,
                 "BramFactor": 1_000_000_000, "TraceOutput": True}
    return Derived({"Model": model_cfg, "LayerName": layer_cfg}, precisions, softmax, input_source, notes)


def _softmax(d: dict[str, Any], logits: FixedType, table_size: int | None = None) -> tuple[SoftmaxPlan, FixedType, dict[str, Any]]:
    """The stable (max-subtracting) softmax at the seed's table types, the tables as fine as the budget allows.

    * ``inp_norm_t`` (``x_max - x``, the exp table's address) spans ``0 .. 2^I``, ``I`` the smallest
      power of two beyond which ``exp(-d)`` rounds to 0 in ``exp_table_t``; its bits all address the
      table, rounding to nearest and saturating (never wrapping). The table has as many entries as it
      takes to resolve every step of the logits (``2^(I + F_logits)``), at most
      :data:`SOFTMAX_TABLE_BUDGET`: two logits closer than half a step share an address, tie, and
      hls4ml's argmax then takes the lower index — the one thing that limits argmax agreement;
    * ``inv_inp_t`` (the sum of exponentials, between 1 and n) addresses the inverse table;
    * the result is a probability in [0, 1], kept at 18 bits.
    """
    n = int(d.get("n_in", 0) or 0) or 2
    span = max(1, math.ceil(math.log2(EXP_TABLE_T.frac * math.log(2) + 1)))
    if table_size is None:
        table_size = max(64, min(SOFTMAX_TABLE_BUDGET, 2 ** (span + max(logits.frac, 0))))
    addr = int(math.log2(table_size))
    inp_norm = FixedType(addr, span, False, "AP_RND_CONV", "AP_SAT")
    n_int = max(1, math.ceil(math.log2(n + 1)))
    inv_inp = FixedType(addr, n_int, False, "AP_RND_CONV", "AP_SAT")
    accum = FixedType(EXP_TABLE_T.width + n_int, EXP_TABLE_T.integer + n_int, True)
    result = FixedType(18, 1, False, "AP_RND_CONV", "AP_SAT")
    types = {"exp_table_t": EXP_TABLE_T.hls(), "inv_table_t": INV_TABLE_T.hls(), "inp_norm_t": inp_norm.hls(),
             "inv_inp_t": inv_inp.hls()}
    cfg: dict[str, Any] = {"Implementation": "stable", "table_size": table_size, **types,
                           "Precision": {"accum": accum.hls()}}
    plan = SoftmaxPlan(d["name"], d["inputs"][0], table_size, 2.0**span / table_size, types)
    return plan, result, cfg
