"""Search spaces: a rule file in which values may be choices or ranges.

Any value of a rule file outside ``match`` (and ``version``, ``description``,
``note``) may be replaced by

* a **list of choices**: ``bits: [3, 4, 6, 8]``, ``prune: {sparsity: [0, 0.5, 0.75]}``,
  ``kernel: ["quantized_bits(4, 0, alpha=1)", "quantized_bits(6, 0, alpha=1)"]``;
* a **range**: a mapping with ``low`` and ``high`` (and optionally ``step``, ``log``):
  ``sparsity: {low: 0.5, high: 0.95, step: 0.05}``; integers when ``low``, ``high``
  (and ``step``) are integers, floats otherwise.

Each choice or range is one dimension of the space, named by its key path
(``defaults.kernel.bits``, ``rules[2].prune.sparsity``). Where it sits sets the
granularity: in ``defaults`` one value is chosen for the whole model, in a rule
matched by ``name`` one per layer, in a rule matched by ``glob``/``regex``/``type``
one per group. A trial fixes every dimension (:meth:`Space.concrete`) and gets
an ordinary rule file, validated like any other.

A space may also hold a top-level ``training`` mapping: the main job's training
options a trial runs with, fixed or searched like any other value. Today it holds
``target_ebops`` (cost-aware QAT that ends at <= N EBOPs, the main job's
``--target-ebops N``; ``null`` is plain QAT): ``training: {target_ebops: [null,
5000, 20000]}`` or ``{low: 2000, high: 50000, log: true}``. It is not part of the
rule file a trial writes (``front/NN.yaml``): its command line carries it.

This module imports neither Keras nor Optuna.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import RuleError
from .builder import Builder
from .parse import LinedMap, LinedSeq, parse_yaml, plain
from .presets import read_rules_text
from .types import RuleSet

__all__ = ["TRAINING_KEYS", "Dimension", "Space", "is_space", "load_space", "loads_space"]

_RANGE_KEYS = frozenset({"low", "high", "step", "log"})
_FIXED_KEYS = ("version", "description")  # top-level keys that are never searched
_NOT_SEARCHED = ("match", "note")  # keys inside a rule that are never searched
_TRAINING = "training"  # the top-level mapping of training options (not a rule-file key)
#: Keys of a space's ``training`` mapping: the main job's options a trial may set (or search).
TRAINING_KEYS = ("target_ebops",)


@dataclass(frozen=True)
class Dimension:
    """One searched value: its key path, where it is written, and its choices or range.

    ``kind`` is ``categorical`` (``choices``), ``int`` or ``float`` (``low``..``high``,
    with ``step`` and ``log`` as in Optuna's ``suggest_int``/``suggest_float``).
    """

    name: str
    line: int
    kind: str
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    log: bool = False

    @property
    def size(self) -> float:
        """Number of values (``math.inf`` for a continuous float range)."""
        if self.kind == "categorical":
            return len(self.choices)
        if self.kind == "int":
            return (int(self.high) - int(self.low)) // int(self.step or 1) + 1
        if self.step is not None:
            return math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return math.inf

    @property
    def first(self) -> Any:
        """The value a dimension takes when nothing chooses it (the first choice, or ``low``)."""
        return self.choices[0] if self.kind == "categorical" else (int(self.low) if self.kind == "int" else self.low)

    def values(self) -> list[Any]:
        """Every value of a finite dimension (for validation and display)."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            return [self.low, self.high]
        return [round(self.low + i * self.step, 12) for i in range(int(self.size))]

    def __str__(self) -> str:
        if self.kind == "categorical":
            return "[" + ", ".join(_short(c) for c in self.choices) + "]"
        step = f" step {self.step:g}" if self.step is not None else ""
        return f"{self.low:g}..{self.high:g}{step}{' log' if self.log else ''}"


def _short(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip()
    return str(value)


@dataclass(frozen=True)
class Space:
    """A parsed search space.

    ``source``: the file errors name; ``dimensions``: in file order; ``tree``:
    the parsed YAML with line numbers (never mutated). Built by
    :func:`loads_space` / :func:`load_space`, which validate every choice.
    """

    source: str
    dimensions: tuple[Dimension, ...]
    tree: Any

    @property
    def size(self) -> float:
        """Number of distinct rule files the space holds (``math.inf`` with a continuous range)."""
        return math.prod(d.size for d in self.dimensions) if self.dimensions else 1

    def dimension(self, name: str) -> Dimension:
        """The dimension named ``name`` (its key path). Raises :class:`KeyError`."""
        for dim in self.dimensions:
            if dim.name == name:
                return dim
        raise KeyError(name)

    def concrete(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The rule file (a plain mapping) with every dimension fixed from ``params`` (name → value)."""
        missing = [d.name for d in self.dimensions if d.name not in params]
        if missing:
            raise KeyError(f"no value for {', '.join(missing)}")
        return plain(self._fill(self.tree, "", params))

    def ruleset(self, params: Mapping[str, Any], source: str | None = None) -> RuleSet:
        """The validated :class:`RuleSet` of ``params``. Raises :class:`RuleError` (lines of the space file)."""
        tree = self._fill(self.tree, "", params)
        if isinstance(tree, LinedMap):
            tree.pop(_TRAINING, None)  # a copy: _fill never shares the space's own containers
        text = self.yaml(params)
        return Builder(source or self.source).ruleset(tree, hashlib.sha256(text.encode("utf-8")).hexdigest())

    def training(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The trial's training options (the space's ``training`` mapping with ``params`` filled in), e.g.
        ``{"target_ebops": 5000}``; ``{}`` when the space has none. Keys are :data:`TRAINING_KEYS`."""
        return dict(self.concrete(params).get(_TRAINING) or {}) if isinstance(self.tree, LinedMap) else {}

    @property
    def varies_training(self) -> bool:
        """Does any trial of this space set a training option (e.g. ``target_ebops``)?"""
        if not isinstance(self.tree, LinedMap) or not isinstance(self.tree.get(_TRAINING), LinedMap):
            return False
        dims = [d for d in self.dimensions if d.name.startswith(_TRAINING + ".")]
        fixed = [v for k, v in self.tree[_TRAINING].items() if f"{_TRAINING}.{k}" not in self._names]
        return any(v is not None for v in fixed) or any(v is not None for d in dims for v in d.values())

    def yaml(self, params: Mapping[str, Any], header: str = "") -> str:
        """The concrete rule file as YAML text (what ``front/NN.yaml`` holds), ``header`` as comment lines.
        The ``training`` mapping is left out: it is the main job's command line, not a rule."""
        comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
        rules = {k: v for k, v in self.concrete(params).items() if k != _TRAINING}
        return comment + yaml.safe_dump(rules, sort_keys=False, default_flow_style=None, width=100)

    def _fill(self, node: Any, path: str, params: Mapping[str, Any]) -> Any:
        if path in self._names:
            return _node(params[path], self.dimension(path).line)
        if isinstance(node, LinedMap):
            out = LinedMap()
            out.line, out.lines = node.line, dict(node.lines)
            for key, value in node.items():
                out[key] = self._fill(value, _join(path, key), params)
            return out
        if isinstance(node, LinedSeq):
            out_seq = LinedSeq(self._fill(v, f"{path}[{i}]", params) for i, v in enumerate(node))
            out_seq.line, out_seq.lines = node.line, list(node.lines)
            return out_seq
        return node

    @property
    def _names(self) -> frozenset[str]:
        return frozenset(d.name for d in self.dimensions)

    def describe(self) -> list[tuple[str, int, str, float]]:
        """``(name, line, values, size)`` per dimension, for ``rules check`` and ``rules show``."""
        return [(d.name, d.line, str(d), d.size) for d in self.dimensions]


def _node(value: Any, line: int) -> Any:
    """A chosen value as the rule-file builder reads it: mappings and lists carry the choice's line."""
    if isinstance(value, dict):
        out = LinedMap((k, _node(v, line)) for k, v in value.items())
        out.line, out.lines = line, {k: line for k in value}
        return out
    if isinstance(value, list):
        seq = LinedSeq(_node(v, line) for v in value)
        seq.line, seq.lines = line, [line] * len(value)
        return seq
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Scanner:
    """Finds the dimensions of a parsed space file, with the file's lines."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.dims: list[Dimension] = []

    def fail(self, message: str, line: int, key: str) -> RuleError:
        return RuleError(message, source=self.source, line=line, key=key)

    def scan(self, tree: Any) -> None:
        if not isinstance(tree, LinedMap):
            return  # the rule-file builder says what is wrong
        for key, value in tree.items():
            line = tree.lines[key]
            if key in _FIXED_KEYS:
                continue
            if key == _TRAINING:
                self.training(value, line)
                continue
            if key == "rules" and isinstance(value, LinedSeq):
                for i, rule in enumerate(value):
                    if isinstance(rule, LinedMap):
                        for rkey, rvalue in rule.items():
                            if rkey not in _NOT_SEARCHED:
                                self.value(rvalue, rule.lines[rkey], f"rules[{i}].{rkey}")
                continue
            self.value(value, line, key)

    def training(self, node: Any, line: int) -> None:
        """The ``training`` mapping: known keys only; each value a positive number or null (fixed or searched)."""
        if not isinstance(node, LinedMap):
            raise self.fail(f"expected a mapping of training options ({', '.join(TRAINING_KEYS)}), got {plain(node)!r}",
                            line, _TRAINING)
        for key, value in node.items():
            path, at = f"{_TRAINING}.{key}", node.lines[key]
            if key not in TRAINING_KEYS:
                raise self.fail(f"unknown key; expected one of {', '.join(TRAINING_KEYS)}", at, path)
            before = len(self.dims)
            self.value(value, at, path)
            dim = self.dims[-1] if len(self.dims) > before else None
            if dim is not None and dim.kind != "categorical":
                if dim.low <= 0:
                    raise self.fail(f"must be positive (EBOPs), got low {dim.low}", at, path)
                continue
            for v in dim.choices if dim is not None else (plain(value),):
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
                    raise self.fail(f"must be a positive number of EBOPs or null, got {v!r}", at, path)

    def value(self, node: Any, line: int, path: str) -> None:
        if isinstance(node, LinedSeq):
            self.choices(node, line, path)
        elif isinstance(node, LinedMap) and ("low" in node or "high" in node):  # no rule-file mapping has these keys
            self.range(node, line, path)
        elif isinstance(node, LinedMap):
            for key, value in node.items():
                self.value(value, node.lines[key], f"{path}.{key}")

    def choices(self, node: LinedSeq, line: int, path: str) -> None:
        if not node:
            raise self.fail("empty choice list: give at least one value", line, path)
        values = tuple(plain(v) for v in node)
        for i, value in enumerate(values):
            if isinstance(value, list):
                raise self.fail(f"choice {i + 1} is itself a list; a choice is one value", node.lines[i], path)
            if values.index(value) != i:
                raise self.fail(f"choice {value!r} is listed twice", node.lines[i], path)
        self.dims.append(Dimension(path, line, "categorical", choices=values))

    def range(self, node: LinedMap, line: int, path: str) -> None:
        for key in node:
            if key not in _RANGE_KEYS:
                raise self.fail(f"unknown range key {key!r}; a range has low, high, step, log", node.lines[key],
                                f"{path}.{key}")
        if "low" not in node or "high" not in node:
            raise self.fail("a range needs 'low' and 'high'", line, path)
        low, high, step, log = node["low"], node["high"], node.get("step"), node.get("log", False)
        for key, value in (("low", low), ("high", high), ("step", step)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise self.fail(f"must be a number, got {value!r}", node.lines[key], f"{path}.{key}")
        if not isinstance(log, bool):
            raise self.fail(f"expected true or false, got {log!r}", node.lines["log"], f"{path}.log")
        if high < low:
            raise self.fail(f"empty range: high {high} is below low {low}", line, path)
        if step is not None and step <= 0:
            raise self.fail(f"step must be positive, got {step}", node.lines["step"], f"{path}.step")
        if log and (low <= 0 or step is not None):
            raise self.fail("a log range needs low > 0 and no step", line, path)
        if step is not None and abs((high - low) / step - round((high - low) / step)) > 1e-9:
            raise self.fail(f"{low}..{high} is not a whole number of steps of {step}", line, path)
        is_int = all(isinstance(v, int) for v in (low, high) + ((step,) if step is not None else ()))
        self.dims.append(Dimension(path, line, "int" if is_int else "float", low=low, high=high, step=step, log=log))


def loads_space(text: str, source: str = "<space>") -> Space:
    """Parse and validate a space (a rule file with choices). Raises :class:`RuleError` with file, line, key.

    Every choice of every dimension is validated as part of a rule file (the
    other dimensions at their first value), before any training: a choice that
    is not a valid quantizer, sparsity, mode... fails here, naming its line.
    """
    tree = parse_yaml(text, source)
    scanner = _Scanner(source)
    scanner.scan(tree)
    space = Space(source=source, dimensions=tuple(scanner.dims), tree=tree)
    base = {d.name: d.first for d in space.dimensions}
    try:
        space.ruleset(base)  # the structure (unknown keys, missing match...) with the first choices
    except RuleError as exc:
        owner = next((d for d in space.dimensions if exc.key and (d.name == exc.key or d.name.startswith(exc.key + "."))),
                     None)
        if owner is None:
            raise
        raise RuleError(f"choice {_short(owner.first)} is invalid: {exc.message}", source=source, line=owner.line,
                        key=owner.name) from None
    for dim in space.dimensions:
        if dim.name.startswith(_TRAINING + "."):
            continue  # not part of the rule file; checked by the scanner
        for value in dim.values()[1:] if dim.kind == "categorical" else dim.values():
            try:
                space.ruleset({**base, dim.name: value})
            except RuleError as exc:
                raise RuleError(f"choice {_short(value)!s} is invalid: {exc.message}", source=source,
                                line=dim.line, key=dim.name) from None
    return space


def load_space(path: str | Path) -> Space:
    """Read a space file (or a preset by name). Raises :class:`RuleError`."""
    path, text = read_rules_text(path)
    return loads_space(text, str(path))


def is_space(text: str, source: str = "<rules>") -> bool:
    """Does this rule-file text hold choices or ranges (a search space rather than one rule file)?"""
    try:
        tree = parse_yaml(text, source)
    except RuleError:
        return False
    scanner = _Scanner(source)
    try:
        scanner.scan(tree)
    except RuleError:
        return True
    return bool(scanner.dims)
