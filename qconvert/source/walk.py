"""Which files a migration reads: ``.py`` and ``.ipynb`` under the paths given, minus what .gitignore ignores.

Inside a git work tree, git itself lists the files (``git ls-files --cached
--others --exclude-standard``): ``.gitignore`` at every level, ``.git/info/exclude``
and the global excludes, with git's own semantics, negations included. Outside
one, the ``.gitignore`` files of the walked tree are read with a documented
subset: one pattern a line, ``#`` comments, a trailing ``/`` for folders, a
leading ``/`` anchoring to that ``.gitignore``'s folder, shell globs (``*``,
``?``, ``[...]``, ``**/``); negation (``!``) is not supported. ``.git`` is
always skipped. Paths named on the command line are always migrated.
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import OutputError

__all__ = ["SUFFIXES", "collect_files"]

SUFFIXES = (".py", ".ipynb")


def _git_files(folder: Path) -> list[Path] | None:
    """The files git sees under ``folder`` (tracked, and untracked but not ignored); None outside git."""
    try:
        out = subprocess.run(
            ["git", "-C", str(folder), "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."],
            capture_output=True, timeout=120,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    found = {folder / p for p in out.stdout.decode("utf-8", "surrogateescape").split("\0") if p}
    return [p for p in found if p.suffix in SUFFIXES and p.is_file()]


def _gitignore_patterns(folder: Path) -> list[tuple[Path, str]]:
    path = folder / ".gitignore"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            out.append((folder, line))
    return out


def _ignored(base: Path, pattern: str, path: Path, is_dir: bool) -> bool:
    if pattern.endswith("/"):
        if not is_dir:
            return False
        pattern = pattern.rstrip("/")
    rel = path.relative_to(base).as_posix()
    if pattern.startswith("/") or "/" in pattern:
        pattern = pattern.lstrip("/")
        return fnmatch.fnmatchcase(rel, pattern) or (pattern.startswith("**/") and fnmatch.fnmatchcase(rel, pattern[3:]))
    return fnmatch.fnmatchcase(path.name, pattern)


def _walk(folder: Path) -> Iterable[Path]:
    """Files under ``folder`` with our suffixes, outside git: skipping ``.git`` and .gitignore matches."""
    stack: list[tuple[Path, list[tuple[Path, str]]]] = [(folder, [])]
    while stack:
        current, inherited = stack.pop()
        patterns = inherited + _gitignore_patterns(current)
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            path = Path(entry.path)
            is_dir = entry.is_dir(follow_symlinks=False)
            if entry.name == ".git" or any(_ignored(b, p, path, is_dir) for b, p in patterns):
                continue
            if is_dir:
                stack.append((path, patterns))
            elif entry.is_file() and path.suffix in SUFFIXES:
                yield path


def collect_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files to migrate, sorted by path, without duplicates. Raises OutputError for a missing path."""
    files: dict[Path, Path] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = _git_files(path)
            for p in found if found is not None else _walk(path):
                files.setdefault(p.resolve(), p)
        elif path.is_file():
            files.setdefault(path.resolve(), path)
        else:
            raise OutputError(f"{path}: no such file or folder")
    return sorted(files.values(), key=lambda p: p.as_posix())
