"""Source migration: rewrite Keras model code into QKeras model code (LibCST).

``migrate_code`` is the pure core (text + rules → text + findings);
``migrate_paths`` walks files and folders (``.py`` and ``.ipynb``), with worker
processes, and returns one result per file. Nothing here imports Keras.
"""

from __future__ import annotations

from .findings import CODES, Finding, Kind, Status
from .files import FileResult, Outcome, migrate_file, migrate_paths, unified_diff
from .walk import collect_files
from .migrate import SKIP_MARKER, Migration, migrate_code, migrate_units

__all__ = [
    "CODES",
    "FileResult",
    "Finding",
    "Outcome",
    "collect_files",
    "migrate_file",
    "migrate_paths",
    "unified_diff",
    "Kind",
    "Migration",
    "SKIP_MARKER",
    "Status",
    "migrate_code",
    "migrate_units",
]
