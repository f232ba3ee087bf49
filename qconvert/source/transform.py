"""Pass 3 of the codemod: apply the decisions to the tree, keeping its layout and comments.

A layer becomes its Q-layer call with the quantizer keywords appended
(``kernel_quantizer=quantized_bits(6, 0, alpha=1)``: ``str(spec)``, the QKeras
spelling, with PEP 8 spaces). A split activation follows the layer: the next
``model.add(...)`` statement, the next element of a ``Sequential([...])`` list,
or a call around the layer's call, ``QActivation(...)(QDense(...)(x))``.
New arguments and elements copy the separators around them (one line, or one
a line), and no comment is duplicated or lost with an argument that goes.
The imports the new code needs are collected in :attr:`Transformer.needed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import libcst as cst

from ..quantizers import QuantizerSpec
from . import names as N
from .collect import ImportRef
from .plan import Decision

__all__ = ["Transformer"]

_NO_SPACE = cst.SimpleWhitespace("")
_SPACE_COMMA = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


# --- layout helpers -----------------------------------------------------------
def _comment(ws: cst.BaseParenthesizableWhitespace | None) -> cst.Comment | None:
    return ws.first_line.comment if isinstance(ws, cst.ParenthesizedWhitespace) else None


def _without_comment(ws: cst.BaseParenthesizableWhitespace) -> cst.BaseParenthesizableWhitespace:
    if isinstance(ws, cst.ParenthesizedWhitespace) and ws.first_line.comment is not None:
        return ws.with_changes(first_line=cst.TrailingWhitespace())
    return ws


def _with_comment(comma: cst.Comma, comment: cst.Comment | None) -> cst.Comma:
    ws = comma.whitespace_after
    if comment is None or not isinstance(ws, cst.ParenthesizedWhitespace) or ws.first_line.comment is not None:
        return comma
    line = cst.TrailingWhitespace(whitespace=cst.SimpleWhitespace("  "), comment=comment)
    return comma.with_changes(whitespace_after=ws.with_changes(first_line=line))


def _with_lines(comma: cst.Comma, comments: Sequence[cst.Comment]) -> cst.Comma:
    """``comma`` followed by ``comments``, each on a line of its own at the arguments' indentation."""
    ws = comma.whitespace_after
    if not comments or not isinstance(ws, cst.ParenthesizedWhitespace):
        return comma
    lines = [cst.EmptyLine(indent=ws.indent, whitespace=ws.last_line, comment=c) for c in comments]
    return comma.with_changes(whitespace_after=ws.with_changes(empty_lines=[*ws.empty_lines, *lines]))


def _bare(comma: cst.Comma) -> cst.Comma:
    ws = comma.whitespace_after
    if isinstance(ws, cst.ParenthesizedWhitespace):
        return comma.with_changes(whitespace_after=ws.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=[]))
    return comma


def _separator(commas: Sequence[cst.Comma | cst.MaybeSentinel], opening: cst.BaseParenthesizableWhitespace) -> cst.Comma:
    """The comma between items: the first one there is, or one in the layout of the opening bracket."""
    for comma in commas:
        if isinstance(comma, cst.Comma):
            return _bare(comma)
    if isinstance(opening, cst.ParenthesizedWhitespace):
        return cst.Comma(whitespace_after=cst.ParenthesizedWhitespace(indent=opening.indent, last_line=opening.last_line))
    return _SPACE_COMMA


def _kwarg(name: str, value: cst.BaseExpression) -> cst.Arg:
    return cst.Arg(value=value, keyword=cst.Name(name), equal=cst.AssignEqual(whitespace_before=_NO_SPACE, whitespace_after=_NO_SPACE))


def _spec_expr(spec: QuantizerSpec) -> cst.Call:
    """``quantized_bits(6, 0, alpha=1)``: ``str(spec)`` with a space after each comma."""
    call = cst.ensure_type(cst.parse_expression(str(spec)), cst.Call)
    last = len(call.args) - 1
    return call.with_changes(args=[a.with_changes(comma=_SPACE_COMMA if i < last else cst.MaybeSentinel.DEFAULT)
                                   for i, a in enumerate(call.args)])


@dataclass
class _Entry:
    arg: cst.Arg
    own_comma: cst.Comma | None = None  # an argument that was not last keeps its comma
    comment: cst.Comment | None = None  # a comment to put after it
    was_last: bool = False
    lines: list[cst.Comment] = field(default_factory=list)  # comments of dropped arguments, on lines after it


