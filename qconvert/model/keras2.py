"""Keras 2 models: JSON architectures, and the ``.h5`` and ``.keras`` files Keras 3's own loader cannot read.

The architecture goes through :mod:`qconvert.model.legacy` (a pure config
translation); the weights are loaded by layer name with their shapes checked
(Keras 2 ``.h5``), or by Keras 3's loader (a Keras 2 ``.keras`` archive keys its
weights by the same layer paths). Every failure is a one-line
:class:`ModelLoadError` naming the file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError
from .sniff import WEIGHTS_SUFFIXES, short_message

__all__ = ["find_weights", "keras_message", "load_json_model", "load_keras2_archive", "load_keras2_h5"]


def keras_message(exc: BaseException) -> str:
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
    message = short_message(exc)
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


def _classifier(custom_objects: dict[str, Any] | None) -> Any:
    import keras

    from ..runtime import import_qkeras

    qkeras = import_qkeras()

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
        raise ModelLoadError(f"{path}: cannot build the model: {short_message(exc)}") from exc
    if not isinstance(model, keras.Model):
        raise ModelLoadError(f"{path}: holds a {type(model).__name__}, not a Keras model")
    if not model.built:
        raise ModelLoadError(f"{path}: the architecture gives no input shape, so its weights cannot be loaded")
    return model


def load_json_model(path: Path, weights: str | Path | None, *, safe_mode: bool, custom_objects: dict[str, Any] | None) -> Any:
    """A Keras 2 (or QKeras 0.9) ``.json`` architecture at ``path`` with its weights: ``weights``, else the file
    :func:`find_weights` finds beside it. Raises :class:`ModelLoadError`."""
    import json

    from .legacy import is_legacy_config

    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: not a JSON model architecture: {short_message(exc)}") from None
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


def load_keras2_h5(path: Path, error: Exception, *, safe_mode: bool, custom_objects: dict[str, Any] | None) -> Any:
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
        raise ModelLoadError(f"{path}: cannot load the model: {keras_message(error)}") from error
    try:
        config = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelLoadError(f"{path}: cannot load the model: {keras_message(error)}") from error
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


def load_keras2_archive(path: Path, error: Exception, *, safe_mode: bool, custom_objects: dict[str, Any] | None) -> Any:
    """A ``.keras`` archive Keras 2 wrote: its config through the legacy translator, its weights by Keras 3's
    loader (both formats key the weights file by the same layer paths); anything else keeps Keras's message."""
    import tempfile

    config = _keras2_archive_config(path)
    if config is None:
        raise ModelLoadError(f"{path}: cannot load the model: {keras_message(error)}") from error
    model = _build_from_keras2_config(path, config, safe_mode=safe_mode, custom_objects=custom_objects)
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(path) as archive:
        if "model.weights.h5" not in archive.namelist():
            raise ModelLoadError(f"{path}: a Keras 2 archive without model.weights.h5")
        weights = Path(archive.extract("model.weights.h5", tmp))
        try:
            model.load_weights(weights)
        except Exception as exc:  # Keras raises many types for weights that do not fit
            raise ModelLoadError(f"{path}: Keras 2 archive: cannot load its weights: {short_message(exc)}") from exc
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
        raise ModelLoadError(f"{weights_path}: cannot read the weights: {short_message(exc)}") from None
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
