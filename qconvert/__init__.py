"""qconvert: FP32 Keras 3 models → QKeras (qkeras-v3) models, by rule files.

The public API. Importing ``qconvert`` is cheap: Keras and TensorFlow are
imported only when a model is loaded or converted.
"""

from __future__ import annotations

from typing import Any

from .version import __version__

__all__ = [
    "BatchOptions",
    "ConversionError",
    "DataError",
    "Distill",
    "ExportError",
    "Hls4mlOptions",
    "ModelLoadError",
    "OutputError",
    "QConvertError",
    "RuleError",
    "TrainOptions",
    "VerificationError",
    "__version__",
    "calibrated_plan",
    "convert",
    "convert_file",
    "export_hls4ml",
    "load_model",
    "load_rules",
    "loads_rules",
    "migrate_code",
    "plan",
    "read_provenance",
    "run_batch",
]

from .errors import (
    ConversionError,
    DataError,
    ExportError,
    ModelLoadError,
    OutputError,
    QConvertError,
    RuleError,
    VerificationError,
)
from .rules import load_rules, loads_rules

_LAZY = {
    "convert": ("pipeline", "convert"),
    "convert_file": ("pipeline", "convert_file"),
    "plan": ("pipeline", "plan"),
    "calibrated_plan": ("pipeline", "calibrated_plan"),
    "TrainOptions": ("train.qat", "TrainOptions"),
    "Distill": ("train.qat", "Distill"),
    "load_model": ("model.load", "load_model"),
    "read_provenance": ("model.save", "read_provenance"),
    "export_hls4ml": ("export", "export"),  # imports hls4ml when called
    "Hls4mlOptions": ("export", "Hls4mlOptions"),
    "migrate_code": ("source.migrate", "migrate_code"),  # LibCST only
    "run_batch": ("batch", "run_batch"),
    "BatchOptions": ("batch", "BatchOptions"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'qconvert' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API, the lazily imported names included (``dir(qconvert)``, tab completion)."""
    return sorted(set(globals()) | set(__all__))
