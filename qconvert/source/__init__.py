"""Source migration: rewrite Keras model code into QKeras model code (LibCST).

``migrate_code`` is the pure core (text + rules → text + findings);
``migrate_paths`` walks files and folders (``.py`` and ``.ipynb``), with worker
processes, and returns one result per file. Nothing here imports Keras.
"""

from __future__ import annotations

from .files import FileResult, Outcome, migrate_file, migrate_paths, unified_diff
from .findings import CODES, Finding, Kind, Status
from .migrate import SKIP_MARKER, Migration, migrate_code, migrate_units
from .walk import collect_files

__all__ = [
    "CODES",
    "SKIP_MARKER",
    "FileResult",
    "Finding",
    "Kind",
    "Migration",
    "Outcome",
    "Status",
    "collect_files",
    "migrate_code",
    "migrate_file",
    "migrate_paths",
    "migrate_units",
    "unified_diff",
]
