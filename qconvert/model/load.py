"""Load a model file into Keras 3, with the QKeras layers registered.

``.keras`` archives and ``.h5`` files (Keras 3's legacy loader reads full-model
files saved by Keras 2 too). ``.json``: a Keras 2 (or QKeras 0.9) architecture,
translated by :mod:`qconvert.model.legacy`, with its weights from a Keras 2
``.h5`` beside it (``model_weights.h5`` or ``model.h5`` for ``model.json``) or
named by ``weights=``, loaded by layer name with shape checks. ``safe_mode``
stays on unless the caller turns it off: a Lambda layer's code is never run
from a file by default.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import ModelLoadError

__all__ = [
    "MODEL_SUFFIXES",
    "FileKind",
    "check_model_path",
    "find_weights",
    "load_model",
    "resolve_custom_objects",
    "sniff",
]

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".json")
WEIGHTS_SUFFIXES = (".h5", ".hdf5")
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
        return _load_json(path, weights, safe_mode=safe_mode, custom_objects=custom_objects)
    if weights is not None:
        raise ModelLoadError(f"{path}: holds its own weights; a weights file ({weights}) goes with a .json architecture")
    import keras
    import qkeras  # noqa: F401  registers the Q-layers and quantizers with Keras

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=safe_mode, custom_objects=custom_objects)
    except Exception as exc:  # Keras raises many types for bad files
        if path.suffix.lower() == ".keras":
            model = _load_keras2_archive(path, exc, safe_mode=safe_mode, custom_objects=custom_objects)
        else:
            model = _load_h5_by_translation(path, exc, safe_mode=safe_mode, custom_objects=custom_objects)
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


# --- what a file holds, by content ------------------------------------------------
#: ``keras``: a .keras archive; ``h5_model``: a full-model HDF5 (``model_config``);
#: ``h5_weights``: weights only (Keras 2 ``save_weights`` or Keras 3 ``.weights.h5``);
#: ``json_model``: a Keras 2 architecture; ``corrupt``: a model suffix, unreadable
#: content; ``other``: not a model (data files, reports, ...).
FileKind = Literal["keras", "h5_model", "h5_weights", "json_model", "corrupt", "other"]


@dataclass(frozen=True)
class Sniffed:
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
        return Sniffed("corrupt", f"unreadable HDF5 file: {_message(exc)}")
    if kind != "other" and suffix not in WEIGHTS_SUFFIXES:
        return Sniffed("corrupt", f"an HDF5 Keras file named {suffix or '(no suffix)'}; rename it to .h5")
    return Sniffed(kind)


def _sniff_json(path: Path) -> Sniffed:
    import json

    from .legacy import is_legacy_config

    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Sniffed("corrupt", f"not valid JSON: {_message(exc)}")
    return Sniffed("json_model") if is_legacy_config(config) else Sniffed("other")


# --- Keras 2 architectures: JSON (and .h5 files Keras 3's legacy loader cannot read) ---
def _message(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _keras_message(exc: BaseException) -> str:
    """Keras's message, shortened to the cause a user can act on (an unknown class, safe mode)."""
    import re

    chain, seen = [], exc
    while seen is not None and len(chain) < 8:
        chain.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    unknown = re.search(r"Could not locate class '([^']+)'", " ".join(chain))
    if unknown:
        return (f"layer class {unknown.group(1)!r} is defined by neither Keras nor QKeras; "
                "supply it with --custom-objects module:attr")
    message = _message(exc)
    if "safe_mode" in message:
        message += " (qconvert: pass --unsafe only if you trust the file)"
    return message


def find_weights(json_path: str | Path) -> Path | None:
    """The weights file beside a JSON architecture: ``X_weights.h5``, then ``X.h5`` (and ``.hdf5``)."""
    path = Path(json_path)
    for stem in (f"{path.stem}_weights", path.stem):
        for suffix in WEIGHTS_SUFFIXES:
            candidate = path.with_name(stem + suffix)
            if candidate.is_file():
                return candidate
    return None


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
            raise ModelLoadError(f"--custom-objects {spec!r}: {_message(exc)}") from exc
        if isinstance(obj, dict):
            objects.update(obj)
        else:
            objects[attr] = obj
            objects.setdefault(getattr(obj, "__name__", attr), obj)
    return objects


