"""Files around the codemod: reading and decoding, worker processes, diffs, atomic writes, the outcome.

* Source bytes are decoded as Python does (PEP 263 cookie, BOM) and written
  back in the same encoding; line endings are kept (LibCST writes new lines
  with the file's own newline).
* ``-j N`` runs N worker processes; results come back ordered by path, so the
  output does not depend on N.
* Writes go to a temporary file in the target's folder and are renamed over it.
"""

from __future__ import annotations

import difflib
import io
import json
import tokenize
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import OutputError
from ..io import write_bytes_atomic
from ..rules import RuleSet
from .findings import Finding, Kind, Status
from .migrate import migrate_units
from .notebook import migrate_notebook
from .walk import collect_files

__all__ = ["FileResult", "Outcome", "migrate_file", "migrate_paths", "out_path", "report_json", "unified_diff",
           "write_atomic"]


@dataclass(frozen=True)
class FileResult:
    """One file: its old and new bytes, what happened, what was found."""

    path: str
    status: Status
    old: bytes
    new: bytes
    findings: tuple[Finding, ...]
    encoding: str = "utf-8"
    rules_used: frozenset[int] = frozenset()  # the rules (by index) that match a layer of the file

    @property
    def changed(self) -> bool:
        return self.status is Status.CHANGED

    @property
    def leftovers(self) -> list[Finding]:
        return [f for f in self.findings if f.kind is Kind.LEFTOVER]


def _decode(data: bytes) -> tuple[str, str]:
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding), encoding


def migrate_file(path: str | Path, rules: RuleSet) -> FileResult:
    """Migrate one ``.py`` or ``.ipynb`` file in memory; nothing is written."""
    path = Path(path)
    name = path.as_posix()
    try:
        data = path.read_bytes()
    except OSError as exc:
        return FileResult(name, Status.FAILED, b"", b"", (Finding(1, 1, "QC302", f"cannot read: {exc.strerror}", name),))
    try:
        text, encoding = _decode(data)
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        return FileResult(name, Status.FAILED, data, data, (Finding(1, 1, "QC302", f"cannot decode: {exc}", name),))
    if path.suffix == ".ipynb":
        new_text, status, findings, used = migrate_notebook(text, rules)
    else:
        result = migrate_units([text], rules)[0]
        new_text, status, findings, used = result.code, result.status, list(result.findings), result.rules_used
    ordered = tuple(sorted((f.at(name, f.cell) for f in findings), key=lambda f: (f.cell or 0, f.line, f.col, f.code)))
    new = new_text.encode(encoding) if status is Status.CHANGED else data
    return FileResult(name, status, data, new, ordered, encoding, used)


def _job(args: tuple[str, RuleSet]) -> FileResult:
    return migrate_file(*args)


def migrate_paths(paths: Sequence[str | Path], rules: RuleSet, jobs: int = 1) -> list[FileResult]:
    """Migrate every file under ``paths`` with ``jobs`` worker processes; results ordered by path."""
    files = collect_files(paths)
    if jobs <= 1 or len(files) <= 1:
        return [migrate_file(f, rules) for f in files]
    with ProcessPoolExecutor(max_workers=min(jobs, len(files))) as pool:
        chunk = max(1, len(files) // (jobs * 8))
        return list(pool.map(_job, [(str(f), rules) for f in files], chunksize=chunk))


# --- output -------------------------------------------------------------------------
def _diff_name(path: str) -> str:
    """The path a diff names: relative to the working folder when inside it (so ``git apply`` finds it)."""
    p = Path(path)
    if p.is_absolute():
        try:
            return p.relative_to(Path.cwd()).as_posix()
        except ValueError:
            return p.as_posix().lstrip("/")
    return p.as_posix().removeprefix("./")


def unified_diff(result: FileResult) -> str:
    """A unified diff ``git apply`` (and ``patch -p1``) accepts: a/ and b/ prefixes, line endings as in the file."""
    if not result.changed:
        return ""
    old = result.old.decode(result.encoding).splitlines(keepends=True)
    new = result.new.decode(result.encoding).splitlines(keepends=True)
    name = _diff_name(result.path)
    lines = [f"diff --git a/{name} b/{name}\n"]
    for line in difflib.unified_diff(old, new, f"a/{name}", f"b/{name}"):
        if line.startswith(("---", "+++", "@@")):
            line = line.rstrip("\r\n") + "\n"
        lines.append(line)
        if not line.endswith("\n"):
            lines.append("\n\\ No newline at end of file\n")
    return "".join(lines)


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating its folder; a rewritten file keeps its mode."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    write_bytes_atomic(path, data, keep_mode=True)


def out_path(file: str | Path, roots: Sequence[str | Path], out_dir: str | Path) -> Path:
    """Where ``--out`` puts ``file``: its path under the folder it was found in (a file named alone: its name)."""
    file = Path(file).resolve()
    for root in roots:
        root = Path(root).resolve()
        if root.is_dir() and file.is_relative_to(root):
            return Path(out_dir) / file.relative_to(root)
    return Path(out_dir) / file.name


@dataclass(frozen=True)
class Outcome:
    """A run's results and the exit code they make (as black's Report: the report owns the exit code).

    0: nothing to do, or everything written; 1: a file failed (syntax error,
    unreadable), changes pending under ``check``, or leftovers under ``strict``.
    """

    results: tuple[FileResult, ...]
    check: bool = False
    strict: bool = False

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status is Status.FAILED]

    @property
    def changed(self) -> list[FileResult]:
        return [r for r in self.results if r.changed]

    @property
    def leftovers(self) -> list[Finding]:
        return [f for r in self.results for f in r.leftovers]

    @property
    def exit_code(self) -> int:
        if self.failed or (self.check and self.changed) or (self.strict and self.leftovers):
            return 1
        return 0

    def summary(self) -> str:
        n = len(self.results)
        return (f"{n} file{'s' if n != 1 else ''}: {len(self.changed)} to change, "
                f"{n - len(self.changed) - len(self.failed)} unchanged, {len(self.failed)} failed; "
                f"{len(self.leftovers)} construct(s) left unconverted")


def report_json(outcome: Outcome, rules: RuleSet) -> str:
    """The ``--report`` document: every file, its status and findings, and the totals."""
    doc = {
        "rules": rules.source,
        "rules_sha256": rules.sha256,
        "files": [
            {"path": r.path, "status": r.status.value, "findings": [f.to_dict() for f in r.findings]}
            for r in outcome.results
        ],
        "totals": {
            "files": len(outcome.results),
            "changed": len(outcome.changed),
            "failed": len(outcome.failed),
            "leftovers": len(outcome.leftovers),
        },
        "exit_code": outcome.exit_code,
    }
    return json.dumps(doc, indent=2) + "\n"
