"""A model's layer graph, read from its Keras 3 nodes, and a small interpreter over it.

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

__all__ = ["Call", "Graph", "TensorRef", "graph_of", "leaves", "map_leaves", "run"]


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


def _is_functional(model: Any) -> bool:
    """A Functional model whose ``get_config`` lists its graph (not a subclass with another constructor)."""
    from keras.src.models.functional import Functional, functional_like_constructor

    return isinstance(model, Functional) and functional_like_constructor(type(model))


def _chain(model: Any) -> Graph:
    """Sequential (and any model that is not Functional): its layers called one after the other."""
    shape = tuple(model.inputs[0].shape)[1:] if getattr(model, "inputs", None) else None
    if shape is None:
        raise ConversionError(f"model {model.name!r} is not built; it needs a known input shape")
    own = getattr(model, "_layers", None) or []  # Sequential keeps its InputLayer here, not in .layers
    first = own[0] if own else None
    entry = TensorRef(first.name if type(first).__name__ == "InputLayer" else "input")
    previous, calls = entry, []
    for layer in model.layers:
        calls.append(Call(layer.name, 0, (previous,), {}))
        previous = TensorRef(layer.name)
    return Graph((entry,), (shape,), (str(model.inputs[0].dtype),), previous, tuple(calls), True)


def _map(value: Any, leaf: Callable[[Any], Any]) -> Any:
    if isinstance(value, (list, tuple)):
        return type(value)(_map(v, leaf) for v in value)
    if isinstance(value, dict):
        return {k: _map(v, leaf) for k, v in value.items()}
    return leaf(value)


def _network(model: Any) -> Graph:
    """A Functional model's calls, read from its nodes (what ``get_config`` lists, without serializing a layer).

    A call's ``node`` counts only the calls that belong to this model, as Keras's config numbers them.
    """
    from keras import KerasTensor

    own = model._nodes  # keys of the nodes that belong to this model

    def kept(op: Any) -> list[int]:
        """Positions in ``op._inbound_nodes`` of this model's calls of ``op``."""
        return [i for i, node in enumerate(op._inbound_nodes) if f"{id(op)}_ib-{i}" in own and node.input_tensors]

    numbering = {id(op): {i: n for n, i in enumerate(kept(op))} for op in model.operations}

    def ref(value: Any) -> Any:
        if not isinstance(value, KerasTensor):
            return value
        op, index, tensor = value._keras_history
        if type(op).__name__ == "InputLayer":
            return TensorRef(op.name, 0, tensor)
        return TensorRef(op.name, numbering[id(op)][index], tensor)

    pending: list[Call] = []
    for op in model.operations:
        if type(op).__name__ == "InputLayer":
            continue
        for n, i in enumerate(kept(op)):
            arguments = op._inbound_nodes[i].arguments
            pending.append(Call(op.name, n, _map(arguments.args, ref), _map(arguments.kwargs, ref)))
    inputs = tuple(ref(t) for t in model.inputs)
    by_name = {op.name: op for op in model.operations}
    shapes = tuple(tuple(by_name[r.layer].batch_shape[1:]) for r in inputs)
    dtypes = tuple(str(by_name[r.layer].get_config().get("dtype", "float32")) for r in inputs)
    known = {(r.layer, r.node) for r in inputs}
    ordered: list[Call] = []
    while pending:
        ready = [c for c in pending if all((r.layer, r.node) in known for r in c.inputs())]
        if not ready:
            raise ConversionError(f"cannot order the layers of {model.name!r}: a call waits on {pending[0].inputs()}")
        for call in ready:
            ordered.append(call)
            known.add((call.layer, call.node))
        taken = {id(c) for c in ready}
        pending = [c for c in pending if id(c) not in taken]
    return Graph(inputs, shapes, dtypes, _map(model._outputs_struct, ref), tuple(ordered), False)


def graph_of(model: Any) -> Graph:
    """The call graph of a built Keras 3 Sequential or Functional model.

    Read from the model's nodes in memory (no layer is serialized or called). Raises
    :class:`ConversionError` for a model without a known input shape or whose calls cannot be ordered.
    """
    return _network(model) if _is_functional(model) else _chain(model)


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


def leaves(value: Any, kind: type) -> list[Any]:
    """The ``kind`` instances in the arguments :func:`run` hands a call (nested lists, tuples and dicts), in order."""
    if isinstance(value, kind):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in leaves(item, kind)]
    if isinstance(value, dict):
        return [v for item in value.values() for v in leaves(item, kind)]
    return []


def map_leaves(value: Any, kind: type, fn: Callable[[Any], Any]) -> Any:
    """``value`` with each ``kind`` instance replaced by ``fn(instance)``; lists, tuples and dicts keep their shape."""
    if isinstance(value, kind):
        return fn(value)
    if isinstance(value, (list, tuple)):
        return type(value)(map_leaves(v, kind, fn) for v in value)
    if isinstance(value, dict):
        return {k: map_leaves(v, kind, fn) for k, v in value.items()}
    return value