def _classifier(custom_objects: dict[str, Any] | None) -> Any:
    import keras
    import qkeras

    from .legacy import QKERAS_LAYERS

    def classify(name: str) -> str | None:
        if custom_objects and name in custom_objects:
            return "custom"
        if name in QKERAS_LAYERS and isinstance(getattr(qkeras, name, None), type):
            return "qkeras"
        cls = getattr(keras.layers, name, None)
        if isinstance(cls, type) and issubclass(cls, keras.layers.Layer):
            return "keras"
        return None

    return classify


def _build_from_keras2_config(
    path: Path, config: Any, *, safe_mode: bool, custom_objects: dict[str, Any] | None
) -> Any:
    """The Keras 3 model (weights not loaded) of a Keras 2 model config read from ``path``."""
    import keras

    from .legacy import LegacyConfigError, translate_model

    try:
        translated = translate_model(config, _classifier(custom_objects), safe_mode=safe_mode)
    except LegacyConfigError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    try:
        with keras.saving.custom_object_scope(custom_objects or {}):
            model = keras.saving.deserialize_keras_object(translated, custom_objects=custom_objects, safe_mode=safe_mode)
    except Exception as exc:  # Keras raises many types for configs it cannot build
        raise ModelLoadError(f"{path}: cannot build the model: {_message(exc)}") from exc
    if not isinstance(model, keras.Model):
        raise ModelLoadError(f"{path}: holds a {type(model).__name__}, not a Keras model")
    if not model.built:
        raise ModelLoadError(f"{path}: the architecture gives no input shape, so its weights cannot be loaded")
    return model


def _load_json(path: Path, weights: str | Path | None, *, safe_mode: bool, custom_objects: dict[str, Any] | None) -> Any:
    import json

    from .legacy import is_legacy_config

    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: not a JSON model architecture: {_message(exc)}") from None
    if not is_legacy_config(config):
        raise ModelLoadError(f"{path}: not a Keras model architecture (no 'class_name': Sequential / Model / Functional)")
    weights_path = Path(weights) if weights is not None else find_weights(path)
    if weights_path is None:
        raise ModelLoadError(
            f"{path}: no weights file beside it ({path.stem}_weights.h5 or {path.stem}.h5); name one with --weights"
        )
    if not weights_path.is_file():
        raise ModelLoadError(f"{weights_path}: no such weights file")
    model = _build_from_keras2_config(path, config, safe_mode=safe_mode, custom_objects=custom_objects)
    _load_keras2_weights(model, weights_path)
    return model


def _load_h5_by_translation(path: Path, error: Exception, *, safe_mode: bool, custom_objects: dict[str, Any] | None) -> Any:
    """A Keras 2 full-model .h5 that Keras 3's legacy loader refused: translate its config, or explain."""
    import json

    import h5py

    try:
        with h5py.File(path, "r") as fh:
            raw = fh.attrs.get("model_config")
            weights_only = raw is None and ("layer_names" in fh.attrs or "layers" in fh or "vars" in fh)
    except Exception:  # not readable as HDF5: Keras's message says more
        raw, weights_only = None, False
    if weights_only:
        raise ModelLoadError(f"{path}: cannot load the model: it holds weights only, no architecture "
                             "(load its .json architecture with --weights)") from None
    if raw is None:
        raise ModelLoadError(f"{path}: cannot load the model: {_keras_message(error)}") from error
    try:
        config = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelLoadError(f"{path}: cannot load the model: {_keras_message(error)}") from error
    model = _build_from_keras2_config(path, config, safe_mode=safe_mode, custom_objects=custom_objects)
    _load_keras2_weights(model, path)
    return model


