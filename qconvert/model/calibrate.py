"""Calibration: resolve ``integer: auto`` from weights and data, and measure what each quantizer clips.

A :class:`~qconvert.model.plan.Plan` may hold quantizers whose integer bits are
``auto``. :func:`calibrate` reads the FP32 model and returns the same plan with
every ``auto`` replaced by a number, and a :class:`Calibration` that records
each resolved value, the statistic behind it and, for every fixed-point
quantizer it can see, the fraction of values outside its range:

* **Weights** (kernel, bias, depthwise, pointwise, BN gamma/beta/mean/variance):
  the smallest integer part that holds ``max |w|`` — the weights the Q-layer
  will carry, so BatchNormalization folded into a layer is folded first.
* **Activations and the input quantizer**: the smallest integer part that holds
  the :data:`PERCENTILE`-th percentile of ``|x|`` over the calibration rows, where
  ``x`` is what the FP32 model computes at that point (the output of the
  activation function; for the input quantizer, the inputs). A percentile, not
  the maximum: the integer part moves in powers of two, and each extra integer
  bit halves the resolution of *every* value at a fixed bit width, so one outlier
  in a thousand is allowed to saturate rather than cost all others a bit (the
  same reasoning as percentile calibration in TensorRT and in Wu et al., "Integer
  Quantization for Deep Learning Inference", 2020, §4.2).
* A ``quantized_relu`` with a ``relu_upper_bound`` (``ReLU(max_value=6)``) resolves
  from the bound, without data.

Integer bits are counted as QKeras counts them: ``quantized_bits(b, i)`` (signed)
holds ``[-2^i, 2^i - lsb]`` and ``quantized_relu(b, i)`` holds ``[0, 2^i - lsb]``, with
``lsb = 2^(i - m)`` and ``m`` the bits below the sign; a value "fits" when rounding
does not clip it (at most ``2^i - lsb/2``). ``i`` is kept within ``[0, m]``. Only
``quantized_bits`` and ``quantized_relu`` take ``auto``; with ``alpha='auto'`` /
``'auto_po2'`` the scale is learned and nothing is counted as clipped. Clipping is
counted over all values and per channel (the last axis: a feature, unit or
filter), so one input feature with its own range is not hidden by the others.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError
from ..quantizers import QuantizerSpec
from ..rules import BN_ROLES
from .fold import folded_weights
from .plan import LayerPlan, Plan
from .ranges import clipped_fraction, has_fixed_range, integer_bits_for
from .rewriters.activation import ACTIVATION_LAYERS
from .rewriters.recurrent import RECURRENT
from .rewriters.weighted import WEIGHTED

if TYPE_CHECKING:
    from .snapshot import Snapshot

__all__ = [
    "CHANNEL_WARN",
    "DEFAULT_ROWS",
    "PERCENTILE",
    "SATURATION_WARN",
    "Calibration",
    "CalibrationEntry",
    "calibrate",
    "has_auto",
    "integer_bits_for",
    "uncalibrated",
]

#: Percentile of |x| that sets an activation's integer bits (see the module docstring).
PERCENTILE = 99.9
#: Calibration rows taken from the training split unless ``--calibration-rows`` says otherwise.
DEFAULT_ROWS = 2048
#: A quantizer that clips more than this fraction of its values gets a saturation warning...
SATURATION_WARN = 1e-3
#: ... and so does one that clips more than this fraction of one channel (an input feature with its own range).
CHANNEL_WARN = 1e-2


@dataclass(frozen=True)
class CalibrationEntry:
    """One quantizer: what it is (after calibration), what it sees, what it clips.

    ``statistic`` names ``value`` (``max|w|``, ``p99.9|x|``, ``relu_upper_bound``);
    ``clipped`` is the fraction of values beyond the quantizer's range (None when
    unknown); ``needs`` the integer bits that would hold ``value``.
    """

    layer: str
    role: str
    quantizer: str
    integer: int | None
    resolved: bool  # integer came from ``auto``
    source: str  # weights | data | bound
    statistic: str
    value: float | None
    clipped: float | None
    needs: int | None
    worst_channel: int | None = None  # the channel (last axis: feature, unit, filter) that clips most
    worst_clipped: float | None = None

    @property
    def saturates(self) -> bool:
        """Clips more than :data:`SATURATION_WARN` of the values seen, or (no values: a bound) cannot hold its bound."""
        if self.clipped is not None:
            return self.clipped > SATURATION_WARN or (self.worst_clipped or 0.0) > CHANNEL_WARN
        return self.needs is not None and self.integer is not None and self.needs > self.integer

    def warning(self) -> str | None:
        """One line naming the layer, the loss and the fix; None when the quantizer holds its values."""
        if not self.saturates:
            return None
        fix = f"use integer: auto, or integer {self.needs}"
        if self.clipped is None:
            return (f"{self.layer} ({self.role}): {self.quantizer} holds [0, {2.0 ** self.integer:g}) but the layer "
                    f"produces up to {self.value:g} ({self.statistic}): every value above {2.0 ** self.integer:g} "
                    f"saturates; {fix}")
        channel = ""
        if self.worst_clipped is not None and self.worst_clipped > CHANNEL_WARN:
            channel = f", {100 * self.worst_clipped:.1f}% of channel {self.worst_channel} (last axis)"
        return (f"{self.layer} ({self.role}): {self.quantizer} clips {100 * self.clipped:.2f}% of its values"
                f"{channel} ({self.statistic} = {self.value:.4g}); {fix}")


@dataclass(frozen=True)
class Calibration:
    """What calibration saw: ``rows`` (0: no data; weights and bounds only), the ``percentile`` of ``|x|``
    that sets activations, and one :class:`CalibrationEntry` per quantizer with a fixed range."""

    rows: int  # calibration rows seen (0: no data; weights and bounds only)
    percentile: float
    entries: tuple[CalibrationEntry, ...]

    def warnings(self) -> list[str]:
        """One line per saturating quantizer (see :meth:`CalibrationEntry.warning`)."""
        return [w for w in (e.warning() for e in self.entries) if w]

    @property
    def resolved(self) -> list[CalibrationEntry]:
        """The entries whose integer bits came from ``auto``."""
        return [e for e in self.entries if e.resolved]

    def to_dict(self) -> dict[str, Any]:
        """The report's ``calibration`` section (JSON-ready)."""
        return {"rows": self.rows, "percentile": self.percentile, "resolved": len(self.resolved),
                "entries": [asdict(e) | {"saturates": e.saturates} for e in self.entries], "warnings": self.warnings()}


