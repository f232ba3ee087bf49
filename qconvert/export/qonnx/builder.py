"""The graph under construction: nodes and initializers with unique names, and each tensor's layout.

Keras is channels-last; ONNX's ``Conv``, pooling and ``Resize`` (and FINN, and qonnx's channels-last
conversion) take channels-first. A :class:`Value` records which one a tensor is stored in, and
:meth:`Builder.layout` adds a ``Transpose`` only where an operator needs the other one (once per tensor).
Every node of a Keras layer carries the layer's name in its ``doc_string`` (:meth:`Builder.tag`), which
survives qonnx's renaming cleanup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .quant import QuantParams

__all__ = ["QONNX_DOMAIN", "TAG", "Builder", "Value"]

QONNX_DOMAIN = "qonnx.custom_op.general"
TAG = re.compile(r"^keras layer '(?P<layer>[^']+)'(?P<out> output(?P<first> \(channels first\))?)?$")


@dataclass(frozen=True)
class Value:
    """A tensor of the graph: its ONNX name, its Keras shape (no batch axis) and whether it is stored
    channels-first (``(C, *spatial)``) rather than in Keras's channels-last order."""

    name: str
    shape: tuple[int, ...]
    first: bool = False

    @property
    def onnx_shape(self) -> tuple[int, ...]:
        """The stored shape, batch 1 first."""
        if self.first:
            return (1, self.shape[-1], *self.shape[:-1])
        return (1, *self.shape)

    def axis(self, keras_axis: int) -> int:
        """Where Keras's axis ``keras_axis`` (batch = 0, negative from the end) is in the stored tensor."""
        rank = len(self.shape) + 1
        k = keras_axis % rank
        if not self.first or k == 0:
            return k
        return 1 if k == rank - 1 else k + 1


@dataclass
class Builder:
    """Nodes and initializers of one graph, with unique names; transposes made once per tensor."""

    nodes: list[Any] = field(default_factory=list)
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    _names: set[str] = field(default_factory=set)
    _moved: dict[tuple[str, bool], Value] = field(default_factory=dict)

    def unique(self, base: str) -> str:
        """``base``, or ``base_2``, ``base_3``, ... (node, tensor and initializer names share one space)."""
        base = re.sub(r"[^A-Za-z0-9_./-]", "_", base)
        name, i = base, 1
        while name in self._names:
            i += 1
            name = f"{base}_{i}"
        self._names.add(name)
        return name

    def const(self, base: str, value: Any, dtype: Any = np.float32) -> str:
        """An initializer named after ``base``."""
        name = self.unique(base)
        self.initializers[name] = np.asarray(value, dtype=dtype)
        return name

    def node(self, op: str, inputs: list[str], base: str, domain: str = "", **attrs: Any) -> str:
        """Add node ``op`` reading ``inputs``; its one output's name."""
        from onnx import helper

        name = self.unique(f"{base}/{op}")
        out = self.unique(f"{name}_out")
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, domain=domain, **attrs))
        return out

    def quant(self, x: str, p: QuantParams, base: str) -> str:
        """A ``Quant`` (or ``BipolarQuant``) node on tensor ``x``."""
        scale = self.const(f"{base}_scale", p.scale)
        if p.bipolar:
            return self.node("BipolarQuant", [x, scale], base, domain=QONNX_DOMAIN)
        zero = self.const(f"{base}_zeropt", 0.0)
        bits = self.const(f"{base}_bitwidth", float(p.bits))
        return self.node("Quant", [x, scale, zero, bits], base, domain=QONNX_DOMAIN, signed=int(p.signed),
                         narrow=int(p.narrow), rounding_mode=p.rounding)

    def tag(self, since: int, tensor: str, layer: str, first: bool) -> None:
        """Mark the nodes from index ``since`` on as Keras layer ``layer``'s, the one producing ``tensor`` as its
        output."""
        for node in self.nodes[since:]:
            node.doc_string = f"keras layer '{layer}'"
            if tensor in node.output:
                node.doc_string += " output" + (" (channels first)" if first else "")

    def layout(self, v: Value, first: bool) -> Value:
        """``v`` channels-first (``first``) or in Keras's order; a ``Transpose`` when it is not (made once)."""
        if v.first == first or len(v.shape) < 2:
            return v
        key = (v.name, first)
        if key not in self._moved:
            r = len(v.shape)
            perm = [0, r, *range(1, r)] if first else [0, *range(2, r + 1), 1]
            self._moved[key] = Value(self.node("Transpose", [v.name], v.name.split("/")[0], perm=perm), v.shape, first)
        return self._moved[key]
