"""The main job: ``run(job)`` runs the stages, in order, on one context.

Every stage has the same shape, ``stage(ctx) -> None``: it reads what earlier stages put on the
:class:`Context` (the model, the data, the plan computed once, the converted model, the report) and adds its
own. A stage that fails with something other than a user error is named in the traceback (``note``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import ExportError, OutputError, QConvertError, SettingsError
from ..io import check_writable, write_text_atomic
from ..report import ConversionReport
from ..rules import as_ruleset
from ..train.plot import FIGURE_SUFFIXES
from .convert import convert_planned, versions
from .inputs import load_inputs
from .job import DataOptions, Job, LoadOptions, Outputs
from .stages import accuracy_stage, checkpoint_dir, hls4ml_stage, prune_targets, qonnx_stage, rtl_stage

__all__ = ["STAGES", "Context", "FileResult", "convert_file", "file_sha256", "qonnx_file", "rtl_file", "run"]


@dataclass(frozen=True)
class FileResult:
    """What the main job made: its report, and the output model (None when ``strict`` wrote nothing)."""

    report: ConversionReport
    output: Path | None


@dataclass
class Context:
    """What the stages of one run share; each stage fills in its part."""

    job: Job
    ruleset: Any = None
    hls4ml: Any = None  # the job's hls4ml options, checked
    source: Path | None = None
    out: Path | None = None
    model: Any = None
    dataset: Any = None
    plan: Any = None
    snapshot: Any = None  # the FP32 model's configs and weights, read once (it does not change in a run)
    x_cal: Any = None  # the calibration rows (None without data)
    qmodel: Any = None
    report: ConversionReport | None = None
    prune: list[Any] = field(default_factory=list)
    training: Any = None
    exported: Any = None
    rtl_result: Any = None
    qonnx_result: Any = None
    stopped: bool = False  # strict leftovers: nothing more is done or written


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check(ctx: Context) -> None:
    """Rules, export options and output paths, before any Keras work (cheap errors first)."""
    from ..model.load import check_model_path

    job = ctx.job
    ctx.ruleset = as_ruleset(job.rules)
    if job.hls4ml is not None:
        from ..export import check_options

        ctx.hls4ml = check_options(job.hls4ml)
    if job.rtl is not None:
        from ..export.rtl import check_options as check_rtl

        check_rtl(job.rtl)
    if job.qonnx is not None:
        from ..export.qonnx import check_options as check_qonnx

        check_qonnx(job.qonnx)
    ctx.source = check_model_path(job.model)
    ctx.out = job.output
    if ctx.out.exists() and ctx.out.resolve() == ctx.source.resolve():
        raise OutputError(f"{ctx.out}: is the input model; qconvert never overwrites its input")
    check_writable(ctx.out, "the converted model")
    if job.outputs.report is not None:
        check_writable(job.outputs.report, "the report")
    plot = Path(job.outputs.plot) if job.train is not None and job.outputs.plot is not None else None
    if plot is not None:
        check_writable(plot, "the training figure")
    _check_distinct(ctx.source, _outputs(job, ctx.out))
    if plot is not None and plot.suffix.lower() not in FIGURE_SUFFIXES:
        raise OutputError(f"{plot}: --plot writes a figure; name a {', '.join(FIGURE_SUFFIXES)} file")


def _outputs(job: Job, out: Path) -> dict[str, Path]:
    """Every path the job writes, by what it is (the training figure only when the job trains)."""
    paths = {"the converted model (-o)": out}
    if job.outputs.report is not None:
        paths["the report (--report)"] = Path(job.outputs.report)
    if job.train is not None:
        paths["the training figure (--plot)"] = job.outputs.plot_path(out)
    for name, options in (("the hls4ml project (--hls4ml)", job.hls4ml), ("the RTL project (--rtl)", job.rtl)):
        if options is not None:
            paths[name] = Path(options.output_dir)
    if job.qonnx is not None:
        paths["the QONNX graph (--qonnx)"] = Path(job.qonnx.output)
    return paths


def _check_distinct(source: Path, paths: dict[str, Path]) -> None:
    """Raise :class:`OutputError` when an output is the input model or two outputs are one path."""
    seen: dict[Path, str] = {source.resolve(): "the input model"}
    for what, path in paths.items():
        resolved = path.resolve()
        if resolved in seen:
            raise OutputError(f"{path}: is both {seen[resolved]} and {what}; qconvert never writes one over the other")
        seen[resolved] = what


def load(ctx: Context) -> None:
    """The model, and the data (split with the job's seed), checked against each other."""
    job = ctx.job
    inputs = load_inputs(ctx.source, job.data.path if job.data is not None else None, seed=job.seed, load=job.load)
    ctx.model, ctx.dataset = inputs.model, inputs.dataset


def convert(ctx: Context) -> None:
    """Plan once; calibrate on rows drawn with the job's seed; rewrite; the report of what was done."""
    from ..model.plan import plan_model

    job = ctx.job
    x_cal = None
    if ctx.dataset is not None:
        from ..model.calibrate import DEFAULT_ROWS

        x_cal = ctx.dataset.calibration_rows(job.calibration_rows or DEFAULT_ROWS, seed=job.seed)
    from ..model.snapshot import Snapshot

    ctx.snapshot = Snapshot()
    ctx.plan = plan_model(ctx.model, ctx.ruleset, snapshot=ctx.snapshot)
    ctx.x_cal = x_cal
    ctx.qmodel, ctx.report = convert_planned(ctx.model, ctx.plan, str(ctx.source), x_cal, snapshot=ctx.snapshot)
    if job.strict and ctx.report.leftovers:
        ctx.stopped = True
        return
    if job.target_ebops is None:  # the EBOPs target prunes by itself
        ctx.prune = prune_targets(ctx.plan, job.train, ctx.report)


def preflight(ctx: Context) -> None:
    """Before QAT: the hls4ml export's refusals, found on the converted structure (nothing written, no compiler)."""
    if ctx.hls4ml is not None and ctx.job.train is not None and ctx.dataset is not None:
        from ..export import preflight as hls4ml_preflight

        hls4ml_preflight(ctx.qmodel, ctx.hls4ml)


def evaluate_and_train(ctx: Context) -> None:
    """FP32 vs PTQ (vs its uncalibrated twin) accuracy; with training options, QAT (and pruning)."""
    if ctx.dataset is None:
        return
    twin = None
    if ctx.report.sections["calibration"]["resolved"]:
        twin = convert_planned(ctx.model, ctx.plan, str(ctx.source), uncalibrated=True, snapshot=ctx.snapshot)[0]
    target = None
    if ctx.job.target_ebops is not None:
        target = {"ebops": ctx.job.target_ebops, "rules": ctx.ruleset, "calibration": ctx.x_cal, "qmodel": ctx.qmodel}
    ctx.qmodel, ctx.training = accuracy_stage(ctx.model, ctx.qmodel, ctx.dataset, ctx.job.train, ctx.source, ctx.out,
                                              ctx.report, twin, ctx.prune, target)


def save(ctx: Context) -> None:
    """The converted model, with its provenance, written atomically."""
    from ..model.save import save_model

    provenance = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": {"path": str(ctx.source), "sha256": file_sha256(ctx.source)},
        "rules": ctx.report.rules,
        "versions": ctx.report.versions,
    }
    save_model(ctx.qmodel, ctx.out, provenance)
    ctx.report.output = str(ctx.out)


