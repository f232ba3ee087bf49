"""Nested models flattened for hls4ml: one graph of layers, no model inside the model.

hls4ml's Keras-3 parser takes a flat graph of layers. A model used as a layer (a Sequential block
inside a functional model, a shared sub-network) is inlined here: each of its layers is re-created
from its config with the same weights and called, in its own graph's order, on the outer tensors.
Copies, not the same objects, so that each layer of the flat model has one call (the verification
reads ``layer.output``); the flat model computes exactly what the nested one does. Layer names must
be unique across the nesting (else a one-line error names the clash).
"""

from __future__ import annotations

from typing import Any

from ..errors import ExportError
from ..model.graph import graph_of, run

__all__ = ["flatten_nested", "is_nested"]


def _is_model(layer: Any) -> bool:
    import keras

    return isinstance(layer, keras.Model)


def is_nested(model: Any) -> bool:
    """Whether ``model`` calls another model as a layer."""
    return any(_is_model(layer) for layer in model.layers)


def _copy(layer: Any) -> Any:
    """A new layer of the same class and config (weights are set once it is built)."""
    config = layer.get_config()
    new = type(layer).from_config(config)
    if new.name != config.get("name", new.name):
        new.name = config["name"]  # qkeras-v3's recurrent Q-layers hand ``name`` to their cell
    return new


def _inline(model: Any, inputs: list[Any], copies: dict[int, Any]) -> Any:
    """Call copies of ``model``'s layers (recursively inlining the models among them) on ``inputs``; its outputs.
    ``copies``: original layer id → its copy, so that a shared layer stays one layer."""
    graph = graph_of(model)
    layers = {layer.name: layer for layer in model.layers}

    def call(c: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        layer = layers[c.layer]
        if _is_model(layer):
            inner = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else list(args)
            return _inline(layer, inner, copies)
        fresh = id(layer) not in copies
        new = copies.setdefault(id(layer), _copy(layer) if fresh else None)
        out = new(*args, **kwargs)
        if fresh:
            new.set_weights(layer.get_weights())
        return out

    return run(graph, inputs, call)


def flatten_nested(model: Any) -> Any:
    """The same computation with every nested model inlined (``model`` itself when nothing is nested)."""
    import keras

    if not is_nested(model):
        return model
    graph = graph_of(model)
    inputs = [keras.Input(batch_shape=(None, *shape), dtype=dtype, name=ref.layer)
              for ref, shape, dtype in zip(graph.inputs, graph.input_shapes, graph.input_dtypes)]
    outputs = _inline(model, inputs, {})
    try:
        flat = keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=model.name)
    except ValueError as exc:
        raise ExportError(f"model '{model.name}': cannot flatten its nested models for hls4ml: {exc}") from None
    names = [layer.name for layer in flat.layers]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ExportError(f"model '{model.name}': flattened for hls4ml, layer name(s) {', '.join(clash)} occur twice")
    return flat