# --- the stage ------------------------------------------------------------------------------------------
class _Calibrator:
    def __init__(self, model: Any, plan: Plan, x: np.ndarray | None, percentile: float, require: bool,
                 snapshot: Snapshot) -> None:
        self.model, self.plan, self.x, self.percentile, self.require = model, plan, x, percentile, require
        self.snapshot = snapshot
        self.entries: list[CalibrationEntry] = []
        self.data_stat = f"p{percentile:g}|x|"

    def entry(self, layer: str, role: str, spec: QuantizerSpec, values: np.ndarray | None, source: str,
              statistic: str, value: float | None) -> QuantizerSpec:
        resolved = spec.is_auto
        if resolved:
            if value is None and not self.require:
                return spec  # left as auto: `rules show` without data
            if value is None:
                raise DataError(f"layer {layer!r}: {spec} needs calibration data to resolve its integer bits "
                                f"(give --data, or a number instead of auto)")
            spec = spec.with_params(integer=integer_bits_for(value, spec))
        if not has_fixed_range(spec) or value is None:
            return spec
        clipped = None if values is None else clipped_fraction(values, spec)
        fraction, channel, worst = clipped if clipped is not None else (None, None, None)
        self.entries.append(CalibrationEntry(layer, role, str(spec), int(spec.get("integer", 0)), resolved, source,
                                             statistic, float(value), fraction, integer_bits_for(value, spec),
                                             channel if values is not None and values.shape[-1] > 1 else None,
                                             worst if values is not None and values.shape[-1] > 1 else None))
        return spec

    def weights(self, item: LayerPlan) -> LayerPlan:
        layer = self._layer(item.path)
        if layer is None or not item.quantizers:
            return item
        arrays = self._role_weights(item, layer)
        specs = []
        for role, spec in item.quantizers:
            w = arrays.get(role)
            if w is None or spec.is_float:
                specs.append((role, spec))
                continue
            flat = np.asarray(w, dtype=np.float64).reshape(-1, 1)
            specs.append((role, self.entry(item.qualified_name, role, spec, flat, "weights", "max|w|",
                                           float(np.abs(flat).max()) if flat.size else 0.0)))
        return replace(item, quantizers=tuple(specs))

    def _role_weights(self, item: LayerPlan, layer: Any) -> dict[str, np.ndarray]:
        weights, config = self.snapshot.weights(layer), self.snapshot.config(layer)
        if item.class_name == "BatchNormalization":
            present = [r for r, flag in zip(BN_ROLES, (config.get("scale", True), config.get("center", True), True, True)) if flag]
            return dict(zip(present, weights))
        use_bias = config.get("use_bias", True)
        before, after = (None if n is None else self._batchnorm(item.path[:-1] + (n,))
                         for n in (item.input_bn, item.folded_bn))
        weights, use_bias = folded_weights(item.class_name, weights, use_bias, before=before, after=after)
        families = {**WEIGHTED, **RECURRENT}  # roles in the order of the layer's weights (``state`` holds none)
        if item.class_name not in families:
            return {}
        roles = [r for r in families[item.class_name][1] if r != "state" and (r != "bias" or use_bias)]
        return dict(zip(roles, weights))

    def _batchnorm(self, path: tuple[str, ...]) -> tuple[list[np.ndarray], dict[str, Any]]:
        bn = self._layer(path)
        return self.snapshot.weights(bn), self.snapshot.config(bn)

    def _layer(self, path: tuple[str, ...]) -> Any:
        scope = self.model
        for name in path:
            scope = scope.get_layer(name)
        return scope

    def activations(self, layers: list[LayerPlan]) -> tuple[list[LayerPlan], QuantizerSpec | None]:
        """Resolve activation and input quantizers; one pass of the FP32 model over the rows."""
        wanted: list[tuple[int, str]] = []  # (index into layers, "activation" | "split")
        for i, item in enumerate(layers):
            if item.action == "quantize" and item.class_name in ACTIVATION_LAYERS:
                wanted.append((i, "activation"))
            elif item.split is not None and item.split.status == "quantize" and item.split.spec is not None:
                wanted.append((i, "split"))
        values = self._probe([layers[i] for i, _ in wanted])
        out = list(layers)
        for (i, kind), v in zip(wanted, values):
            item = out[i]
            if kind == "activation":
                spec = self._activation(item.qualified_name, item.specs["activation"], v)
                out[i] = replace(item, quantizers=tuple((r, spec if r == "activation" else s) for r, s in item.quantizers))
            else:
                name = "/".join(item.path[:-1] + (item.split.name,))
                out[i] = replace(item, split=replace(item.split, spec=self._activation(name, item.split.spec, v)))
        input_spec = self.plan.input_quantizer
        if input_spec is not None and not input_spec.is_float:
            x = None if self.x is None else _channels(self.x)
            input_spec = self._activation(",".join(self.plan.input_names) + " (input)", input_spec, x, role="input")
        return out, input_spec

    def _activation(self, name: str, spec: QuantizerSpec, values: np.ndarray | None, role: str = "activation") -> QuantizerSpec:
        upper = spec.get("relu_upper_bound") if spec.name == "quantized_relu" else None
        if values is not None:
            value = float(np.percentile(np.abs(values), self.percentile)) if values.size else 0.0
            if upper is not None:
                value = min(value, float(upper))
            return self.entry(name, role, spec, values, "data", self.data_stat, value)
        if upper is not None:
            return self.entry(name, role, spec, None, "bound", "relu_upper_bound", float(upper))
        return self.entry(name, role, spec, None, "data", self.data_stat, None)

    def _probe(self, items: list[LayerPlan]) -> list[np.ndarray | None]:
        """What each item's layer outputs in the FP32 model on the calibration rows, every call of it (a shared
        layer) and inside nested models; ``(values, channels)`` arrays, None without rows."""
        if self.x is None or not items:
            return [None] * len(items)
        by_scope: dict[tuple[str, ...], list[int]] = {}
        for i, item in enumerate(items):
            by_scope.setdefault(item.path[:-1], []).append(i)
        values: list[np.ndarray | None] = [None] * len(items)
        for scope, indices in by_scope.items():
            scope_model = self._layer(scope) if scope else self.model
            layers = [scope_model.get_layer(items[i].path[-1]) for i in indices]
            outs = self._run(scope, [[t for node in layer._inbound_nodes for t in node.outputs] for layer in layers])
            for i, out in zip(indices, outs):
                values[i] = out
        return values

    def _run(self, scope: tuple[str, ...], tensor_groups: list[list[Any]]) -> list[np.ndarray]:
        """Evaluate groups of tensors of the model at ``scope`` on the rows that reach it: one
        ``(values, channels)`` array per group (a group: the outputs of every call of one layer)."""
        import keras

        scope_model = self._layer(scope) if scope else self.model
        flat = [t for group in tensor_groups for t in group]
        probe = keras.Model(scope_model.inputs, flat)
        results: list[list[np.ndarray]] = [[] for _ in flat]
        for call_inputs in self._scope_inputs(scope):
            outs = probe.predict(call_inputs if len(call_inputs) > 1 else call_inputs[0], batch_size=1024, verbose=0)
            for k, out in enumerate(outs if isinstance(outs, (list, tuple)) else [outs]):
                results[k].append(_channels(out))
        grouped, k = [], 0
        for group in tensor_groups:
            grouped.append(np.concatenate([a for r in results[k:k + len(group)] for a in r]))
            k += len(group)
        return grouped

    def _scope_inputs(self, scope: tuple[str, ...]) -> list[list[np.ndarray]]:
        """The input arrays of the model at ``scope``, one list per call of it, computed from the rows."""
        if not scope:
            return [[np.asarray(self.x)]]
        import keras

        parent = scope[:-1]
        parent_model = self._layer(parent) if parent else self.model
        sub = parent_model.get_layer(scope[-1])
        tensors = [node.input_tensors for node in sub._inbound_nodes]
        probe = keras.Model(parent_model.inputs, [t for call in tensors for t in call])
        calls: list[list[np.ndarray]] = []
        for parent_inputs in self._scope_inputs(parent):
            outs = probe.predict(parent_inputs if len(parent_inputs) > 1 else parent_inputs[0], batch_size=1024, verbose=0)
            outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
            for call in tensors:
                calls.append([np.asarray(outs.pop(0)) for _ in call])
        return calls


