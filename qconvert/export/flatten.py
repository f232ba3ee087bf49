"""Nested models flattened for hls4ml: one graph of layers, no model inside the model; names hls4ml reserves
given to no layer.

hls4ml's Keras-3 parser takes a flat graph of layers. A model used as a layer (a Sequential block
inside a functional model, a shared sub-network) is inlined here: each of its layers is re-created
from its config with the same weights and called, in its own graph's order, on the outer tensors.
Copies, not the same objects, so that each layer of the flat model has one call (the verification
reads ``layer.output``); the flat model computes exactly what the nested one does. Layer names must
be unique across the nesting (else a one-line error names the clash). A layer named as hls4ml's graph
names its own nodes (:data:`RESERVED`: ``input``) gets the first free name ``input_1``, ``input_2``, ...
in the copy; :func:`reserved_renames` says which.
"""

from __future__ import annotations

from typing import Any

from ..errors import ExportError
from ..model.graph import graph_of, run

__all__ = ["RESERVED", "flatten_nested", "is_nested", "reserved_renames"]

#: Layer names hls4ml's ``ModelGraph`` refuses ("a reserved layer name", hls4ml/model/layers.py).
RESERVED = ("input",)


def _is_model(layer: Any) -> bool:
    import keras

    return isinstance(layer, keras.Model)


def is_nested(model: Any) -> bool:
    """Whether ``model`` calls another model as a layer."""
    return any(_is_model(layer) for layer in model.layers)


def _all_names(model: Any) -> set[str]:
    names = set()
    for layer in model.layers:
        names.add(layer.name)
        if _is_model(layer):
            names |= _all_names(layer)
    return names


def reserved_renames(model: Any) -> dict[str, str]:
    """``{old: new}`` for the layers (nested ones included) whose names hls4ml reserves; empty for most models."""
    taken = _all_names(model)
    renames = {}
    for name in RESERVED:
        if name in taken:
            new = next(f"{name}_{i}" for i in range(1, len(taken) + 2) if f"{name}_{i}" not in taken)
            renames[name] = new
            taken.add(new)
    return renames


def _copy(layer: Any, renames: dict[str, str]) -> Any:
    """A new layer of the same class and config, renamed as ``renames`` says (weights are set once it is built)."""
    config = layer.get_config()
    name = config.get("name", layer.name)
    config["name"] = renames.get(name, name)
    new = type(layer).from_config(config)
    if new.name != config.get("name", new.name):
        new.name = config["name"]  # qkeras-v3's recurrent Q-layers hand ``name`` to their cell
    return new


def _inline(model: Any, inputs: list[Any], copies: dict[int, Any], renames: dict[str, str]) -> Any:
    """Call copies of ``model``'s layers (recursively inlining the models among them) on ``inputs``; its outputs.
    ``copies``: original layer id → its copy, so that a shared layer stays one layer."""
    graph = graph_of(model)
    layers = {layer.name: layer for layer in model.layers}

    def call(c: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        layer = layers[c.layer]
        if _is_model(layer):
            inner = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else list(args)
            return _inline(layer, inner, copies, renames)
        fresh = id(layer) not in copies
        new = copies.setdefault(id(layer), _copy(layer, renames) if fresh else None)
        out = new(*args, **kwargs)
        if fresh:
            new.set_weights(layer.get_weights())
        return out

    return run(graph, inputs, call)


def flatten_nested(model: Any, renames: dict[str, str] | None = None) -> Any:
    """The same computation with every nested model inlined and the layers in ``renames`` (``{old: new}``, see
    :func:`reserved_renames`) renamed; ``model`` itself when nothing is nested or renamed."""
    import keras

    renames = renames or {}
    if not is_nested(model) and not renames:
        return model
    graph = graph_of(model)
    inputs = [keras.Input(batch_shape=(None, *shape), dtype=dtype, name=renames.get(ref.layer, ref.layer))
              for ref, shape, dtype in zip(graph.inputs, graph.input_shapes, graph.input_dtypes)]
    outputs = _inline(model, inputs, {}, renames)
    try:
        flat = keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=model.name)
    except ValueError as exc:
        raise ExportError(f"model '{model.name}': cannot flatten its nested models for hls4ml: {exc}") from None
    names = [layer.name for layer in flat.layers]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ExportError(f"model '{model.name}': flattened for hls4ml, layer name(s) {', '.join(clash)} occur twice")
    return flat
