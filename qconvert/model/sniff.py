"""What a file holds, judged by its content, and whether a path can be a model file. No Keras import.

:func:`check_model_path` refuses a path that cannot be a model (missing, a
folder, a suffix qconvert does not read, content that contradicts the suffix)
with a one-line :class:`ModelLoadError`; :func:`sniff` classifies any file
(``batch`` decides by it what to convert) and never raises.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ModelLoadError

__all__ = ["MODEL_SUFFIXES", "WEIGHTS_SUFFIXES", "FileKind", "Sniffed", "check_model_path", "short_message", "sniff"]

#: The suffixes of the model files qconvert loads.
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".json")
#: The suffixes of Keras 2 weights files (beside a ``.json`` architecture).
WEIGHTS_SUFFIXES = (".h5", ".hdf5")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def short_message(exc: BaseException) -> str:
    """An exception's text on one line, at most 300 characters (its class name when it has none)."""
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def check_model_path(path: str | Path) -> Path:
    """The path, if it can be a model file; else a one-line :class:`ModelLoadError`."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file")
    if path.is_dir():
        raise ModelLoadError(f"{path}: is a directory, not a model file")
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ModelLoadError(f"{path}: unsupported model format {suffix or '(no suffix)'!r}; expected .keras, .h5 or .json")
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read: {exc.strerror}") from None
    if suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ModelLoadError(f"{path}: not a Keras .keras archive (truncated, or not a model file)")
    if suffix in (".h5", ".hdf5") and head != _HDF5_SIGNATURE:
        raise ModelLoadError(f"{path}: not an HDF5 file (truncated, or not a model file)")
    if suffix == ".json" and head.lstrip()[:1] not in (b"{", b""):
        raise ModelLoadError(f"{path}: not a JSON model architecture")
    return path


#: ``keras``: a .keras archive; ``h5_model``: a full-model HDF5 (``model_config``);
#: ``h5_weights``: weights only (Keras 2 ``save_weights`` or Keras 3 ``.weights.h5``);
#: ``json_model``: a Keras 2 architecture; ``corrupt``: a model suffix, unreadable
#: content; ``other``: not a model (data files, reports, ...).
FileKind = Literal["keras", "h5_model", "h5_weights", "json_model", "corrupt", "other"]


@dataclass(frozen=True)
class Sniffed:
    """What :func:`sniff` found: ``kind`` (see :data:`FileKind`) and, for ``corrupt``, the ``reason`` in one line."""

    kind: FileKind
    reason: str = ""


def sniff(path: str | Path) -> Sniffed:
    """What ``path`` holds, judged by its content (the suffix only says what it should hold). No Keras import."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        return Sniffed("corrupt", f"cannot read: {exc.strerror or exc}")
    if head == _HDF5_SIGNATURE:
        return _sniff_hdf5(path, suffix)
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except (OSError, zipfile.BadZipFile) as exc:
            return Sniffed("corrupt", f"unreadable zip archive: {exc}")
        if "config.json" in names:
            if suffix != ".keras":
                return Sniffed("corrupt", f"a .keras archive named {suffix or '(no suffix)'}; rename it to .keras")
            return Sniffed("keras")
        return Sniffed("corrupt", "a zip archive without config.json, not a Keras model") if suffix == ".keras" else Sniffed("other")
    if suffix == ".json":
        return _sniff_json(path)
    if suffix == ".keras":
        return Sniffed("corrupt", "not a Keras .keras archive (truncated, or not a model file)")
    if suffix in WEIGHTS_SUFFIXES:
        return Sniffed("corrupt", "not an HDF5 file (truncated, or not a model file)")
    return Sniffed("other")


def _sniff_hdf5(path: Path, suffix: str) -> Sniffed:
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            if "model_config" in fh.attrs:
                kind: FileKind = "h5_model"
            elif "layer_names" in fh.attrs or ("layers" in fh and "vars" in fh) or "model_weights" in fh:
                kind = "h5_weights"
            else:
                kind = "other"
    except Exception as exc:  # h5py raises OSError and others for damaged files
        return Sniffed("corrupt", f"unreadable HDF5 file: {short_message(exc)}")
    if kind != "other" and suffix not in WEIGHTS_SUFFIXES:
        return Sniffed("corrupt", f"an HDF5 Keras file named {suffix or '(no suffix)'}; rename it to .h5")
    return Sniffed(kind)


def _sniff_json(path: Path) -> Sniffed:
    import json

    from .legacy import is_legacy_config

    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Sniffed("corrupt", f"not valid JSON: {short_message(exc)}")
    return Sniffed("json_model") if is_legacy_config(config) else Sniffed("other")
