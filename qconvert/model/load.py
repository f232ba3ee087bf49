"""Load a model file into Keras 3, with the QKeras layers registered.

``.keras`` archives and ``.h5`` files (Keras 3's legacy loader reads full-model
files saved by Keras 2 too). ``.json``: a Keras 2 (or QKeras 0.9) architecture,
translated by :mod:`qconvert.model.legacy`, with its weights from a Keras 2
``.h5`` beside it (``model_weights.h5`` or ``model.h5`` for ``model.json``) or
named by ``weights=``, loaded by layer name with shape checks. ``safe_mode``
stays on unless the caller turns it off: a Lambda layer's code is never run
from a file by default.

What a file holds is judged in :mod:`.sniff` (no Keras import); the Keras 2
formats are read in :mod:`.keras2`. This module re-exports the names callers
use (:func:`check_model_path`, :func:`find_weights`, :func:`sniff`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError
from .keras2 import find_weights, load_json_model, load_keras2_archive, load_keras2_h5
from .sniff import MODEL_SUFFIXES, FileKind, Sniffed, check_model_path, short_message, sniff

__all__ = [
    "MODEL_SUFFIXES",
    "FileKind",
    "Sniffed",
    "check_model_path",
    "find_weights",
    "load_model",
    "resolve_custom_objects",
    "sniff",
]


def load_model(
    path: str | Path,
    *,
    safe_mode: bool = True,
    custom_objects: dict[str, Any] | None = None,
    weights: str | Path | None = None,
) -> Any:
    """Load ``path`` (.keras, .h5, or a Keras 2 .json architecture) as an uncompiled Keras 3 model.

    ``weights``: the Keras 2 weights ``.h5`` of a ``.json`` architecture (default:
    found beside it, see :func:`find_weights`). ``custom_objects``: classes and
    functions Keras and QKeras do not define, by name (see
    :func:`resolve_custom_objects`). ``safe_mode=False`` lets a Lambda layer's
    code run: trusted files only.
    """
    path = check_model_path(path)
    if path.suffix.lower() == ".json":
        return load_json_model(path, weights, safe_mode=safe_mode, custom_objects=custom_objects)
    if weights is not None:
        raise ModelLoadError(f"{path}: holds its own weights; a weights file ({weights}) goes with a .json architecture")
    import keras

    from ..runtime import import_qkeras

    import_qkeras()  # registers the Q-layers and quantizers with Keras

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=safe_mode, custom_objects=custom_objects)
    except Exception as exc:  # Keras raises many types for bad files
        if path.suffix.lower() == ".keras":
            model = load_keras2_archive(path, exc, safe_mode=safe_mode, custom_objects=custom_objects)
        else:
            model = load_keras2_h5(path, exc, safe_mode=safe_mode, custom_objects=custom_objects)
    if not isinstance(model, keras.Model):
        raise ModelLoadError(f"{path}: holds a {type(model).__name__}, not a Keras model")
    if path.suffix.lower() == ".keras":
        _restore_rnn_names(model, _archive_config(path))
    return model


#: qkeras-v3 layers whose ``from_config`` hands ``name`` to their cell: reloaded, they are called qlstm_1, ...
_RNN_NAME_LOST = frozenset({"QSimpleRNN", "QLSTM", "QGRU"})


def _archive_config(path: Path) -> Any:
    import json

    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))
    except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError, ValueError):
        return None


def _restore_rnn_names(model: Any, config: Any) -> None:
    """Give the recurrent Q-layers of a loaded model the names the file gives them (nested models too)."""
    entries = config.get("config", {}).get("layers") if isinstance(config, dict) else None
    if not isinstance(entries, list):
        return
    entries = [e for e in entries if isinstance(e, dict) and e.get("class_name") != "InputLayer"]
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    if len(entries) != len(layers):
        return
    for layer, entry in zip(layers, entries):
        if entry.get("class_name") != type(layer).__name__:
            return
        name = entry.get("name") or (entry.get("config") or {}).get("name")
        if type(layer).__name__ in _RNN_NAME_LOST and isinstance(name, str) and layer.name != name:
            layer.name = name
        elif hasattr(layer, "layers"):
            _restore_rnn_names(layer, entry)


def resolve_custom_objects(specs: Any) -> dict[str, Any]:
    """``["module:attr", ...]`` → ``{name: object}``: the objects a user supplies for classes Keras does not know.

    ``attr`` may be a class or function (registered under its name) or a dict of
    them. ``module`` is imported by name (the current folder is searched too) or,
    when it ends in ``.py``, from that file. Nothing is evaluated.
    """
    import importlib
    import importlib.util
    import sys

    objects: dict[str, Any] = {}
    for spec in specs or ():
        module_name, sep, attr = str(spec).rpartition(":")
        if not sep or not module_name or not attr.isidentifier():
            raise ModelLoadError(f"--custom-objects {spec!r}: expected module:attr (e.g. mylayers:BinaryDense)")
        try:
            if module_name.endswith(".py"):
                loader_spec = importlib.util.spec_from_file_location(Path(module_name).stem, module_name)
                if loader_spec is None or loader_spec.loader is None or not Path(module_name).is_file():
                    raise ModuleNotFoundError(f"no such file {module_name}")
                module = importlib.util.module_from_spec(loader_spec)
                loader_spec.loader.exec_module(module)
            else:
                try:
                    module = importlib.import_module(module_name)
                except ModuleNotFoundError:
                    if "" in sys.path or str(Path.cwd()) in sys.path:
                        raise
                    sys.path.insert(0, str(Path.cwd()))
                    module = importlib.import_module(module_name)
            obj = getattr(module, attr)
        except Exception as exc:  # the user's module: any error it raises is reported
            raise ModelLoadError(f"--custom-objects {spec!r}: {short_message(exc)}") from exc
        if isinstance(obj, dict):
            objects.update(obj)
        else:
            objects[attr] = obj
            objects.setdefault(getattr(obj, "__name__", attr), obj)
    return objects
