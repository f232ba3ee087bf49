"""Atomic outputs: every file qconvert writes goes to a temporary name in its folder, then is renamed.

One helper for all writers (reports, models, rule files, figures, checkpoints, rewritten sources), so that
an interrupted run never leaves half a file, and every output gets the mode an ordinary new file gets under
the process umask (``mkstemp`` alone would make it 0600).
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputError

__all__ = ["atomic_leftovers", "atomic_path", "check_writable", "new_file_mode", "write_bytes_atomic", "write_text_atomic"]


def check_writable(path: str | os.PathLike, what: str) -> None:
    """Raise :class:`OutputError` unless a file can be written at ``path`` (``what``: "the report", ...): its
    folder exists and is writable, and ``path`` is not a folder. For checks before anything long runs."""
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{target}: is a folder; {what} needs a file name")
    if target.parent.exists() and not target.parent.is_dir():
        raise OutputError(f"{target}: {target.parent} is a file, not a folder (for {what})")
    if not target.parent.is_dir():
        raise OutputError(f"{target}: folder {target.parent} does not exist (for {what})")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise OutputError(f"{target}: folder {target.parent} is not writable (for {what})")


def new_file_mode() -> int:
    """The mode (e.g. ``0o644``) a new file gets under the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp", keep_mode: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, rename it onto ``path``.

    The caller writes the temporary file by any means (``model.save``, ``fig.savefig``, ...). ``suffix`` keeps
    the extension some writers insist on (``.keras``, ``.png``). With ``keep_mode``, an existing ``path`` keeps its
    mode (a rewritten source file); otherwise the file gets :func:`new_file_mode`. On error the temporary file is
    removed and ``path`` is untouched.

    Raises:
        OutputError: the folder does not exist or cannot be written (one line naming ``path``).
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"{path}: is a directory")
    if not folder.is_dir():
        raise OutputError(f"{path}: folder {folder} does not exist")
    try:
        mode = path.stat().st_mode & 0o7777 if keep_mode and path.exists() else new_file_mode()
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=folder)
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def atomic_leftovers(path: str | os.PathLike) -> list[Path]:
    """The temporary files :func:`atomic_path` made for ``path`` and never renamed or removed (its process was
    killed mid-write); remove them only while no other process may be writing ``path``."""
    path = Path(path)
    return sorted(path.parent.glob(f".{glob.escape(path.name)}.*"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, keep_mode: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    with atomic_path(path, keep_mode=keep_mode) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    return write_bytes_atomic(path, text.encode("utf-8"))
