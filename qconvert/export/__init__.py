"""Export stage: QKeras model → hls4ml project (bridge handlers, derived config, compile, verify, build) and RTL.

Importing this package does not import hls4ml; :func:`export` does, when it runs. The modules:
:mod:`.options` (what is asked for), :mod:`.derive` and :mod:`.precision` (the types), :mod:`.hls4ml`
(the orchestration), :mod:`.emulate` (the C++ run in a child), :mod:`.inputs` and :mod:`.verify`
(what is checked, and :class:`Agreement`, the one verification result of every target), :mod:`.build`
(synthesis), :mod:`.rtl` (da4ml, Verilator, yosys).
"""

from .build import BuildReport
from .derive import LayerPrecision
from .hls4ml import (
    Hls4mlResult,
    ImplementedPrecision,
    bops_at_precisions,
    derive_config,
    export,
    implemented_precisions,
    preflight,
    register_handlers,
)
from .options import BACKENDS, SYNTHESIS_TOOLS, Hls4mlOptions, check_options
from .verify import Agreement, OutputCheck

__all__ = [
    "BACKENDS",
    "SYNTHESIS_TOOLS",
    "Agreement",
    "BuildReport",
    "Hls4mlOptions",
    "Hls4mlResult",
    "ImplementedPrecision",
    "LayerPrecision",
    "OutputCheck",
    "bops_at_precisions",
    "check_options",
    "derive_config",
    "export",
    "implemented_precisions",
    "preflight",
    "register_handlers",
]
