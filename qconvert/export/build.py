"""Synthesis of a written hls4ml project with Vitis HLS or Vivado HLS, and its report.

Neither tool is a Python package: :func:`build` looks for the backend's program on PATH
(:data:`~.options.SYNTHESIS_TOOLS`) and, when it is absent, returns the one-line reason instead of
running hls4ml's ``build()`` (which would fail deep inside a Tcl call).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

from ..errors import ExportError
from .options import SYNTHESIS_TOOLS, Hls4mlOptions
from .quiet import quiet

__all__ = ["BuildReport", "build", "build_report", "missing_tool"]


@dataclass(frozen=True)
class BuildReport:
    """The C-synthesis figures of the project (hls4ml's ``parse_vivado_report``; None where the report lacks one).

    ``latency_min``/``latency_max``: clock cycles; ``ii_min``/``ii_max``: initiation interval in cycles;
    ``lut``, ``ff``, ``dsp``, ``bram_18k``: resource counts (BRAM in 18 Kb blocks); ``clock_ns``: the estimated
    clock period in nanoseconds.
    """

    latency_min: int | None
    latency_max: int | None
    ii_min: int | None
    ii_max: int | None
    lut: int | None
    ff: int | None
    dsp: int | None
    bram_18k: int | None
    clock_ns: float | None


def missing_tool(options: Hls4mlOptions) -> str | None:
    """Why ``options.backend``'s synthesis program cannot run (one line), or None when it is on PATH."""
    tool = SYNTHESIS_TOOLS[options.backend]
    if shutil.which(tool) is not None:
        return None
    return f"--build: '{tool}' ({options.backend} HLS) is not on PATH; the project is written and compiled in {options.output_dir}"


def build(hls_model: Any, options: Hls4mlOptions) -> tuple[BuildReport | None, str | None]:
    """C synthesis of the written ``hls_model`` (an hls4ml ``ModelGraph``) with the backend's tool.

    Returns ``(report, None)``, or ``(None, reason)`` when the tool is not installed (the caller reports it; the
    project stays written and compiled). Raises :class:`ExportError` when the tool runs and fails.
    """
    reason = missing_tool(options)
    if reason is not None:
        return None, reason
    tool = SYNTHESIS_TOOLS[options.backend]
    try:
        with quiet():
            if options.backend == "Vitis":
                hls_model.build(csim=False, synth=True, log_to_stdout=False)
            else:
                hls_model.build(csim=False, synth=True)
            from hls4ml.report import parse_vivado_report

            report = parse_vivado_report(str(options.output_dir)) or {}
    except Exception as exc:
        raise ExportError(f"synthesis with {tool} failed: {exc} (logs in {options.output_dir})") from None
    return build_report(report.get("CSynthesisReport", {})), None


def build_report(rep: dict[str, Any]) -> BuildReport:
    """The figures of hls4ml's ``CSynthesisReport`` mapping (values as strings); a missing or unreadable one is None."""

    def num(key: str) -> int | None:
        try:
            return int(float(rep[key]))
        except (KeyError, TypeError, ValueError):
            return None

    clock = rep.get("EstimatedClockPeriod")
    return BuildReport(num("BestLatency"), num("WorstLatency"), num("IntervalMin"), num("IntervalMax"), num("LUT"),
                       num("FF"), num("DSP") if "DSP" in rep else num("DSP48E"), num("BRAM_18K"),
                       float(clock) if clock else None)
