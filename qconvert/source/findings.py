"""What a migration reports: a closed set of statuses and frozen findings.

Every finding prints as ``file:line:col CODE message``. Codes::

    QC100  a layer rewritten to its Q-layer              (change)
    QC101  an activation split out of ``activation=``     (change)
    QC102  an activation layer rewritten to QActivation  (change)
    QC200  kept float by a ``keep: true`` rule            (kept)
    QC201  no rule gives it quantizers: left float        (leftover)
    QC202  Keras layer with weights qconvert cannot rewrite (leftover)
    QC203  arguments the Q-layer does not accept: refused (leftover)
    QC204  ``activation=`` cannot be split where the layer stands (leftover)
    QC205  an argument the codemod cannot read: an unknown activation, a
           non-literal ``name=`` while rules select by name (leftover)
    QC206  ``*args`` / ``**kwargs`` in the call (leftover)
    QC207  star import of Keras layers (leftover)
    QC208  a layer class used dynamically: held in a variable, getattr,
           ``layers.deserialize``, subclassed (and the subclass's body) (leftover)
    QC209  excluded by ``# qconvert: skip``                 (kept)
    QC210  BatchNormalization to fold: needs trained weights (kept)
    QC211  no QKeras quantizer for it (softmax, ...) or float as asked (kept)
    QC300  the file does not parse: left unchanged          (error)
    QC301  the output did not re-parse: left unchanged      (error)
    QC302  the file cannot be read or decoded               (error)
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["CODES", "Finding", "Kind", "Status"]


class Status(str, enum.Enum):
    """What a migration did to one file."""

    UNCHANGED = "unchanged"  # nothing to rewrite
    CHANGED = "changed"  # new text differs from the old
    FAILED = "failed"  # could not be migrated; left byte-for-byte as it was


class Kind(str, enum.Enum):
    """What a finding is: a change made, something kept as asked, a leftover the rules wanted converted, ..."""

    CHANGE = "change"
    KEPT = "kept"  # left as the rules or a marker ask
    LEFTOVER = "leftover"  # left unconverted where the rules wanted a conversion (--strict refuses)
    ERROR = "error"


CODES: dict[str, Kind] = {
    "QC100": Kind.CHANGE, "QC101": Kind.CHANGE, "QC102": Kind.CHANGE,
    "QC200": Kind.KEPT, "QC201": Kind.LEFTOVER, "QC202": Kind.LEFTOVER, "QC203": Kind.LEFTOVER,
    "QC204": Kind.LEFTOVER, "QC205": Kind.LEFTOVER, "QC206": Kind.LEFTOVER, "QC207": Kind.LEFTOVER,
    "QC208": Kind.LEFTOVER, "QC209": Kind.KEPT, "QC210": Kind.KEPT, "QC211": Kind.KEPT,
    "QC300": Kind.ERROR, "QC301": Kind.ERROR, "QC302": Kind.ERROR,
}  # fmt: skip


@dataclass(frozen=True, order=True)
class Finding:
    """One thing the codemod did or left, at ``line:col`` (both 1-based, as compilers and linters print them)."""

    line: int
    col: int
    code: str
    message: str
    path: str = "<string>"
    cell: int | None = None  # notebook code cell (0-based), None for .py

    @property
    def kind(self) -> Kind:
        return CODES[self.code]

    def at(self, path: str, cell: int | None = None) -> Finding:
        return Finding(self.line, self.col, self.code, self.message, path, cell)

    def __str__(self) -> str:
        where = self.path if self.cell is None else f"{self.path}[cell {self.cell}]"
        return f"{where}:{self.line}:{self.col} {self.code} {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind.value}
