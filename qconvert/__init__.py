"""qconvert: FP32 Keras 3 models → QKeras (qkeras-v3) models, by rule files.

The public API. Importing ``qconvert`` is cheap: Keras and TensorFlow are
imported only when a model is loaded or converted.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "convert",
    "convert_file",
    "plan",
    "load_rules",
    "loads_rules",
    "load_model",
    "read_provenance",
    "QConvertError",
    "RuleError",
    "ModelLoadError",
    "ConversionError",
    "OutputError",
    "DataError",
]

from .errors import ConversionError, DataError, ModelLoadError, OutputError, QConvertError, RuleError  # noqa: E402
from .ruleset import load_rules, loads_rules  # noqa: E402

_LAZY = {
    "convert": ("pipeline", "convert"),
    "convert_file": ("pipeline", "convert_file"),
    "plan": ("pipeline", "plan"),
    "load_model": ("model.load", "load_model"),
    "read_provenance": ("model.save", "read_provenance"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'qconvert' has no attribute {name!r}")
