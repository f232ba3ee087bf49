"""The codemod: Keras model code → QKeras model code, by the same rules as the graph rewriter.

Pure: ``migrate_code(text, ruleset)`` returns the new text and the findings;
nothing is read, written or printed here. Three passes over a LibCST tree, one
module each: :mod:`.collect` finds the Keras layer constructions by qualified
name, :mod:`.plan` decides what the rules make of them, :mod:`.transform`
rewrites them. Then the imports (:mod:`.imports`): what the new code uses is
added to the import block at the top, what became unused is removed with its
comments kept. The result is parsed again before it is handed out; a layer
the codemod cannot rewrite faithfully is left exactly as it was and reported.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper

from ..errors import RuleError
from ..rules import RuleSet
from .collect import SKIP_MARKER, Collector
from .findings import Finding, Status
from .imports import AddImports, RemoveUnusedImports, used_names
from .plan import Planner
from .transform import Transformer

__all__ = ["SKIP_MARKER", "Migration", "check_rules", "migrate_code", "migrate_units"]


@dataclass(frozen=True)
class Migration:
    """The result for one unit of source (a file, or a notebook cell)."""

    code: str
    findings: tuple[Finding, ...]
    status: Status
    rules_used: frozenset[int] = frozenset()  # the rules (by index) that match a layer of the file


# --- the whole -------------------------------------------------------------------
def _parse(code: str) -> tuple[cst.Module | None, Finding | None]:
    try:
        return cst.parse_module(code), None
    except cst.ParserSyntaxError as exc:
        line, col, message = exc.raw_line, exc.raw_column + 1, exc.message
        try:
            ast.parse(code)  # Python's own words are clearer ("'(' was never closed")
        except SyntaxError as py:
            line, col, message = py.lineno or line, py.offset or 1, py.msg
        except ValueError:
            pass
        return None, Finding(line, col, "QC300", f"syntax error: {message}; file left unchanged")


def _reparses(code: str) -> str | None:
    """None when ``code`` parses (LibCST and Python's own parser); else why not."""
    try:
        cst.parse_module(code)
        ast.parse(code)
    except (cst.ParserSyntaxError, SyntaxError, ValueError) as exc:
        return str(exc).strip().splitlines()[0]
    return None


def check_rules(rules: RuleSet) -> None:
    """Raise :class:`RuleError` for rules source code cannot carry out (``integer: auto`` needs a model and data)."""
    if rules.uses_auto:
        raise RuleError("'integer: auto' is resolved from a model and data, which source code does not have: give "
                        "numbers here, or convert the saved model with `qconvert MODEL --rules R --data D`",
                        source=rules.source)


def migrate_units(codes: Sequence[str], rules: RuleSet) -> list[Migration]:
    """Migrate units of one file together (notebook cells): split names are numbered across them.

    A unit that does not parse is returned unchanged with a QC300 finding; the others still migrate.
    Raises :class:`RuleError` for rules with ``integer: auto`` (source code has no data to calibrate on).
    """
    check_rules(rules)
    wrappers: list[MetadataWrapper | None] = []
    collectors: list[Collector] = []
    errors: dict[int, Finding] = {}
    for i, code in enumerate(codes):
        module, error = _parse(code)
        collector = Collector(i)
        if module is None:
            errors[i] = error  # type: ignore[assignment]
            wrappers.append(None)
        else:
            wrapper = MetadataWrapper(module)
            wrapper.visit(collector)
            wrappers.append(wrapper)
        collectors.append(collector)
    planner = Planner(rules, collectors)
    decisions = planner.run()
    used = frozenset(planner.used)
    out: list[Migration] = []
    for i, (code, wrapper) in enumerate(zip(codes, wrappers)):
        if wrapper is None:
            out.append(Migration(code, (errors[i],), Status.FAILED, used))
            continue
        findings = sorted(collectors[i].findings + planner.findings[i])
        mine = {k: d for k, d in decisions.items() if d.site.unit == i}
        if not mine:
            out.append(Migration(code, tuple(findings), Status.UNCHANGED, used))
            continue
        transformer = Transformer(mine)
        module = wrapper.visit(transformer)
        module = module.visit(AddImports(transformer.needed))
        if transformer.removals:
            module = module.visit(RemoveUnusedImports(transformer.removals, used_names(module)))
        new = module.code
        problem = _reparses(new)
        if problem is not None:  # a bug of ours: never hand out code that does not parse
            findings.append(Finding(1, 1, "QC301", f"the migrated code does not parse ({problem}); left unchanged"))
            out.append(Migration(code, tuple(findings), Status.FAILED, used))
            continue
        out.append(Migration(new, tuple(findings), Status.CHANGED if new != code else Status.UNCHANGED, used))
    return out


def migrate_code(code: str, rules: RuleSet) -> Migration:
    """Migrate one module's source text. Pure: reads and writes nothing."""
    return migrate_units([code], rules)[0]