def _keras2_archive_config(path: Path) -> Any:
    """The model config of a ``.keras`` archive Keras 2 (2.13–2.15, tf_keras) wrote, else None."""
    import json

    try:
        with zipfile.ZipFile(path) as archive:
            metadata = json.loads(archive.read("metadata.json")) if "metadata.json" in archive.namelist() else {}
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError):
        return None
    version = str(metadata.get("keras_version", "")) if isinstance(metadata, dict) else ""
    module = str(config.get("module", "")) if isinstance(config, dict) else ""
    if version.startswith("2.") or module.startswith(("keras.src.engine.", "tf_keras.", "keras.engine.")):
        return config
    return None


def _load_keras2_archive(path: Path, error: Exception, *, safe_mode: bool, custom_objects: dict[str, Any] | None) -> Any:
    """A ``.keras`` archive Keras 2 wrote: its config through the legacy translator, its weights by Keras 3's
    loader (both formats key the weights file by the same layer paths); anything else keeps Keras's message."""
    import tempfile

    config = _keras2_archive_config(path)
    if config is None:
        raise ModelLoadError(f"{path}: cannot load the model: {_keras_message(error)}") from error
    model = _build_from_keras2_config(path, config, safe_mode=safe_mode, custom_objects=custom_objects)
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(path) as archive:
        if "model.weights.h5" not in archive.namelist():
            raise ModelLoadError(f"{path}: a Keras 2 archive without model.weights.h5")
        weights = Path(archive.extract("model.weights.h5", tmp))
        try:
            model.load_weights(weights)
        except Exception as exc:  # Keras raises many types for weights that do not fit
            raise ModelLoadError(f"{path}: Keras 2 archive: cannot load its weights: {_message(exc)}") from exc
    return model


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _variable_key(name: str) -> str:
    """``"block/fc1/kernel:0"`` → ``"fc1/kernel"``: the owning layer and the variable."""
    return "/".join(name.split(":")[0].split("/")[-2:])


def _load_keras2_weights(model: Any, weights_path: Path) -> None:
    """Keras 2 weights (``save_weights`` .h5, or a full-model .h5) into ``model``, by layer name, shapes checked."""
    import h5py
    import numpy as np

    try:
        with h5py.File(weights_path, "r") as fh:
            group = fh.get("model_weights", fh)
            if "layer_names" not in group.attrs:
                raise ModelLoadError(f"{weights_path}: not a Keras 2 weights file (no layer_names)")
            stored: dict[str, list[tuple[str, np.ndarray]]] = {}
            for layer_name in map(_text, group.attrs["layer_names"]):
                layer_group = group[layer_name]
                names = [_text(n) for n in layer_group.attrs.get("weight_names", [])]
                if names:
                    stored[layer_name] = [(n, np.asarray(layer_group[n])) for n in names]
    except ModelLoadError:
        raise
    except Exception as exc:  # h5py: truncated or not HDF5
        raise ModelLoadError(f"{weights_path}: cannot read the weights: {_message(exc)}") from None
    for layer in model.layers:
        variables = list(layer.weights)
        if not variables:
            continue
        entries = stored.pop(layer.name, None)
        if entries is None:
            raise ModelLoadError(f"{weights_path}: no weights for layer {layer.name!r}")
        if len(entries) != len(variables):
            raise ModelLoadError(f"{weights_path}: layer {layer.name!r} has {len(entries)} weights in the file, "
                                 f"{len(variables)} in the architecture")
        keys = [_variable_key(v.path) for v in variables]
        by_key = {_variable_key(n): a for n, a in entries}
        arrays = [by_key[k] for k in keys] if sorted(by_key) == sorted(keys) else [a for _, a in entries]
        for variable, array, key in zip(variables, arrays, keys):
            if tuple(variable.shape) != array.shape:
                raise ModelLoadError(f"{weights_path}: layer {layer.name!r}: weight {key.split('/')[-1]!r} has shape "
                                     f"{array.shape} in the file, {tuple(variable.shape)} in the architecture")
        for variable, array in zip(variables, arrays):
            variable.assign(array)
    if stored:
        raise ModelLoadError(f"{weights_path}: weights for layers the architecture lacks: {', '.join(sorted(stored))}")
