"""Pass 1 of the codemod: find every Keras layer construction, by qualified name.

A metadata visitor (LibCST's ``QualifiedNameProvider``): ``from keras.layers
import Dense as D``, ``L.Dense`` after ``from keras import layers as L``,
``tf.keras.layers.Dense`` and ``tensorflow.keras.layers.Dense`` all resolve to a
Keras ``Dense``. For each construction it records where it stands — the only
argument of ``model.add(...)`` (``add``), an element of ``Sequential([...])``
(``list``), called in place ``Dense(8)(x)`` (``call``), or anywhere else
(``other``) — since that decides where a split-out activation can go. What
cannot be followed statically is reported, never guessed: star imports, layer
classes used as values (held in variables, ``isinstance``), ``getattr`` on a
layers module, ``layers.deserialize``, subclasses of Keras layers and models
(their bodies are left alone too).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import (
    ImportAssignment,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    ScopeProvider,
)

from . import names as N
from .findings import Finding

__all__ = ["SKIP_MARKER", "Collector", "ImportRef", "Site", "mark_repeated"]

SKIP_MARKER = "qconvert: skip"

#: (module, object, alias) of an import a layer class is reached through
ImportRef = tuple[str, "str | None", "str | None"]


@dataclass
class Site:
    """One Keras layer construction (a ``Call`` node of the original tree)."""

    node: cst.Call
    class_name: str
    qualname: str
    line: int
    col: int  # 1-based
    skipped: bool  # under a ``# qconvert: skip`` marker
    context: str = "other"  # add | list | call | other
    statement: cst.SimpleStatementLine | None = None  # "add": the statement the activation follows
    imports: tuple[ImportRef, ...] = ()
    unit: int = 0  # which unit (notebook cell) it is in
    arg_quals: dict[int, frozenset[str]] = field(default_factory=dict)  # id(argument value) → qualified names
    inside: str | None = None  # the Keras subclass whose body holds it
    in_loop: bool = False  # in a loop, comprehension or lambda of its function (or of the module)
    helper: str | None = None  # the innermost function (``def``) that holds it
    repeated: bool = False  # the line may build several layers: see Planner.mark_repeated


def _has_marker(node: cst.CSTNode) -> bool:
    comments = [el.comment for el in getattr(node, "leading_lines", ()) if el.comment is not None]
    if isinstance(node, cst.SimpleStatementLine) and node.trailing_whitespace.comment is not None:
        comments.append(node.trailing_whitespace.comment)
    body = getattr(node, "body", None)
    if isinstance(node, cst.BaseCompoundStatement) and isinstance(body, cst.IndentedBlock) and body.header.comment:
        comments.append(body.header.comment)
    return any(SKIP_MARKER in c.value for c in comments)


def _plain_receiver(node: cst.BaseExpression) -> bool:
    """``model`` or ``self.model``: a receiver the added statement can repeat safely."""
    while isinstance(node, cst.Attribute):
        node = node.value
    return isinstance(node, cst.Name)


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


#: Nodes whose body may run more than once.
_REPEATING = (cst.For, cst.While, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp, cst.Lambda)


class Collector(cst.CSTVisitor):
    """The codemod's first pass: finds every Keras layer construction (by qualified name), the variables and
    helpers that build them, and records them for the planner; reads the tree, changes nothing."""

    METADATA_DEPENDENCIES = (QualifiedNameProvider, PositionProvider, ParentNodeProvider, ScopeProvider)

    def __init__(self, unit: int = 0) -> None:
        super().__init__()
        self.unit = unit
        self.sites: list[Site] = []
        self.findings: list[Finding] = []
        self.names: set[str] = set()  # literal name= of Keras and QKeras layers (split names avoid them)
        self._skip: list[cst.CSTNode] = []
        self._subclass: list[str] = []
        self._marked: set[int] = set()  # list elements with a marker after them
        self.calls: list[tuple[str, bool, str | None]] = []  # calls of plain names: (callee, in a loop, caller def)

    # -- helpers --
    def qualnames(self, node: cst.CSTNode) -> set[str]:
        if not isinstance(node, (cst.Name, cst.Attribute)):
            return set()
        return {q.name for q in self.get_metadata(QualifiedNameProvider, node, set())}

    def where(self, node: cst.CSTNode) -> tuple[int, int]:
        pos = self.get_metadata(PositionProvider, node).start
        return pos.line, pos.column + 1

    def report(self, node: cst.CSTNode, code: str, message: str) -> None:
        if not self._skip:
            self.findings.append(Finding(*self.where(node), code, message))

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.get_metadata(ParentNodeProvider, node, None)

    def enclosing(self, node: cst.CSTNode) -> tuple[bool, str | None]:
        """Whether ``node`` runs in a loop, comprehension or lambda of its function, and that function's name."""
        looped, up = False, self.parent(node)
        while up is not None and not isinstance(up, cst.FunctionDef):
            looped = looped or isinstance(up, _REPEATING)
            up = self.parent(up)
        return looped, up.name.value if isinstance(up, cst.FunctionDef) else None

    # -- markers --
    def on_visit(self, node: cst.CSTNode) -> bool:
        if (isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)) and _has_marker(node)) or id(node) in self._marked:
            self._skip.append(node)
        return super().on_visit(node)

    def visit_List(self, node: cst.List) -> None:
        """A marker after a list element (``Dense(8),  # qconvert: skip``) excludes that element."""
        last = node.elements[-1] if node.elements else None
        for el in node.elements:
            ws = el.comma.whitespace_after if isinstance(el.comma, cst.Comma) else None
            if el is last:
                ws = node.rbracket.whitespace_before
            if isinstance(ws, cst.ParenthesizedWhitespace) and ws.first_line.comment and SKIP_MARKER in ws.first_line.comment.value:
                self._marked.add(id(el.value))

    def on_leave(self, original_node: cst.CSTNode) -> None:
        super().on_leave(original_node)
        if self._skip and self._skip[-1] is original_node:
            self._skip.pop()

    # -- what cannot be followed --
    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        if isinstance(node.names, cst.ImportStar) and node.module is not None and not node.relative:
            module = _code(node.module)
            if N.is_layers_module(module) or N.is_keras_root(module):
                self.report(node, "QC207", f"'from {module} import *': layers behind a star import are not followed")
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        keras_bases = [q for base in node.bases for q in sorted(self.qualnames(base.value))
                       if N.layer_class(q) or N.is_model_class(q)]
        if keras_bases:
            self.report(node, "QC208", f"class {node.name.value} subclasses {keras_bases[0]}: it and its body are left alone")
            self._subclass.append(node.name.value)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        if self._subclass and self._subclass[-1] == original_node.name.value:
            self._subclass.pop()

    def _value_use(self, node: cst.Name | cst.Attribute) -> None:
        classes = [q for q in sorted(self.qualnames(node)) if N.layer_class(q)]
        if not classes or self._subclass:
            return
        parent = self.parent(node)
        if isinstance(parent, cst.Call) and parent.func is node:
            return
        if isinstance(parent, cst.Attribute) and parent.attr is node:
            return  # the Attribute itself is visited
        if isinstance(parent, cst.Arg) and isinstance(self.parent(parent), cst.ClassDef):
            return  # reported by visit_ClassDef
        self.report(node, "QC208", f"{classes[0]} is used as a value, not constructed: left alone")

    def visit_Name(self, node: cst.Name) -> None:
        self._value_use(node)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._value_use(node)

    # -- constructions --
    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name):
            self.calls.append((node.func.value, *self.enclosing(node)))
        quals = self.qualnames(node.func)
        keras_like = any(N.layer_class(q) or q.startswith("qkeras") for q in quals)
        for arg in node.args:
            if keras_like and arg.keyword is not None and arg.keyword.value == "name" and isinstance(arg.value, cst.SimpleString):
                value = arg.value.evaluated_value
                if isinstance(value, str):
                    self.names.add(value)
        if "builtins.getattr" in quals and node.args and any(N.is_layers_module(q) for q in self.qualnames(node.args[0].value)):
            self.report(node, "QC208", "getattr() on a Keras layers module: the class is not known statically; left alone")
            return
        for q in quals:
            module, _, attr = q.rpartition(".")
            if attr == "deserialize" and N.is_layers_module(module):
                self.report(node, "QC208", f"{q}() builds layers from configs: left alone")
                return
        classes = sorted((q, c) for q in quals if (c := N.layer_class(q)))
        if not classes:
            return
        qualname, class_name = classes[0]
        if class_name in N.WEIGHTLESS:
            return
        arg = self.parent(node)
        holder = self.parent(arg) if isinstance(arg, cst.Arg) else None
        if isinstance(holder, cst.Call) and any(N.layer_class(q) == "Activation" for q in self.qualnames(holder.func)):
            self.report(node, "QC205", f"{class_name}() given as an Activation's activation: left alone (write "
                                       f"{class_name}() as its own layer, or Activation with a function name)")
            return
        line, col = self.where(node)
        site = Site(node, class_name, qualname, line, col, skipped=bool(self._skip), unit=self.unit,
                    inside=self._subclass[-1] if self._subclass else None)
        site.context, site.statement = self.context_of(node)
        site.in_loop, site.helper = self.enclosing(node)
        site.imports = self.imports_behind(node.func)
        site.arg_quals = {id(a.value): frozenset(self.qualnames(a.value)) for a in node.args}
        self.sites.append(site)

    def context_of(self, node: cst.Call) -> tuple[str, cst.SimpleStatementLine | None]:
        parent = self.parent(node)
        if isinstance(parent, cst.Call) and parent.func is node:
            return "call", None
        if isinstance(parent, cst.Arg) and parent.keyword is None and not parent.star:
            call = self.parent(parent)
            expr = self.parent(call) if isinstance(call, cst.Call) else None
            line = self.parent(expr) if isinstance(expr, cst.Expr) else None
            if (
                isinstance(call, cst.Call)
                and isinstance(call.func, cst.Attribute)
                and call.func.attr.value == "add"
                and len(call.args) == 1
                and _plain_receiver(call.func.value)
                and isinstance(line, cst.SimpleStatementLine)
                and len(line.body) == 1
            ):
                return "add", line
        if isinstance(parent, cst.Element):
            seq = self.parent(parent)
            arg = self.parent(seq) if isinstance(seq, (cst.List, cst.Tuple)) else None
            call = self.parent(arg) if isinstance(arg, cst.Arg) else None
            if isinstance(call, cst.Call) and any(N.is_sequential(q) for q in self.qualnames(call.func)):
                first = bool(call.args) and call.args[0] is arg and arg.keyword is None
                keyword = arg.keyword is not None and arg.keyword.value == "layers"
                if first or keyword:
                    return "list", None
        return "other", None

    def imports_behind(self, func: cst.BaseExpression) -> tuple[ImportRef, ...]:
        """The import aliases ``func`` is reached through (removed later if nothing else uses them)."""
        root = func
        while isinstance(root, cst.Attribute):
            root = root.value
        if not isinstance(root, cst.Name):
            return ()
        scope = self.get_metadata(ScopeProvider, root, None)
        if scope is None:
            return ()
        out: list[ImportRef] = []
        for assignment in scope[root.value]:
            if not isinstance(assignment, ImportAssignment):
                continue
            imp = assignment.node
            aliases: Sequence[cst.ImportAlias] = imp.names if isinstance(imp.names, Sequence) else ()
            for alias in aliases:
                bound = alias.evaluated_alias or alias.evaluated_name
                if bound.split(".")[0] != root.value:
                    continue
                if isinstance(imp, cst.ImportFrom):
                    if imp.relative or imp.module is None:
                        continue
                    out.append((_code(imp.module), alias.evaluated_name, alias.evaluated_alias))
                else:
                    out.append((alias.evaluated_name, None, alias.evaluated_alias))
        return tuple(out)


def mark_repeated(collectors: Sequence[Collector]) -> None:
    """Set :attr:`Site.repeated` where one line may build several layers: in a loop, comprehension or lambda, or
    in a function that runs more than once (called twice or more, called in a loop, or called from such a
    function), over every unit of the file (a notebook's cells call each other's helpers)."""
    calls = [call for collector in collectors for call in collector.calls]
    count = Counter(callee for callee, _, _ in calls)
    repeated = {callee for callee, looped, _ in calls if looped or count[callee] > 1}
    while grown := {callee for callee, _, caller in calls if caller in repeated} - repeated:
        repeated |= grown
    for collector in collectors:
        for site in collector.sites:
            site.repeated = site.in_loop or site.helper in repeated
