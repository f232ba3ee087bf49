"""Load a model file into Keras 3, with the QKeras layers registered.

``.keras`` archives and ``.h5`` files (Keras 3's legacy loader reads full-model
files saved by Keras 2 too). ``safe_mode`` stays on unless the caller turns it
off: a Lambda layer's code is never run from a file by default.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError

__all__ = ["load_model", "check_model_path", "MODEL_SUFFIXES"]

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def check_model_path(path: str | Path) -> Path:
    """The path, if it can be a model file; else a one-line :class:`ModelLoadError`."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file")
    if path.is_dir():
        raise ModelLoadError(f"{path}: is a directory, not a model file")
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ModelLoadError(f"{path}: unsupported model format {suffix or '(no suffix)'!r}; expected .keras or .h5")
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read: {exc.strerror}") from None
    if suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ModelLoadError(f"{path}: not a Keras .keras archive (truncated, or not a model file)")
    if suffix in (".h5", ".hdf5") and head != _HDF5_SIGNATURE:
        raise ModelLoadError(f"{path}: not an HDF5 file (truncated, or not a model file)")
    return path


def load_model(path: str | Path, *, safe_mode: bool = True, custom_objects: dict[str, Any] | None = None) -> Any:
    """Load ``path`` (.keras or .h5) as an uncompiled Keras 3 model."""
    path = check_model_path(path)
    import keras
    import qkeras  # noqa: F401  registers the Q-layers and quantizers with Keras

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=safe_mode, custom_objects=custom_objects)
    except Exception as exc:  # Keras raises many types for bad files
        message = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ModelLoadError(f"{path}: cannot load the model: {message}") from exc
    if not isinstance(model, keras.Model):
        raise ModelLoadError(f"{path}: holds a {type(model).__name__}, not a Keras model")
    return model