def export(ctx: Context) -> None:
    """hls4ml, RTL and QONNX, each verified against Keras; a failure keeps the model and the report so far."""
    job = ctx.job
    try:
        if ctx.hls4ml is not None:
            ctx.exported = hls4ml_stage(ctx.qmodel, ctx.dataset, ctx.hls4ml, ctx.report)
        if job.rtl is not None:
            ctx.rtl_result = rtl_stage(ctx.qmodel, ctx.dataset, job.rtl, ctx.report.sections)
        if job.qonnx is not None:
            ctx.qonnx_result = qonnx_stage(ctx.qmodel, ctx.dataset, job.qonnx, ctx.report.sections)
    except ExportError as exc:
        write_report(ctx)
        raise ExportError(f"{exc} ({ctx.out} is written)") from None


def finish(ctx: Context) -> None:
    """The training figure, the JSON report; then the errors that come after everything is written."""
    job = ctx.job
    if ctx.training is not None:
        from ..train.plot import plot_training

        plot = job.outputs.plot_path(ctx.out)
        accuracy = ctx.report.sections["accuracy"]
        plot_training(ctx.training.history,
                      {k: accuracy.get(k) for k in ("fp32", "ptq_uncalibrated", "ptq", "qat", "hls4ml")}, plot)
        accuracy["plot"] = str(plot)
        if job.train.checkpoint_dir is None:
            shutil.rmtree(checkpoint_dir(ctx.out), ignore_errors=True)  # finished: nothing to resume
    write_report(ctx)
    if ctx.exported is not None:
        ctx.exported.raise_for_build()  # --build without the synthesis tool: exit 2, project written and compiled
    if ctx.rtl_result is not None and ctx.rtl_result.missing_tool:
        raise ExportError(f"{ctx.rtl_result.missing_tool}; {ctx.out} is written")  # exit 2, RTL written


def write_report(ctx: Context) -> None:
    """The JSON report, when one was asked for."""
    if ctx.job.outputs.report is not None:
        write_text_atomic(ctx.job.outputs.report, ctx.report.to_json() + "\n")


