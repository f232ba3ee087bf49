"""The imports a migration needs added, and those it made unused removed, with their comments kept.

:class:`RemoveUnusedImports` removes the import aliases it is given when no
name in the module refers to them any more (a plain name scan: a name used
anywhere keeps its import, which errs on the safe side). It does the job of
LibCST's ``RemoveImportsVisitor`` at a fraction of its cost (no scope
analysis; see ``benchmarks/bench_migrate.py``) and, unlike it, keeps comments:
when an import statement goes away entirely, its comments (the lines above it
and the one after it) move to the next statement; the comment after a removed
name of a parenthesized import moves above the statement.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

__all__ = ["AddImports", "RemoveUnusedImports", "used_names"]

#: (module, object, alias): ``from module import object as alias``; object None for ``import module as alias``
ImportRef = tuple[str, "str | None", "str | None"]


class _Names(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)  # ``x.Dense`` uses x, not Dense
        return False

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)


def used_names(module: cst.Module) -> set[str]:
    """Every name the module refers to outside its import statements."""
    visitor = _Names()
    module.visit(visitor)
    return visitor.names


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def _comments_of(line: cst.SimpleStatementLine) -> list[cst.EmptyLine]:
    kept = [el for el in line.leading_lines if el.comment is not None]
    trailing = line.trailing_whitespace.comment
    if trailing is not None:
        kept.append(cst.EmptyLine(comment=trailing))
    return kept


def _alias_comments(old: cst.BaseSmallStatement, new: cst.BaseSmallStatement) -> list[cst.EmptyLine]:
    """Comments after the names ``old`` imported that ``new`` no longer does."""
    if not isinstance(old, (cst.Import, cst.ImportFrom)) or not isinstance(new, type(old)):
        return []
    if isinstance(old.names, cst.ImportStar) or isinstance(new.names, cst.ImportStar):
        return []
    kept = {(a.evaluated_name, a.evaluated_alias) for a in new.names}
    out = []
    for alias in old.names:
        ws = alias.comma.whitespace_after if isinstance(alias.comma, cst.Comma) else None
        if ((alias.evaluated_name, alias.evaluated_alias) not in kept and isinstance(ws, cst.ParenthesizedWhitespace)
                and ws.first_line.comment is not None):
            out.append(cst.EmptyLine(comment=ws.first_line.comment))
    return out


class RemoveUnusedImports(cst.CSTTransformer):
    """Removes the aliases of ``candidates`` that no name in ``used`` refers to, keeping comments."""

    def __init__(self, candidates: set[ImportRef], used: set[str]) -> None:
        super().__init__()
        self.candidates = candidates
        self.used = used
        self._orphans: dict[int, list[cst.EmptyLine]] = {}

    def _keep(self, alias: cst.ImportAlias, module: str | None) -> bool:
        name, asname = alias.evaluated_name, alias.evaluated_alias
        ref = (module, name, asname) if module is not None else (name, None, asname)
        if ref not in self.candidates:
            return True
        bound = asname or (name if module is not None else name.split(".")[0])
        return bound in self.used

    def _filter(self, node: cst.Import | cst.ImportFrom, module: str | None) -> cst.Import | cst.ImportFrom | cst.RemovalSentinel:
        if isinstance(node.names, cst.ImportStar):
            return node
        names = [a for a in node.names if self._keep(a, module)]
        if len(names) == len(node.names):
            return node
        if not names:
            return cst.RemoveFromParent()
        if names[-1] is not node.names[-1]:  # the last name went: the new last one takes its comma
            names[-1] = names[-1].with_changes(comma=node.names[-1].comma)
        return node.with_changes(names=names)

    def leave_Import(self, original_node: cst.Import, updated_node: cst.Import) -> cst.Import | cst.RemovalSentinel:
        return self._filter(updated_node, None)

    def leave_ImportFrom(self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom) -> cst.ImportFrom | cst.RemovalSentinel:
        if updated_node.relative or updated_node.module is None:
            return updated_node
        return self._filter(updated_node, _code(updated_node.module))

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine:
        if not updated_node.body and original_node.body:  # LibCST drops the emptied line
            self._orphans[id(original_node)] = _comments_of(original_node)
            return updated_node
        lost = [c for old, new in zip(original_node.body, updated_node.body) for c in _alias_comments(old, new)]
        if lost:  # comments of the names that went: kept above the statement
            return updated_node.with_changes(leading_lines=[*updated_node.leading_lines, *lost])
        return updated_node

    def _carry(self, original: Sequence[cst.CSTNode], updated: Sequence[cst.CSTNode]) -> tuple[list[cst.CSTNode], list[cst.EmptyLine]]:
        """``updated`` with the comments of removed statements carried to the next survivor."""
        survivors = iter(updated)
        out: list[cst.CSTNode] = []
        pending: list[cst.EmptyLine] = []
        for node in original:
            if id(node) in self._orphans:
                pending += self._orphans.pop(id(node))
                continue
            nxt = next(survivors, None)
            if nxt is None:
                break
            if pending and isinstance(nxt, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
                nxt = nxt.with_changes(leading_lines=[*pending, *nxt.leading_lines])
                pending = []
            out.append(nxt)
        out += list(survivors)
        return out, pending

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if not self._orphans:
            return updated_node
        body, pending = self._carry(original_node.body, updated_node.body)
        return updated_node.with_changes(body=body, footer=[*pending, *updated_node.footer])

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        if not self._orphans or len(original_node.body) == len(updated_node.body):
            return updated_node
        body, pending = self._carry(original_node.body, updated_node.body)
        return updated_node.with_changes(body=body, footer=[*pending, *updated_node.footer])


def _is_docstring(stmt: cst.CSTNode) -> bool:
    return (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Expr)
            and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString)))


def _is_import_line(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body)


def _extend(node: cst.ImportFrom, names: list[str]) -> cst.ImportFrom:
    """``from m import a`` → ``from m import a, b, c`` (a one-line import without parentheses)."""
    aliases = list(node.names)  # type: ignore[arg-type]  # never ImportStar here
    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    aliases[-1] = aliases[-1].with_changes(comma=comma)
    aliases += [cst.ImportAlias(cst.Name(name), comma=comma) for name in names]
    aliases[-1] = aliases[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return node.with_changes(names=aliases)


class AddImports(cst.CSTTransformer):
    """Adds ``from module import name`` for each needed pair the module does not import yet.

    Only the import block at the top of the module (after its docstring) is read and changed: a
    name joins an existing one-line ``from module import ...`` there (a parenthesized one, with its
    comments, is left as it is), else a new statement per module (names sorted) goes right after
    that block, and the first statement after the block is kept one blank
    line away. The one import form the codemod adds, without the scope analysis LibCST's
    ``AddImportsVisitor`` runs for the general case (about half of a migration's time).
    """

    def __init__(self, needed: set[tuple[str, str]]) -> None:
        super().__init__()
        self.needed = needed

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if not self.needed:
            return updated_node
        body = list(updated_node.body)
        start = 1 if body and _is_docstring(body[0]) else 0
        end = start
        while end < len(body) and _is_import_line(body[end]):
            end += 1
        missing: dict[str, list[str]] = {}
        for module, name in sorted(self.needed):
            missing.setdefault(module, []).append(name)
        for i in range(start, end):
            line = body[i]
            small = list(line.body)  # type: ignore[union-attr]
            for j, node in enumerate(small):
                if not isinstance(node, cst.ImportFrom) or node.relative or node.module is None:
                    continue
                module = _code(node.module)
                if module not in missing:
                    continue
                if isinstance(node.names, cst.ImportStar):
                    del missing[module]  # everything is imported already
                    continue
                have = {a.evaluated_name for a in node.names if a.asname is None}
                names = [n for n in missing.pop(module) if n not in have]
                if names and node.lpar is None:
                    small[j] = _extend(node, names)
                elif names:
                    missing[module] = names
            body[i] = line.with_changes(body=small)  # type: ignore[union-attr]
        added = [cst.parse_statement(f"from {module} import {', '.join(names)}\n") for module, names in missing.items()]
        if added and end < len(body):
            after = body[end]
            leading = list(getattr(after, "leading_lines", ()))
            if not leading or leading[0].comment is not None:  # keep code one blank line below the imports
                body[end] = after.with_changes(leading_lines=[cst.EmptyLine(), *leading])
        body[end:end] = added
        return updated_node.with_changes(body=body)