def _assemble(original: Sequence[cst.Arg], entries: list[_Entry], opening: cst.BaseParenthesizableWhitespace) -> list[cst.Arg]:
    """The new argument list, laid out as ``original`` was."""
    sep = _separator([a.comma for a in original[:-1]], opening)
    last = original[-1] if original else None
    out: list[cst.Arg] = []
    for i, entry in enumerate(entries):
        arg = entry.arg
        if i < len(entries) - 1:
            comma = _with_lines(_with_comment(entry.own_comma or sep, entry.comment), entry.lines)
            after = _NO_SPACE if entry.was_last else arg.whitespace_after_arg
            out.append(arg.with_changes(comma=comma, whitespace_after_arg=after))
        elif last is None:
            out.append(arg.with_changes(comma=cst.MaybeSentinel.DEFAULT))
        elif entry.was_last:
            out.append(arg)
        else:
            comma = last.comma
            if isinstance(comma, cst.Comma):
                comma = _with_lines(comma.with_changes(whitespace_after=_without_comment(comma.whitespace_after)),
                                    entry.lines)
            out.append(arg.with_changes(comma=comma, whitespace_after_arg=_without_comment(last.whitespace_after_arg)))
    return out


# --- the transformer ------------------------------------------------------------
class Transformer(cst.CSTTransformer):
    """Rewrites the sites of ``decisions`` (keyed by id of the original Call node)."""

    def __init__(self, decisions: dict[int, Decision]) -> None:
        super().__init__()
        self.decisions = decisions
        self.needed: set[tuple[str, str]] = set()  # (module, name): ``from module import name``
        self.removals: set[ImportRef] = set()

    def need(self, module: str, obj: str) -> None:
        self.needed.add((module, obj))

    def quantizer(self, spec: QuantizerSpec) -> cst.Call:
        self.need("qkeras", spec.name)
        return _spec_expr(spec)

    def activation_layer(self, decision: Decision, func: cst.BaseExpression) -> cst.Call:
        """The layer that computes the split activation: a QActivation, or a float Activation."""
        split = decision.split
        assert split is not None  # only called for decisions with a split
        if split.spec is not None:
            self.need("qkeras", "QActivation")
            target: cst.BaseExpression = cst.Name("QActivation")
            value: cst.BaseExpression = self.quantizer(split.spec)
        else:
            value = cst.SimpleString(f"{decision.quote}{split.function}{decision.quote}")
            if isinstance(func, cst.Attribute):  # L.Dense → L.Activation, tf.keras.layers.Dense → ...Activation
                target = func.with_changes(attr=cst.Name("Activation"))
            else:
                self.need(N.layers_module_of(decision.site.qualname), "Activation")
                target = cst.Name("Activation")
        if decision.site.repeated:  # one line, several layers: Keras gives each its own name
            return cst.Call(func=target, args=[_kwarg("activation", value)])
        name = cst.SimpleString(f"{decision.quote}{split.name}{decision.quote}")
        return cst.Call(func=target, args=[_kwarg("activation", value).with_changes(comma=_SPACE_COMMA), _kwarg("name", name)])

    # -- the layer call itself --
    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        decision = self.decisions.get(id(original_node))
        if decision is not None:
            updated_node = self.rewrite(decision, updated_node)
        inner = self.decisions.get(id(original_node.func)) if isinstance(original_node.func, cst.Call) else None
        if inner is not None and inner.split is not None and inner.site.context == "call":
            layer = self.activation_layer(inner, cst.ensure_type(original_node.func, cst.Call).func)
            return cst.Call(func=layer, args=[cst.Arg(updated_node)])
        return updated_node

    def rewrite(self, decision: Decision, updated: cst.Call) -> cst.Call:
        site = decision.site
        func = updated.func
        if decision.target is not None:
            self.need("qkeras", decision.target)
            func = cst.Name(decision.target)
            self.removals.update(site.imports)
        keras_order = N.KERAS_POSITIONAL.get(site.class_name, ())
        q_order = N.Q_POSITIONAL.get(decision.target or "", keras_order)
        drop = decision.drop | ({"alpha"} if site.class_name == "LeakyReLU" and decision.activation_arg is not None else set())
        original = list(updated.args)
        entries: list[_Entry] = []
        pending: cst.Comment | None = None
        position = 0
        as_keywords = False  # once a positional argument goes or moves, the ones after it become keywords
        for i, arg in enumerate(original):
            is_last = i == len(original) - 1
            key = arg.keyword.value if arg.keyword is not None else None
            if arg.keyword is None and not arg.star:
                key, position = keras_order[position], position + 1
                if key not in drop and (as_keywords or position > len(q_order) or q_order[position - 1] != key):
                    arg = arg.with_changes(keyword=cst.Name(key), equal=cst.AssignEqual(whitespace_before=_NO_SPACE,
                                                                                         whitespace_after=_NO_SPACE))
                    as_keywords = True
            comment = _comment(arg.comma.whitespace_after) if isinstance(arg.comma, cst.Comma) else None
            if is_last:
                comment = comment or _comment(arg.whitespace_after_arg)
            if key in drop:
                as_keywords = as_keywords or arg.keyword is None
                if comment is not None and entries:  # the comment stays, on a line of its own
                    entries[-1].lines.append(comment)
                elif comment is not None:
                    pending = comment
                continue
            entry = _Entry(arg, own_comma=None if is_last else (arg.comma if isinstance(arg.comma, cst.Comma) else None),
                           comment=comment if is_last else None, was_last=is_last)
            if pending is not None and entry.comment is None and comment is None:
                entry.comment, pending = pending, None
            entries.append(entry)
        lead = [_Entry(_kwarg("activation", self.quantizer(decision.activation_arg)))] if decision.activation_arg else []
        extra = [_Entry(_kwarg(f"{role}_quantizer", self.quantizer(spec))) for role, spec in decision.quantizers]
        args = _assemble(original, [*lead, *entries, *extra], updated.whitespace_before_args)
        return updated.with_changes(func=func, args=args)

    # -- a split activation as the next element of a Sequential list --
    def _split_after(self, value: cst.BaseExpression, context: str) -> Decision | None:
        decision = self.decisions.get(id(value))
        if decision is not None and decision.split is not None and decision.site.context == context:
            return decision
        return None

    def _leave_sequence(self, original_node: cst.List | cst.Tuple, updated_node: cst.List | cst.Tuple) -> cst.List | cst.Tuple:
        if not any(self._split_after(el.value, "list") for el in original_node.elements):
            return updated_node
        opening = original_node.lbracket.whitespace_after if isinstance(original_node, cst.List) else (
            original_node.lpar[0].whitespace_after if original_node.lpar else _NO_SPACE)
        sep = _separator([el.comma for el in original_node.elements[:-1]], opening)
        count = len(updated_node.elements)
        out: list[cst.BaseElement] = []
        for i, (orig, new) in enumerate(zip(original_node.elements, updated_node.elements)):
            decision = self._split_after(orig.value, "list")
            if decision is None:
                out.append(new)
                continue
            layer = self.activation_layer(decision, cst.ensure_type(orig.value, cst.Call).func)
            if i < count - 1 and isinstance(new.comma, cst.Comma):
                out += [new, cst.Element(value=layer, comma=_bare(new.comma))]
            else:  # the last element: a comment after it (held by the closing bracket) stays on its line
                closing = updated_node.rbracket if isinstance(updated_node, cst.List) else None
                comment = _comment(closing.whitespace_before) if closing is not None else None
                trailing = new.comma if isinstance(new.comma, cst.Comma) else cst.MaybeSentinel.DEFAULT
                out += [new.with_changes(comma=_with_comment(sep, comment)), cst.Element(value=layer, comma=trailing)]
                if closing is not None and comment is not None and isinstance(sep.whitespace_after, cst.ParenthesizedWhitespace):
                    updated_node = updated_node.with_changes(
                        rbracket=closing.with_changes(whitespace_before=_without_comment(closing.whitespace_before)))
        return updated_node.with_changes(elements=out)

    def leave_List(self, original_node: cst.List, updated_node: cst.List) -> cst.BaseExpression:
        return self._leave_sequence(original_node, updated_node)

    def leave_Tuple(self, original_node: cst.Tuple, updated_node: cst.Tuple) -> cst.BaseExpression:
        return self._leave_sequence(original_node, updated_node)

    # -- a split activation as the next model.add(...) statement --
    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.FlattenSentinel[cst.SimpleStatementLine]:
        if len(original_node.body) != 1 or not isinstance(original_node.body[0], cst.Expr):
            return updated_node
        call = original_node.body[0].value
        if not (isinstance(call, cst.Call) and call.args):
            return updated_node
        decision = self._split_after(call.args[0].value, "add")
        if decision is None or decision.site.statement is not original_node:
            return updated_node
        receiver = cst.ensure_type(cst.ensure_type(updated_node.body[0], cst.Expr).value, cst.Call).func
        layer = self.activation_layer(decision, cst.ensure_type(call.args[0].value, cst.Call).func)
        added = cst.SimpleStatementLine(body=[cst.Expr(cst.Call(func=receiver.deep_clone(), args=[cst.Arg(layer)]))])
        return cst.FlattenSentinel([updated_node, added])
