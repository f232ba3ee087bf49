"""Export stage: QKeras model → hls4ml project (bridge handlers, derived config, compile, verify, build).

Importing this package does not import hls4ml; :func:`export` does, when it runs.
"""

from .derive import LayerPrecision
from .hls4ml import (
    BACKENDS,
    SYNTHESIS_TOOLS,
    BuildReport,
    Hls4mlOptions,
    Hls4mlResult,
    ImplementedPrecision,
    bops_at_precisions,
    check_options,
    derive_config,
    export,
    implemented_precisions,
    register_handlers,
)

__all__ = [
    "BACKENDS",
    "SYNTHESIS_TOOLS",
    "BuildReport",
    "Hls4mlOptions",
    "Hls4mlResult",
    "ImplementedPrecision",
    "LayerPrecision",
    "bops_at_precisions",
    "check_options",
    "derive_config",
    "export",
    "implemented_precisions",
    "register_handlers",
]
