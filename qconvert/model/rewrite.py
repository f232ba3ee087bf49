"""Apply a :class:`~qconvert.model.plan.Plan`: rebuild the graph with Q-layers, move weights by name.

The original model is never changed: every layer of the new model is a new
object (unchanged layers are re-created from their config and get a copy of
their weights). Shared layers stay shared; nested models are rewritten
recursively and called in place. Sequential models stay Sequential.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from ..errors import ConversionError
from ..quantizers import QuantizerSpec, build
from .fold import folded_weights
from .graph import graph_of, run
from .plan import LayerPlan, Plan
from .preset import PresetWeights
from .rewriters import NewLayer, rewriter_for
from .rewriters.activation import split_activation
from .snapshot import Snapshot

__all__ = ["apply_plan"]


#: Q-layers whose quantized weights QKeras clips, and those weights (``get_auto_range_constraint_initializer``).
_CLIPPED = {"QDense": ("kernel", "bias"), "QConv1D": ("kernel", "bias"), "QConv2D": ("kernel", "bias")}


def _clip_bounds(qkeras: Any, class_name: str, config: dict[str, Any]) -> None:
    """The ``Clip`` QKeras gives each quantized weight without a constraint, made here for ``quantized_bits``.

    QKeras computes its bound, ``max(1, quantizer.max())``, with a backend operation per weight (2 % of a
    conversion of the seed model); this is the same arithmetic in NumPy, with the same types (a 0-d float32
    array above 1, else the int 1), so the layer and its config are what QKeras would make.
    """
    for role in _CLIPPED.get(class_name, ()):
        q = config.get(f"{role}_quantizer")
        if (config.get(f"{role}_constraint") is not None or type(q) is not qkeras.quantized_bits
                or type(q.integer) is not int or (role == "bias" and not config.get("use_bias", True))):
            continue
        bound = max(1, max(1.0, np.asarray(2.0**q.integer, np.float32))) if q.bits - q.keep_negative > 0 else 1
        config[f"{role}_constraint"] = qkeras.qlayers.Clip(-bound, bound, None, q)


def _instantiate(new: NewLayer, original: Any) -> keras.layers.Layer:
    config = {k: (build(v) if isinstance(v, QuantizerSpec) else v) for k, v in new.config.items()}
    if new.class_name == type(original).__name__:
        cls = type(original)
    elif new.class_name == "Activation":
        cls = keras.layers.Activation
    else:
        from ..runtime import import_qkeras

        qkeras = import_qkeras()
        cls = getattr(qkeras, new.class_name, None) or getattr(keras.layers, new.class_name)
        _clip_bounds(qkeras, new.class_name, config)
    try:
        layer = cls.from_config(config)
    except (TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionError(
            f"cannot create {new.class_name} for layer {config.get('name')!r} "
            f"({type(original).__name__}): {first}"
        ) from exc
    if "name" in config and layer.name != config["name"]:
        layer.name = config["name"]  # qkeras-v3's QSimpleRNN/QLSTM/QGRU hand ``name`` to their cell, not themselves
    return layer


def _accepted(layer: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Call arguments ``layer.call`` takes; unset ones (None) it does not take are dropped."""
    params = inspect.signature(layer.call).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    refused = [k for k, v in kwargs.items() if k not in params and v is not None]
    if refused:
        raise ConversionError(f"{type(layer).__name__} {layer.name!r} does not take call argument(s) {refused}")
    return {k: v for k, v in kwargs.items() if k in params}


