"""The main job and the stages it composes: load → plan → calibrate → rewrite → QAT → save → export → report.

:class:`Job` is the one settings object (validated once); :func:`run` runs it; :func:`convert_file` is the
same with keyword arguments; :func:`convert` converts a model in memory, nothing written; :func:`train_rules`
is a search trial's convert → calibrate → QAT on data already loaded. Nothing else composes the stages:
``batch``, ``search`` and ``demo`` call these.
"""

from .convert import calibrated_plan, convert, convert_planned, plan, preview_cost, versions
from .inputs import Inputs, load_inputs
from .job import DataOptions, Job, LoadOptions, Outputs, default_output
from .run import STAGES, Context, FileResult, convert_file, file_sha256, qonnx_file, rtl_file, run
from .stages import train_rules

__all__ = [
    "STAGES",
    "Context",
    "DataOptions",
    "FileResult",
    "Inputs",
    "Job",
    "LoadOptions",
    "Outputs",
    "calibrated_plan",
    "convert",
    "convert_file",
    "convert_planned",
    "default_output",
    "file_sha256",
    "load_inputs",
    "plan",
    "preview_cost",
    "qonnx_file",
    "rtl_file",
    "run",
    "train_rules",
    "versions",
]