def _channels(values: Any) -> np.ndarray:
    """``(rows, ..., channels)`` → ``(values, channels)`` float64: statistics per channel (last axis) and overall."""
    a = np.asarray(values, dtype=np.float64)
    return a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a.reshape(-1, 1)


def calibrate(model: Any, plan: Plan, x: np.ndarray | None = None, *, percentile: float = PERCENTILE,
              require: bool = True, snapshot: Snapshot | None = None) -> tuple[Plan, Calibration]:
    """The plan with every ``integer: auto`` resolved, and what each quantizer sees and clips.

    ``model`` is the FP32 model the plan was made for; ``x`` the calibration rows
    (shape ``(rows, *input_shape)``; None: weights and bounded activations only).
    Activations are seen on every call of a shared layer and inside nested models.
    Raises :class:`DataError` for an activation whose ``auto`` needs rows that
    were not given, for rows that do not fit the model, and for a percentile
    outside (0, 100]; with ``require=False`` an activation's ``auto`` without
    rows is left ``auto`` instead (a preview). ``snapshot``: the conversion's
    :class:`~qconvert.model.snapshot.Snapshot` (weights and configs read once); None: a fresh one.
    """
    from .snapshot import Snapshot

    if not 0 < percentile <= 100:
        raise DataError(f"the calibration percentile must be in (0, 100], got {percentile}")
    if x is not None:
        x = _check_rows(model, x)
    calibrator = _Calibrator(model, plan, x, percentile, require, snapshot if snapshot is not None else Snapshot())
    layers = [calibrator.weights(item) if item.action == "quantize" and item.class_name not in ACTIVATION_LAYERS
              else item for item in plan.layers]
    layers, input_spec = calibrator.activations(layers)
    resolved = replace(plan, layers=tuple(layers), input_quantizer=input_spec)
    rows = 0 if x is None else len(x)
    return resolved, Calibration(rows, percentile, tuple(calibrator.entries))


