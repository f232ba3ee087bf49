"""A model's layer graph, read from its Keras 3 config, and a small interpreter over it.

:class:`Graph` lists every layer call in an order where producers come first.
:func:`run` walks those calls with any value type: the rewriter runs it with
Keras tensors to build the new model, the cost model with ``(shape, bits)``.
Sequential models are chains; nested models are single calls (callers recurse).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConversionError

__all__ = ["Call", "Graph", "TensorRef", "graph_of", "run"]


@dataclass(frozen=True)
class TensorRef:
    """Output ``index`` of call ``node`` of layer ``layer``."""

    layer: str
    node: int = 0
    index: int = 0


@dataclass(frozen=True)
class Call:
    """One call of a layer: ``layer`` (its name), ``node`` (which call of it), and the call's ``args`` and
    ``kwargs`` with :class:`TensorRef` where tensors go."""

    layer: str
    node: int
    args: Any  # nested lists/tuples/dicts holding TensorRef and plain values
    kwargs: dict[str, Any]

    def inputs(self) -> list[TensorRef]:
        """The tensors the call reads, in argument order."""
        return list(_refs(self.args)) + list(_refs(self.kwargs))


@dataclass(frozen=True)
class Graph:
    """A model's layer calls, producers first: ``inputs`` (with their ``input_shapes``, without the batch
    axis, and ``input_dtypes``), ``outputs`` (a :class:`TensorRef` or a list of them), ``calls``, and
    whether the model is ``sequential``. Built by :func:`graph_of`."""

    inputs: tuple[TensorRef, ...]
    input_shapes: tuple[tuple[int | None, ...], ...]
    input_dtypes: tuple[str, ...]
    outputs: Any  # a TensorRef or a list of them
    calls: tuple[Call, ...]
    sequential: bool

    def calls_of(self, layer: str) -> list[Call]:
        """Every call of the layer named ``layer`` (more than one: a shared layer)."""
        return [c for c in self.calls if c.layer == layer]

    def consumers(self) -> Counter[str]:
        """How many times each layer's outputs are used (model outputs count)."""
        used: Counter[str] = Counter(ref.layer for call in self.calls for ref in call.inputs())
        used.update(ref.layer for ref in _refs(self.outputs))
        return used


def _refs(value: Any):
    if isinstance(value, TensorRef):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _refs(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _refs(item)


def _decode(value: Any) -> Any:
    """Config form of call arguments → the same structure with TensorRef."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return TensorRef(*value["config"]["keras_history"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_decode(v) for v in value)
    return value


def _refs_from_config(value: Any) -> Any:
    # ["x", 0, 0] or [["a", 0, 0], ["b", 0, 0]]
    if isinstance(value, (list, tuple)) and len(value) == 3 and isinstance(value[0], str):
        return TensorRef(*value)
    return [_refs_from_config(v) for v in value]


def graph_of(model: Any) -> Graph:
    """The call graph of a built Keras 3 Sequential or Functional model."""
    config = model.get_config()
    layers = config.get("layers", [])
    if config.get("input_layers") is None:  # Sequential: a chain
        first = layers[0] if layers else None
        shape = tuple(model.inputs[0].shape)[1:] if getattr(model, "inputs", None) else None
        if shape is None:
            raise ConversionError(f"model {model.name!r} is not built; it needs a known input shape")
        entry = TensorRef(first["config"]["name"] if first and first["class_name"] == "InputLayer" else "input")
        previous, calls = entry, []
        for layer in model.layers:
            calls.append(Call(layer.name, 0, (previous,), {}))
            previous = TensorRef(layer.name)
        return Graph((entry,), (shape,), (str(model.inputs[0].dtype),), previous, tuple(calls), True)

    inputs = _refs_from_config(config["input_layers"])
    inputs = (inputs,) if isinstance(inputs, TensorRef) else tuple(inputs)
    by_name = {layer["name"]: layer for layer in layers}
    shapes = tuple(tuple(by_name[ref.layer]["config"]["batch_shape"][1:]) for ref in inputs)
    dtypes = tuple(str(by_name[ref.layer]["config"].get("dtype", "float32")) for ref in inputs)
    pending = [
        Call(layer["name"], i, _decode(node.get("args", ())), _decode(node.get("kwargs", {})))
        for layer in layers
        if layer["class_name"] != "InputLayer"
        for i, node in enumerate(layer.get("inbound_nodes", []))
    ]
    known = {(ref.layer, ref.node) for ref in inputs}
    ordered: list[Call] = []
    while pending:
        ready = [c for c in pending if all((r.layer, r.node) in known for r in c.inputs())]
        if not ready:
            raise ConversionError(f"cannot order the layers of {model.name!r}: a call waits on {pending[0].inputs()}")
        for call in ready:
            ordered.append(call)
            known.add((call.layer, call.node))
        pending = [c for c in pending if c not in ready]
    return Graph(inputs, shapes, dtypes, _refs_from_config(config["output_layers"]), tuple(ordered), False)


def _substitute(value: Any, values: dict[TensorRef, Any]) -> Any:
    if isinstance(value, TensorRef):
        return values[value]
    if isinstance(value, (list, tuple)):
        return type(value)(_substitute(v, values) for v in value)
    if isinstance(value, dict):
        return {k: _substitute(v, values) for k, v in value.items()}
    return value


def run(graph: Graph, inputs: list[Any], call: Callable[[Call, Any, dict[str, Any]], Any]) -> Any:
    """Interpret ``graph``: ``call(Call, args, kwargs)`` returns the call's output(s).

    Returns the model outputs, in the structure of ``graph.outputs``.
    """
    values: dict[TensorRef, Any] = dict(zip(graph.inputs, inputs))
    for c in graph.calls:
        out = call(c, _substitute(c.args, values), _substitute(c.kwargs, values))
        outs = out if isinstance(out, (list, tuple)) else [out]
        for i, value in enumerate(outs):
            values[TensorRef(c.layer, c.node, i)] = value
    return _substitute(graph.outputs, values)
