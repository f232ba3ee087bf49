"""The import graph of qconvert: no cycles between modules, and imports that point one way.

The graph is read from the source with :mod:`ast` (nothing is imported): every
``import`` and ``from ... import`` of a qconvert module, at the top of a file or
inside a function, with relative imports resolved. ``from .pkg import name``
counts as an import of ``pkg.name`` when that is a module, else of ``pkg``.

The layers (DESIGN.md), top to bottom; a module may import its own unit (the
first name under ``qconvert``) and any unit of a lower layer::

    api     qconvert (the package root: the public API), __main__, cli
    app     pipeline, batch (+ batch_report), search, source, demo
    stages  model, train, export
    base    rules, quantizers, errors, runtime, io, report (+ sections, qonnx_report), version, targets

Units of one layer may import each other one way only: the graph of units is
acyclic too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "qconvert"

LAYERS: dict[str, tuple[str, ...]] = {
    "api": ("", "__main__", "cli"),
    "app": ("pipeline", "batch", "batch_report", "search", "source", "demo"),
    "stages": ("model", "train", "export"),
    "base": ("rules", "quantizers", "errors", "runtime", "io", "report", "sections", "qonnx_report", "version", "targets"),
}
LEVEL = {unit: level for level, units in enumerate(reversed(LAYERS.values())) for unit in units}

# Imports that break the rules, each with the reason it may: none. An entry that no longer occurs fails the
# test, so the list only shrinks.
ALLOWED: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name → (file, is a package ``__init__``), for every module under qconvert/."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def _imported(node: ast.AST, package: str, modules: Iterable[str]) -> set[str]:
    """The qconvert modules one import statement names (``package``: the package the statement is in)."""
    known = set(modules)
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    if not isinstance(node, ast.ImportFrom):
        return set()
    if node.level:
        parts = package.split(".")
        base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    out = set()
    for alias in node.names:
        if f"{base}.{alias.name}" in known:
            out.add(f"{base}.{alias.name}")
        elif base in known:
            out.add(base)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → the qconvert modules it imports (anywhere in its file), itself excluded."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            found |= _imported(node, package, modules)
        graph[name] = found - {name}
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of ``graph`` (Tarjan's algorithm, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def unit_of(module: str) -> str:
    """``qconvert.model.plan`` → ``model``; the package root → ``""``."""
    return module.split(".")[1] if "." in module else ""


def _without_allowed(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    return {m: {d for d in deps if (m, d) not in ALLOWED} for m, deps in graph.items()}


GRAPH = import_graph()


def test_the_graph_reader_sees_relative_nested_and_in_function_imports():
    """The reader itself, on imports whose targets are known: a cycle or a wrong direction it cannot see
    would pass silently."""
    assert "qconvert.rules.types" in GRAPH["qconvert.rules.builder"]  # from .types import ...
    assert "qconvert.quantizers" in GRAPH["qconvert.model.rewriters.registry"]  # from ...quantizers import (three dots)
    assert "qconvert.model.legacy" in GRAPH["qconvert.model.sniff"]  # imported inside _sniff_json
    assert "qconvert.model.rewriters.activation" in GRAPH["qconvert.model.rewriters"]  # from . import activation
    assert "qconvert.rules" in GRAPH["qconvert.model.plan"]  # from ..rules import (a package's re-exports)
    toy = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert sorted(strongly_connected(toy)) == [["a", "b", "c"], ["d"]]


def test_every_module_belongs_to_a_layer():
    unknown = sorted(m for m in GRAPH if unit_of(m) not in LEVEL)
    assert not unknown, f"add these to a layer in LAYERS: {unknown}"


def test_no_import_cycles_between_modules():
    cycles = [c for c in strongly_connected(_without_allowed(GRAPH)) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_imports_point_down_the_layers():
    upward = sorted((m, d) for m, deps in _without_allowed(GRAPH).items() for d in deps
                    if unit_of(m) != unit_of(d) and LEVEL[unit_of(d)] > LEVEL[unit_of(m)])
    assert not upward, f"imports of a higher layer: {upward}"


def test_units_of_one_layer_import_each_other_one_way():
    units: dict[str, set[str]] = {}
    for module, deps in _without_allowed(GRAPH).items():
        units.setdefault(unit_of(module), set()).update(unit_of(d) for d in deps if unit_of(d) != unit_of(module))
    cycles = [c for c in strongly_connected(units) if len(c) > 1]
    assert not cycles, f"units that import each other: {cycles}"


def test_nothing_below_the_shell_imports_it():
    offenders = sorted((m, d) for m, deps in _without_allowed(GRAPH).items() for d in deps
                       if unit_of(d) == "cli" and unit_of(m) not in ("cli", "__main__"))
    assert not offenders


def test_the_rule_language_imports_only_the_base():
    """rules, quantizers and errors: the bottom of the house, readable without a model or Keras."""
    above = {"model", "train", "export", "search", "source", "pipeline", "batch", "demo", "cli", "__main__", ""}
    offenders = sorted((m, d) for m, deps in GRAPH.items() for d in deps
                       if unit_of(m) in ("rules", "quantizers", "errors") and unit_of(d) in above)
    assert not offenders


def test_the_allow_list_holds_only_imports_that_still_occur():
    stale = sorted(edge for edge in ALLOWED if edge[1] not in GRAPH.get(edge[0], set()))
    assert not stale, f"remove from ALLOWED: {stale}"


def test_the_rule_language_and_model_sniffing_import_no_keras():
    """What `rules check`, `batch` discovery and `migrate` rely on: reading rules, sniffing and translating model
    files import neither Keras, TensorFlow nor QKeras (they are imported when a model is loaded)."""
    code = ("import sys, qconvert.rules, qconvert.model.load, qconvert.model.sniff, qconvert.model.legacy, "
            "qconvert.model.plan, qconvert.source.plan\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'qkeras', 'hls4ml')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent)
    assert out.stdout.strip() == "[]"