def _check_rows(model: Any, x: Any) -> np.ndarray:
    """``x`` as a float32 array shaped like the model's (single) input, finite; else :class:`DataError`."""
    if len(model.inputs) != 1:
        raise DataError(f"calibration needs a single-input model; {model.name!r} has {len(model.inputs)} inputs")
    try:
        rows = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"calibration rows are not an array of numbers: {exc}") from None
    expected = tuple(model.inputs[0].shape[1:])
    if rows.ndim != len(expected) + 1 or len(rows) == 0 or any(e is not None and e != g for e, g in zip(expected, rows.shape[1:])):
        raise DataError(f"calibration rows have shape {rows.shape}; the model takes (rows, {', '.join(map(str, expected))})")
    if not np.all(np.isfinite(rows)):
        raise DataError("calibration rows hold NaN or infinite values")
    return rows


def uncalibrated(plan: Plan, integer: int = 0) -> Plan:
    """The plan with every ``integer: auto`` set to ``integer`` (the uncalibrated twin PTQ is compared with)."""

    def fix(spec: QuantizerSpec | None) -> QuantizerSpec | None:
        return spec.with_params(integer=integer) if spec is not None and spec.is_auto else spec

    def fix_item(item: LayerPlan) -> LayerPlan:
        split = item.split
        if split is not None:
            split = replace(split, spec=fix(split.spec))
        return replace(item, quantizers=tuple((r, fix(s)) for r, s in item.quantizers), split=split)

    return replace(plan, layers=tuple(fix_item(i) for i in plan.layers), input_quantizer=fix(plan.input_quantizer))


def has_auto(plan: Plan) -> bool:
    """Whether some quantizer of ``plan`` (weights, activations, splits, input) still has ``integer: auto``."""
    specs = [s for item in plan.layers for _, s in item.quantizers]
    specs += [item.split.spec for item in plan.layers if item.split is not None and item.split.spec is not None]
    specs += [plan.input_quantizer] if plan.input_quantizer is not None else []
    return any(s.is_auto for s in specs)

