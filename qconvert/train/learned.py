"""Keras layers with learnable fixed-point widths: the search phase of :mod:`qconvert.train.target`.

:func:`build_search_model` rebuilds a converted QKeras model (QDense, QConv1D,
QConv2D, QActivation with ``quantized_bits`` / ``quantized_relu``, layers that
only move data, float layers without weights) with the layers below, which
quantize exactly as QKeras does (:func:`~qconvert.train.ebops.fixed_point`) but
hold their bit widths and integer bits as trainable variables. Each multiply
layer adds ``beta * EBOPs`` (:func:`~qconvert.train.ebops.layer_ebops`, at the
declared widths) to the loss while training, with ``a'`` taken from the
quantizers that feed it (the widest, as :mod:`qconvert.model.cost` takes it);
:meth:`SearchModel.exact_ebops` counts as :mod:`qconvert.model.cost` does, each
value at its own bits.

A width ``w`` is stored as ``w / scale``: Adam moves a variable by about its
learning rate per step, so ``scale`` sets how fast widths move relative to
weights. Widths stay within ``[min, start]``: the rule file's precisions are
the largest; integer bits within ``[0, bits - sign]`` (no negative integer or
fractional bits: the rule files' limits).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from ..errors import ConversionError
from ..model.cost import value_bits
from ..model.graph import graph_of, leaves, map_leaves, run
from .ebops import FLOAT_MAGNITUDE, fixed_point, layer_ebops, magnitude_bits, relaxed_count, ste_round

__all__ = ["MIN_BITS", "LearnedConv", "LearnedDense", "LearnedQuantizer", "SearchModel", "Width", "build_search_model"]

#: Smallest total widths: a signed value keeps one magnitude bit, an unsigned one one bit.
MIN_BITS = {True: 2, False: 1}
MAX_INTEGER = 16
_MOVERS = ("Flatten", "Reshape", "Dropout", "MaxPooling1D", "MaxPooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
           "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "Permute",
           "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D", "Concatenate",
           "Add", "SpatialDropout1D", "SpatialDropout2D", "Identity", "RepeatVector")  # fmt: skip


@dataclass(frozen=True)
class Width:
    """A rounded fixed-point format: ``quantized_bits(bits, integer)`` (signed) or ``quantized_relu(bits, integer)``."""

    bits: int
    integer: int
    signed: bool

    @property
    def magnitude(self) -> int:
        return self.bits - int(self.signed)

    def spec(self) -> str:
        """The QKeras spelling a rule file takes."""
        if self.signed:
            return f"quantized_bits({self.bits}, {self.integer}, alpha=1)"
        return f"quantized_relu({self.bits}, {self.integer})"


class _Clip(keras.constraints.Constraint):
    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = float(lo), float(hi)

    def __call__(self, w: Any) -> Any:
        return ops.clip(w, self.lo, self.hi)

    def get_config(self) -> dict[str, float]:
        return {"lo": self.lo, "hi": self.hi}


class _Format:
    """Two variables of a layer, bits and integer bits (stored divided by ``scale``), and the sign."""

    def __init__(self, layer: keras.layers.Layer, role: str, start: Width, scale: float) -> None:
        self.signed, self.scale, self.start = start.signed, scale, start
        lo = min(MIN_BITS[start.signed], start.bits)
        self.bits_var = layer.add_weight(name=f"{role}_bits", shape=(), initializer=keras.initializers.Constant(start.bits / scale),
                                         constraint=_Clip(lo / scale, start.bits / scale))
        self.integer_var = layer.add_weight(name=f"{role}_integer", shape=(),
                                            initializer=keras.initializers.Constant(start.integer / scale),
                                            constraint=_Clip(0.0, max(MAX_INTEGER, start.integer) / scale))
        # learning (gate 1) or frozen at the format held in frozen (gate 0): see :meth:`freeze`
        self.gate = layer.add_weight(name=f"{role}_gate", shape=(), initializer="ones", trainable=False)
        self.frozen = layer.add_weight(name=f"{role}_frozen", shape=(2,), initializer="zeros", trainable=False)

    @property
    def bits(self) -> Any:
        return self.gate * self.bits_var * self.scale + (1.0 - self.gate) * self.frozen[0]

    @property
    def integer(self) -> Any:
        return self.gate * self.integer_var * self.scale + (1.0 - self.gate) * self.frozen[1]

    def freeze(self) -> None:
        """Hold the format at its rounded value from now on (no gradient reaches its variables)."""
        w = self.rounded()
        self.frozen.assign(np.array([w.bits, w.integer], dtype="float32"))
        self.gate.assign(0.0)

    def quantize(self, x: Any) -> Any:
        bits = ste_round(self.bits)
        integer = ops.minimum(ste_round(self.integer), bits - float(self.signed))  # no negative fractional bits
        return fixed_point(x, integer, bits - integer - float(self.signed), self.signed)

    def magnitude(self) -> Any:
        """Continuous magnitude bits: what the differentiable cost term takes."""
        return magnitude_bits(self.bits, self.signed)

    def rounded(self) -> Width:
        bits = int(np.round(float(ops.convert_to_numpy(self.bits))))
        integer = int(np.round(float(ops.convert_to_numpy(self.integer))))
        return Width(bits, min(integer, bits - int(self.signed)), self.signed)

    def quantize_exact(self, x: Any) -> np.ndarray:
        """``x`` on the rounded format, in numpy (float32: the same values :func:`fixed_point` gives)."""
        w = self.rounded()
        scale = np.float32(2.0) ** np.float32(w.bits - w.integer - int(w.signed))
        top = np.float32(2.0) ** np.float32(w.integer)
        lo = -top if w.signed else np.float32(0.0)
        x = np.asarray(ops.convert_to_numpy(x), dtype=np.float32)
        return np.round(np.minimum(np.maximum(x, lo), top - 1 / scale) * scale) / scale


class LearnedQuantizer(keras.layers.Layer):
    """A QActivation's ``quantized_relu(B, I)`` or ``quantized_bits(B, I)`` whose ``B`` and ``I`` are learned."""

    def __init__(self, start: Width, scale: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start, self.scale = start, scale

    def build(self, input_shape: Any) -> None:
        self.format = _Format(self, "activation", self.start, self.scale)

    def call(self, x: Any) -> Any:
        return self.format.quantize(x)


class _Inputs:
    """The quantizers feeding a layer (None: a float input), kept out of Keras's layer tracking."""

    def __init__(self, sources: Iterable[LearnedQuantizer | None]) -> None:
        self.sources = tuple(sources)

    def magnitude(self) -> Any:
        """Continuous ``a'``: the widest source (a float source: 32)."""
        parts = [s.format.magnitude() if s is not None else ops.convert_to_tensor(FLOAT_MAGNITUDE) for s in self.sources]
        return parts[0] if len(parts) == 1 else ops.max(ops.stack(parts))

    def exact(self) -> int:
        return max(int(s.format.rounded().magnitude) if s is not None else int(FLOAT_MAGNITUDE) for s in self.sources)


class _LearnedWeights:
    """Kernel and bias quantized with learned formats; ``beta * EBOPs`` added to the loss while training."""

    kernel: Any
    bias: Any
    use_bias: bool

    def setup(self, kernel: Width, bias: Width | None, scale: float, uses: int, inputs: _Inputs) -> None:
        self.start_formats, self.scale, self.uses, self.inputs = (kernel, bias), scale, uses, inputs

    def add_formats(self) -> None:
        kernel, bias = self.start_formats
        self.kernel_format = _Format(self, "kernel", kernel, self.scale)  # type: ignore[arg-type]
        self.bias_format = _Format(self, "bias", bias, self.scale) if self.use_bias and bias is not None else None  # type: ignore[arg-type]
        self.beta = self.add_weight(name="beta", shape=(), initializer="zeros", trainable=False)  # type: ignore[attr-defined]

    def quantized(self, training: Any) -> tuple[Any, Any]:
        k = self.kernel_format.quantize(self.kernel)
        b = self.bias_format.quantize(self.bias) if self.bias_format is not None else None
        if training:
            cost = layer_ebops(self.uses, relaxed_count(self.kernel, k), self.inputs.magnitude(), self.kernel_format.magnitude(),
                               *self._bias_terms(b))
            self.add_loss(self.beta * cost)  # type: ignore[attr-defined]
        return k, b

    def _bias_terms(self, b: Any) -> tuple[Any, Any]:
        if b is None or self.bias_format is None:
            return 0.0, 0.0
        return relaxed_count(self.bias, b), self.bias_format.magnitude()

    def relaxed_ebops(self) -> Any:
        """The differentiable cost term of this layer (what ``beta`` multiplies)."""
        k = self.kernel_format.quantize(self.kernel)
        b = self.bias_format.quantize(self.bias) if self.bias_format is not None else None
        return layer_ebops(self.uses, relaxed_count(self.kernel, k), self.inputs.magnitude(), self.kernel_format.magnitude(),
                           *self._bias_terms(b))

    def exact_quantized(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Kernel and bias on the rounded formats (numpy)."""
        k = self.kernel_format.quantize_exact(self.kernel)
        b = self.bias_format.quantize_exact(self.bias) if self.bias_format is not None else None
        return k, b

    def exact_ebops(self) -> float:
        """EBOPs at the rounded widths, counted as :func:`qconvert.model.cost.model_cost` counts them."""
        k, b = self.exact_quantized()
        kernel_bits = float(value_bits(k, self.kernel_format.rounded().magnitude).sum())
        bias_bits = float(value_bits(b, self.bias_format.rounded().magnitude).sum()) if b is not None and self.bias_format else 0.0
        return float(layer_ebops(self.uses, kernel_bits, self.inputs.exact(), 1.0, bias_bits, 1.0))


class LearnedDense(_LearnedWeights, keras.layers.Dense):
    """``QDense`` with learned kernel and bias formats."""

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        self.add_formats()

    def call(self, inputs: Any, training: Any = None) -> Any:
        k, b = self.quantized(training)
        y = ops.matmul(inputs, k)
        return y + b if b is not None else y


def _conv_class(rank: int) -> type:
    base = keras.layers.Conv1D if rank == 1 else keras.layers.Conv2D

    class _Conv(_LearnedWeights, base):  # type: ignore[misc, valid-type]
        def build(self, input_shape: Any) -> None:
            super().build(input_shape)
            self.add_formats()

        def call(self, inputs: Any, training: Any = None) -> Any:
            k, b = self.quantized(training)
            y = self.convolution_op(inputs, k)
            return y + b if b is not None else y

    _Conv.__name__ = f"LearnedConv{rank}D"
    return _Conv


LearnedConv = {1: _conv_class(1), 2: _conv_class(2)}

_CONV_KEYS = ("filters", "kernel_size", "strides", "padding", "dilation_rate", "use_bias")


def _width(quantizer: Any, where: str, role: str) -> Width:
    """The starting format of a QKeras quantizer; ConversionError for one that is not plain fixed point."""
    kind = type(quantizer).__name__
    alpha = getattr(quantizer, "alpha", None)
    if kind == "quantized_bits" and alpha in (None, 1, 1.0) and not getattr(quantizer, "symmetric", 0) \
            and getattr(quantizer, "keep_negative", True) and not getattr(quantizer, "use_stochastic_rounding", False):
        return Width(int(quantizer.bits), int(quantizer.integer), True)
    if kind == "quantized_relu" and not getattr(quantizer, "negative_slope", 0) and not getattr(quantizer, "use_sigmoid", 0) \
            and not getattr(quantizer, "use_stochastic_rounding", False):
        return Width(int(quantizer.bits), int(quantizer.integer), False)
    raise ConversionError(f"--target-ebops learns plain fixed-point formats; layer {where!r} has {role} {quantizer} "
                          "(use quantized_bits(B, I, alpha=1) or quantized_relu(B, I) in the rule file)")


class _V:
    """A tensor in the graph being rebuilt, with the quantizers that set its width (None: float)."""

    def __init__(self, tensor: Any, sources: frozenset[Any]) -> None:
        self.tensor, self.sources = tensor, sources


def _tensor(value: _V) -> Any:
    return value.tensor


@dataclass
class SearchModel:
    """The search-phase model and its learned parts, by layer name."""

    model: Any
    multiplies: dict[str, Any]
    quantizers: dict[str, LearnedQuantizer]

    def exact_ebops(self) -> dict[str, float]:
        """EBOPs per multiply layer at the rounded widths (equal to ``model_cost`` of the QKeras model they make)."""
        return {name: layer.exact_ebops() for name, layer in self.multiplies.items()}

    def freeze_widths(self) -> None:
        """Hold every width at its rounded value: from now on only the weights (and which are zero) change."""
        for q in self.quantizers.values():
            q.format.freeze()
        for layer in self.multiplies.values():
            for f in (layer.kernel_format, layer.bias_format):
                if f is not None:
                    f.freeze()

    def set_beta(self, beta: float) -> None:
        for layer in self.multiplies.values():
            layer.beta.assign(beta)

    def widths(self) -> dict[str, dict[str, Width]]:
        """Rounded formats: ``{layer: {"kernel": Width, "bias": Width}}`` and ``{quantizer: {"activation": Width}}``."""
        out: dict[str, dict[str, Width]] = {name: {"activation": q.format.rounded()} for name, q in self.quantizers.items()}
        for name, layer in self.multiplies.items():
            out[name] = {"kernel": layer.kernel_format.rounded()}
            if layer.bias_format is not None:
                out[name]["bias"] = layer.bias_format.rounded()
        return out

    def minimum_ebops(self) -> float:
        """The least EBOPs a model of this shape can reach: every output unit of every multiply layer keeps one
        weight, every width at its smallest (one magnitude bit), no bias."""
        total = 0.0
        for layer in self.multiplies.values():
            a = max(FLOAT_MAGNITUDE if s is None else min(MIN_BITS[s.start.signed], s.start.bits) - int(s.start.signed)
                    for s in layer.inputs.sources)
            w = min(MIN_BITS[True], layer.start_formats[0].bits) - 1
            total += layer.uses * int(layer.kernel.shape[-1]) * a * w
        return total


def build_search_model(qmodel: Any, scale: float) -> SearchModel:
    """The search model of a converted QKeras model: same graph and weights, widths learnable (module docstring).

    Raises :class:`ConversionError` for what it cannot learn: nested models, shared multiply layers, other
    Q-layers, float layers with weights, quantizers that are not plain fixed point.
    """
    graph = graph_of(qmodel)
    inputs = [keras.Input(batch_shape=(None, *shape), dtype=dtype, name=ref.layer)
              for ref, shape, dtype in zip(graph.inputs, graph.input_shapes, graph.input_dtypes)]
    multiplies: dict[str, Any] = {}
    quantizers: dict[str, LearnedQuantizer] = {}

    def call(c: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        layer = qmodel.get_layer(c.layer)
        kind = type(layer).__name__
        ins = leaves(args, _V)
        sources = frozenset(s for v in ins for s in v.sources)
        if kind in ("QDense", "QConv1D", "QConv2D"):
            if c.layer in multiplies:
                raise ConversionError(f"--target-ebops: layer {c.layer!r} is called more than once (shared); not supported")
            new = _multiply(layer, kind, scale, sources)
            out = new(*map_leaves(args, _V, _tensor), **map_leaves(kwargs, _V, _tensor))
            new.uses = int(np.prod([d for d in out.shape[1:-1] if d is not None] or [1]))
            new.kernel.assign(layer.kernel)
            if new.use_bias:
                new.bias.assign(layer.bias)
            multiplies[c.layer] = new
            return _V(out, frozenset({None}))
        if kind == "QActivation":
            q = LearnedQuantizer(_width(layer.activation, c.layer, "activation"), scale, name=c.layer)
            quantizers[c.layer] = q
            return _V(q(*map_leaves(args, _V, _tensor)), frozenset({q}))
        if hasattr(layer, "layers") and hasattr(layer, "get_layer"):
            raise ConversionError(f"--target-ebops: nested model {c.layer!r} is not supported; flatten the model")
        if kind.startswith("Q") or layer.weights:
            raise ConversionError(f"--target-ebops learns QDense, QConv1D, QConv2D and QActivation; layer {c.layer!r} "
                                  f"is {kind}{' with weights' if layer.weights else ''}")
        out = layer(*map_leaves(args, _V, _tensor), **map_leaves(kwargs, _V, _tensor))
        passed = sources if kind in _MOVERS else frozenset({None})
        return _V(out, passed) if not isinstance(out, (list, tuple)) else [_V(o, passed) for o in out]

    entry = [_V(t, frozenset({None})) for t in inputs]
    outputs = run(graph, entry, call)
    model = keras.Model(inputs if len(inputs) > 1 else inputs[0], map_leaves(outputs, _V, _tensor), name=f"{qmodel.name}_search")
    return SearchModel(model, multiplies, quantizers)


def _multiply(layer: Any, kind: str, scale: float, sources: frozenset[Any]) -> Any:
    config = layer.get_config()
    if config.get("activation") not in (None, "linear"):
        raise ConversionError(f"--target-ebops: layer {layer.name!r} has a fused activation {config['activation']!r}")
    kernel = _width(layer.kernel_quantizer_internal, layer.name, "kernel")
    bias = None
    if config.get("use_bias", True):
        if layer.bias_quantizer_internal is None:
            raise ConversionError(f"--target-ebops: layer {layer.name!r} has a float bias; give it a bias quantizer")
        bias = _width(layer.bias_quantizer_internal, layer.name, "bias")
    if kind == "QDense":
        new = LearnedDense(int(config["units"]), use_bias=bool(config.get("use_bias", True)), name=layer.name)
    else:
        if config.get("data_format", "channels_last") != "channels_last" or config.get("groups", 1) != 1:
            raise ConversionError(f"--target-ebops: layer {layer.name!r}: only channels_last, ungrouped convolutions")
        new = LearnedConv[1 if kind == "QConv1D" else 2](name=layer.name, **{k: config[k] for k in _CONV_KEYS if k in config})
    new.setup(kernel, bias, scale, 1, _Inputs(sorted(sources, key=lambda s: "" if s is None else s.name)))
    return new
