"""Notebooks: every code cell is migrated, the rest of the document kept.

The code cells of one notebook are migrated as one module (imports in one
cell resolve names in the next, split activations are numbered across them),
joined with a marker comment between cells and split again after; a new
import lands in the cell that holds the imports. IPython line magics
(``%timeit``, ``!pip``) are hidden behind a marker comment while parsing and
restored after; cells starting with a cell magic (``%%``) are left alone. The
JSON is written back with the notebook's own indentation.
"""

from __future__ import annotations

import json

from ..rules import RuleSet
from .findings import Finding, Status
from .migrate import migrate_code

__all__ = ["migrate_notebook"]

_MAGIC = "#\u2063qconvert-magic\u2063"  # a comment the masked magic hides behind
_CELL = "#\u2063qconvert-cell\u2063\n"  # the line between two cells while they are one module


def _mask_magics(source: str) -> str | None:
    """A cell's source with IPython line magics commented out; None for a cell magic."""
    if source.lstrip().startswith("%%"):
        return None
    lines = source.splitlines(keepends=True)
    return "".join(_MAGIC + ln if ln.lstrip().startswith(("%", "!")) else ln for ln in lines)


def _unmask(source: str) -> str:
    return "".join(ln.replace(_MAGIC, "", 1) if ln.lstrip().startswith(_MAGIC) else ln
                   for ln in source.splitlines(keepends=True))


def migrate_notebook(text: str, rules: RuleSet) -> tuple[str, Status, list[Finding], frozenset[int]]:
    """The notebook's new JSON text, its status, findings (``cell``: the cell's 1-based position) and the
    rules that match a layer in it."""
    try:
        nb = json.loads(text)
        cells = nb["cells"]
    except (ValueError, KeyError, TypeError) as exc:
        return text, Status.FAILED, [Finding(1, 1, "QC300", f"not a readable notebook, left unchanged: {exc}")], frozenset()
    picked: list[tuple[int, str]] = []  # (cell index, masked source ending in a newline)
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        masked = _mask_magics(source)
        if masked is not None and _CELL not in masked:
            picked.append((i, masked if masked.endswith("\n") or not masked else masked + "\n"))
    starts, line = [], 1
    for _, masked in picked:
        starts.append(line + 1)  # after the marker line
        line += 1 + masked.count("\n")
    result = migrate_code("".join(_CELL + masked for _, masked in picked), rules)

    def place(f: Finding) -> Finding:
        k = max([j for j, start in enumerate(starts) if start <= f.line] or [0])
        return Finding(max(f.line - starts[k] + 1, 1), f.col, f.code, f.message, cell=picked[k][0] + 1 if picked else None)

    findings = [place(f) for f in result.findings]
    if result.status is not Status.CHANGED:
        return text, result.status, findings, result.rules_used
    parts = result.code.split(_CELL)
    if len(parts) != len(picked) + 1 or parts[0].strip():
        return text, Status.FAILED, findings + [Finding(1, 1, "QC301", "cells could not be told apart after migration; left unchanged")], result.rules_used
    for (i, masked), new in zip(picked, parts[1:]):
        if new == masked:
            continue
        old = cells[i].get("source", "")
        old = "".join(old) if isinstance(old, list) else old
        new = _unmask(new if old.endswith("\n") else new.removesuffix("\n"))
        cells[i]["source"] = new.splitlines(keepends=True) if isinstance(cells[i].get("source"), list) else new
    indent = 1
    second = text.split("\n", 2)[1] if text.count("\n") >= 2 else ""
    if second.strip():
        indent = len(second) - len(second.lstrip(" ")) or 1
    new_text = json.dumps(nb, indent=indent, ensure_ascii=False) + ("\n" if text.endswith("\n") else "")
    return new_text, Status.CHANGED, findings, result.rules_used
