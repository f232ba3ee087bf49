"""The options of the hls4ml export (:class:`Hls4mlOptions`), their validation, and the user's hls4ml YAML.

No hls4ml import: :func:`check_options` runs before any work (the CLI calls it before converting), and
da4ml is imported only to check that it is installed when the ``distributed_arithmetic`` strategy is asked for.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ExportError
from ..targets import BACKENDS, DA, IO_TYPES, STRATEGIES, SYNTHESIS_TOOLS

__all__ = [
    "BACKENDS",
    "DA",
    "IO_TYPES",
    "STRATEGIES",
    "SYNTHESIS_TOOLS",
    "USER_CONFIG_KEYS",
    "Hls4mlOptions",
    "check_options",
    "load_user_config",
    "merge_config",
]  # fmt: skip

_PART = re.compile(r"^xc[a-z0-9]+(-[a-z0-9]+)+$", re.IGNORECASE)  # Xilinx: xcu200-fsgd2104-2-e, xc7z020clg400-1
# the top-level keys of an hls4ml HLSConfig a user's YAML may set
USER_CONFIG_KEYS = frozenset({"Model", "LayerName", "LayerType", "Flows", "Optimizers", "SkipOptimizers"})


@dataclass(frozen=True)
class Hls4mlOptions:
    """Where and how the hls4ml project is written, compiled and (optionally) built.

    ``output_dir``: the project folder (created). ``backend``: one of :data:`BACKENDS` (any case).
    ``part``: a Xilinx part such as ``xcu200-fsgd2104-2-e``. ``io_type``: one of :data:`IO_TYPES`.
    ``reuse_factor``: hls4ml's ReuseFactor, a positive integer (multiplications per multiplier).
    ``user_config``: an hls4ml YAML (``Model``, ``LayerName``, ``LayerType``, ...) merged over the derived
    configuration. ``build``: run synthesis with the backend's tool (:data:`SYNTHESIS_TOOLS`).
    ``input_precision``: the input type (``ap_fixed<W,I>``) instead of the derived one. ``strategy``: one of
    :data:`STRATEGIES`; None is Latency (Resource where a layer's reuse factor is above 1).
    Validated by :func:`check_options`, which :func:`qconvert.export.export` calls first.
    """

    output_dir: Path
    backend: str = "Vitis"
    part: str = "xcu200-fsgd2104-2-e"
    io_type: str = "io_parallel"
    reuse_factor: int = 1
    user_config: Path | None = None
    build: bool = False
    input_precision: str | None = None
    strategy: str | None = None


def check_options(options: Hls4mlOptions) -> Hls4mlOptions:
    """The options validated and normalized: backend and strategy spelled as hls4ml does, output folder resolved
    and checked writable (made only when the project is written). Raises :class:`ExportError` (one line) for an
    unknown backend, part, io type or strategy, a reuse factor that is not a positive integer, a missing user
    config, an output folder that cannot be written, and for ``distributed_arithmetic`` without da4ml or with
    another io type or reuse factor than hls4ml 1.3 supports.
    """
    backend = next((b for b in BACKENDS if b.lower() == str(options.backend).lower()), None)
    if backend is None:
        raise ExportError(f"unknown hls4ml backend '{options.backend}'; valid: {', '.join(BACKENDS)}")
    if not _PART.match(str(options.part)):
        raise ExportError(f"unknown FPGA part '{options.part}' for {backend}: expected a Xilinx part such as xcu200-fsgd2104-2-e")
    if options.io_type not in IO_TYPES:
        raise ExportError(f"unknown io type '{options.io_type}'; valid: {', '.join(IO_TYPES)}")
    if not isinstance(options.reuse_factor, int) or options.reuse_factor < 1:
        raise ExportError(f"reuse factor must be a positive integer. Received: reuse_factor={options.reuse_factor!r}")
    if options.user_config is not None and not Path(options.user_config).is_file():
        raise ExportError(f"{options.user_config}: hls4ml config file not found")
    strategy = next((s for s in STRATEGIES if s.lower() == str(options.strategy).lower()), None)
    if options.strategy is not None and strategy is None:
        raise ExportError(f"unknown hls4ml strategy '{options.strategy}'; valid: {', '.join(STRATEGIES)}")
    if strategy == DA:
        _check_da(options)
    out = Path(options.output_dir)
    holder = out
    while not holder.exists() and holder != holder.parent:  # the folder is made when the project is written
        holder = holder.parent
    try:
        if not holder.is_dir():
            raise NotADirectoryError(20, "not a folder")
        with tempfile.NamedTemporaryFile(dir=holder, prefix=".qconvert-write-test"):
            pass
    except OSError as exc:
        raise ExportError(f"{out}: output folder is not writable: {exc.strerror or exc}") from None
    return Hls4mlOptions(out.resolve(), backend, options.part, options.io_type, options.reuse_factor,
                         options.user_config, options.build, options.input_precision, strategy)


def _check_da(options: Hls4mlOptions) -> None:
    """distributed_arithmetic: da4ml installed (qconvert's ``da`` extra), io_parallel, reuse factor 1."""
    try:
        import da4ml  # noqa: F401
    except ImportError:
        raise ExportError("--strategy distributed_arithmetic needs da4ml: pip install 'qconvert[da]'") from None
    if options.io_type != "io_parallel" or options.reuse_factor != 1:
        raise ExportError("--strategy distributed_arithmetic needs --io-type io_parallel and --reuse-factor 1 (hls4ml 1.3)")


def load_user_config(path: Path | None) -> dict[str, Any]:
    """The user's hls4ml YAML as a mapping (empty without ``path``). Raises :class:`ExportError` when it cannot be
    read, is not a mapping, or has top-level keys other than :data:`USER_CONFIG_KEYS`."""
    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ExportError(f"{path}: cannot read hls4ml config: {exc}") from None
    if not isinstance(data, dict):
        raise ExportError(f"{path}: an hls4ml config must be a mapping (Model, LayerName, LayerType)")
    unknown = set(data) - USER_CONFIG_KEYS
    if unknown:
        raise ExportError(f"{path}: unknown hls4ml config key(s) {', '.join(sorted(unknown))}")
    return data


def merge_config(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` merged over ``base``, mappings key by key at every depth (``top`` wins); neither is changed."""
    out = dict(base)
    for key, value in top.items():
        out[key] = merge_config(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