class _Rewriter:
    def __init__(self, plan: Plan, snapshot: Snapshot) -> None:
        self.plan = plan
        self.snapshot = snapshot
        self.items = {item.path: item for item in plan.layers}
        self.weights: list[tuple[keras.layers.Layer, list[np.ndarray], str, PresetWeights]] = []

    def layers_for(self, item: LayerPlan, layer: Any, scope: Any) -> list[Any]:
        """The new layer objects that replace ``layer`` (empty when folded away)."""
        if item.action == "nested":
            return [self.scope(layer, item.path)]
        if item.action == "fold":
            return []
        if isinstance(layer, keras.layers.Lambda) and item.action == "unchanged":
            # Stateless, and its Python function is already in memory: the same object serves the new
            # graph, so its code is never serialized and deserialized again (safe mode stays on).
            return [layer]
        config = self.snapshot.config(layer)
        weights = self.snapshot.weights(layer)
        if item.folded_bn is not None or item.input_bn is not None:
            before, after = (None if n is None else self.batchnorm(scope, n) for n in (item.input_bn, item.folded_bn))
            weights, _ = folded_weights(item.class_name, weights, config.get("use_bias", True), before=before,
                                        after=after)
            config = dict(config, use_bias=True)
        if item.split is not None:
            config = dict(config, activation="linear")
        rewriter = rewriter_for(item.class_name) if item.action == "quantize" else None
        if rewriter is not None:
            specs = dict(item.quantizers)
            new_layers = rewriter(item.class_name, config, specs)
        else:
            new_layers = [NewLayer(item.class_name, config)]
        if item.split is not None:
            new_layers.append(split_activation(item.split.name, item.split.function, item.split.spec))
        built = []
        for new in new_layers:
            obj = _instantiate(new, layer)
            if new.takes_weights and weights:
                preset = PresetWeights(obj, weights, self.snapshot)  # built below with its final weights, not random ones
                preset.install()
                self.weights.append((obj, weights, item.qualified_name, preset))
            built.append(obj)
        return built

    def batchnorm(self, scope: Any, name: str) -> tuple[list[np.ndarray], dict[str, Any]]:
        bn = scope.get_layer(name)
        return self.snapshot.weights(bn), self.snapshot.config(bn)

    def scope(self, model: Any, prefix: tuple[str, ...]) -> keras.Model:
        graph = graph_of(model)
        replaced: dict[str, list[Any]] = {}
        order: list[Any] = []
        for layer in model.layers:
            if type(layer).__name__ == "InputLayer":
                continue
            item = self.items.get(prefix + (layer.name,))
            if item is None:
                raise ConversionError(f"the plan has no entry for layer {'/'.join(prefix + (layer.name,))!r}")
            replaced[layer.name] = self.layers_for(item, layer, model)
            order += replaced[layer.name]

        inputs = [
            keras.Input(batch_shape=(None, *shape), dtype=dtype, name=ref.layer)
            for ref, shape, dtype in zip(graph.inputs, graph.input_shapes, graph.input_dtypes)
        ]
        head: list[Any] = []
        if not prefix and self.plan.input_quantizer is not None:
            head = [
                _instantiate(NewLayer("QActivation", {"name": f"{ref.layer}_quant", "activation": self.plan.input_quantizer}), None)
                for ref in graph.inputs
            ]
        if graph.sequential:
            new_model = keras.Sequential([inputs[0], *head, *order], name=model.name)
        else:
            entry = [q(t) for q, t in zip(head, inputs)] if head else inputs

            def call(c: Any, args: Any, kwargs: dict[str, Any]) -> Any:
                chain: list[Callable[..., Any]] = replaced[c.layer]
                if not chain:  # folded away: pass the input through
                    return args[0]
                out = chain[0](*args, **_accepted(chain[0], kwargs))
                for nxt in chain[1:]:
                    out = nxt(out)
                return out

            outputs = run(graph, entry, call)
            new_model = keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=model.name)
        return new_model

    def move_weights(self) -> None:
        for layer, weights, name, preset in self.weights:
            expected = [tuple(w.shape) for w in layer.weights]
            given = [tuple(np.shape(w)) for w in weights]
            if expected != given:
                raise ConversionError(
                    f"weights of layer {name!r} do not fit {type(layer).__name__}: expected shapes {expected}, got {given}"
                )
            preset.finish()


def apply_plan(model: Any, plan: Plan, snapshot: Snapshot | None = None) -> keras.Model:
    """The converted model. ``model`` is left as it was.

    ``snapshot``: the conversion's :class:`~qconvert.model.snapshot.Snapshot` (layer configs and weights read
    once, shared with the other stages; it learns what the new model's variables hold, for the cost model).
    """
    rewriter = _Rewriter(plan, snapshot if snapshot is not None else Snapshot())
    try:
        new_model = rewriter.scope(model, ())
    finally:
        for *_, preset in rewriter.weights:
            preset.restore()
    rewriter.move_weights()
    return new_model
