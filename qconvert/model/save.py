"""Write a converted model atomically, with its provenance inside the archive.

The ``.keras`` archive gets one more member, ``qconvert.json``: the rule file
and its SHA-256, the input model, and the qconvert / Keras / QKeras versions.
Keras ignores it when loading; :func:`read_provenance` reads it back.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..io import atomic_path

__all__ = ["PROVENANCE_MEMBER", "read_provenance", "save_model"]

PROVENANCE_MEMBER = "qconvert.json"


def save_model(model: Any, path: str | Path, provenance: dict[str, Any]) -> Path:
    """Save ``model`` to ``path`` (.keras) through a temporary file and a rename."""
    path = Path(path)
    if path.suffix != ".keras":
        raise OutputError(f"{path}: the output must be a .keras file")
    if path.is_dir():
        raise OutputError(f"{path}: is a directory")
    with atomic_path(path, suffix=".tmp.keras") as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(PROVENANCE_MEMBER, json.dumps(provenance, indent=2, sort_keys=True))
    return path


def read_provenance(path: str | Path) -> dict[str, Any] | None:
    """The provenance qconvert stored in a .keras file, or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            if PROVENANCE_MEMBER not in archive.namelist():
                return None
            return json.loads(archive.read(PROVENANCE_MEMBER))
    except (OSError, zipfile.BadZipFile, json.JSONDecodeError):
        return None