#: The main job's stages, in order.
STAGES: tuple[Callable[[Context], None], ...] = (check, load, convert, preflight, evaluate_and_train, save, export,
                                                  finish)


def run(job: Job, *, on_converted: Callable[[ConversionReport], None] | None = None) -> FileResult:
    """Run the main job: check, load, convert, evaluate and train, save, export, finish.

    ``on_converted``: called with the report of the conversion once every check has passed and before training
    starts (only when the job trains), e.g. to print the layer table before a long QAT.
    Returns the report and the output path (None when ``job.strict`` found leftovers: nothing written).
    Raises the :class:`~qconvert.errors.QConvertError` subclass of the first user error; any other exception
    carries a note naming the stage it came from.
    """
    ctx = Context(job)
    for stage in STAGES:
        try:
            stage(ctx)
        except QConvertError:
            raise
        except Exception as exc:
            exc.add_note(f"qconvert: in the pipeline stage '{stage.__name__}'")
            raise
        if ctx.stopped:
            return FileResult(ctx.report, None)
        if stage is preflight and on_converted is not None and job.train is not None and ctx.dataset is not None:
            on_converted(ctx.report)
    return FileResult(ctx.report, ctx.out)


def convert_file(
    model_path: str | os.PathLike,
    rules_path: Any,
    *,
    output: str | os.PathLike | None = None,
    report_path: str | os.PathLike | None = None,
    strict: bool = False,
    safe_mode: bool = True,
    weights: str | os.PathLike | None = None,
    custom_objects: dict[str, Any] | None = None,
    data: str | os.PathLike | None = None,
    train: Any = None,
    plot_path: str | os.PathLike | None = None,
    hls4ml: Any = None,
    calibration_rows: int | None = None,
    rtl: Any = None,
    seed: int | None = None,
    qonnx: Any = None,
    target_ebops: float | None = None,
) -> FileResult:
    """The main job with keyword arguments: builds the :class:`Job` (validated: e.g. ``train`` without
    ``data`` raises :class:`~qconvert.errors.SettingsError`) and runs it. ``seed`` defaults to
    ``train.seed`` when training, else 0."""
    if calibration_rows is not None and data is None:
        raise SettingsError("calibration rows need data: give data=")
    if seed is None:
        seed = train.seed if train is not None else 0
    job = Job(
        model=model_path, rules=rules_path, seed=seed, train=train, hls4ml=hls4ml, rtl=rtl, qonnx=qonnx, strict=strict,
        target_ebops=target_ebops,
        data=DataOptions(data, calibration_rows) if data is not None else None,
        outputs=Outputs(Path(output) if output is not None else None,
                        Path(report_path) if report_path is not None else None,
                        Path(plot_path) if plot_path is not None else None),
        load=LoadOptions(Path(weights) if weights is not None else None, custom_objects or {}, safe_mode),
    )
    return run(job)


def _export_file(stage: Callable[..., Any], section: str, model_path: str | os.PathLike, options: Any,
                 data: str | os.PathLike | None, report_path: str | os.PathLike | None, seed: int, safe_mode: bool) -> Any:
    """An export stage on a converted model file (``qconvert rtl``, ``qconvert qonnx``): its report section alone."""
    import json

    inputs = load_inputs(model_path, data, seed=seed, load=LoadOptions(safe_mode=safe_mode), single_io=False)
    sections: dict[str, Any] = {}
    result = stage(inputs.model, inputs.dataset, options, sections)
    if report_path is not None:
        doc = {"model": str(model_path), "versions": versions(), section: sections[section]}
        write_text_atomic(report_path, json.dumps(doc, indent=2) + "\n")
    return result


def qonnx_file(model_path: str | os.PathLike, options: Any, *, data: str | os.PathLike | None = None,
               report_path: str | os.PathLike | None = None, seed: int = 0, safe_mode: bool = True) -> Any:
    """``qconvert qonnx``: the QONNX graph of a converted model, run by qonnx against Keras on the held-out split of
    ``data`` (else on sampled inputs); the JSON report's ``qonnx`` section."""
    from ..export.qonnx import check_options

    return _export_file(qonnx_stage, "qonnx", model_path, check_options(options), data, report_path, seed, safe_mode)


def rtl_file(model_path: str | os.PathLike, options: Any, *, data: str | os.PathLike | None = None,
             report_path: str | os.PathLike | None = None, seed: int = 0, safe_mode: bool = True) -> Any:
    """``qconvert rtl``: the RTL of a converted model (da4ml), emulated against Keras on the held-out split of
    ``data`` (else on sampled inputs) and synthesized with yosys; the JSON report's ``rtl`` section."""
    return _export_file(rtl_stage, "rtl", model_path, options, data, report_path, seed, safe_mode)
