"""The stages, composed: load → plan → rewrite → report (→ save). Nothing else composes them."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ConversionError, ExportError, OutputError
from .io import write_text_atomic
from .report import ConversionReport, LayerRow, Totals
from .ruleset import RuleSet, as_ruleset

__all__ = [
    "FileResult",
    "calibrated_plan",
    "convert",
    "convert_file",
    "default_output",
    "file_sha256",
    "plan",
    "preview_cost",
    "versions",
]


def versions() -> dict[str, str]:
    """The versions a report and a model's provenance record: qconvert, Keras, QKeras, backend."""
    import keras
    import qkeras

    return {"qconvert": __version__, "keras": keras.__version__, "qkeras": qkeras.__version__, "backend": keras.backend.backend()}


def _as_model(model_or_path: Any, safe_mode: bool = True, *, weights: str | os.PathLike | None = None,
              custom_objects: dict[str, Any] | None = None) -> tuple[Any, str]:
    if isinstance(model_or_path, (str, os.PathLike)):
        from .model.load import load_model

        model = load_model(model_or_path, safe_mode=safe_mode, weights=weights, custom_objects=custom_objects)
        return model, str(model_or_path)
    return model_or_path, getattr(model_or_path, "name", "model")


def plan(model_or_path: Any, rules: RuleSet | str | os.PathLike, *, safe_mode: bool = True,
         weights: str | os.PathLike | None = None, custom_objects: dict[str, Any] | None = None) -> Any:
    """The :class:`~qconvert.model.plan.Plan` the rules make for the model (nothing converted)."""
    from .model.plan import plan_model

    model, _ = _as_model(model_or_path, safe_mode, weights=weights, custom_objects=custom_objects)
    return plan_model(model, as_ruleset(rules))


def calibrated_plan(model_or_path: Any, rules: RuleSet | str | os.PathLike, x: Any = None, *,
                    percentile: float | None = None, safe_mode: bool = True, weights: str | os.PathLike | None = None,
                    custom_objects: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """``(plan, calibration)``: the plan with ``integer: auto`` resolved from the weights and the calibration
    rows ``x`` (activations left ``auto`` without ``x``), and what each quantizer clips. What ``rules show`` prints."""
    from .model.calibrate import PERCENTILE, calibrate

    model, _ = _as_model(model_or_path, safe_mode, weights=weights, custom_objects=custom_objects)
    return calibrate(model, plan(model, rules), x, percentile=percentile or PERCENTILE, require=False)


def preview_cost(model_or_path: Any, the_plan: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Cost per layer of what ``the_plan`` makes (``rules show``, before any training), and, when the rules
    prune, the same after one-shot magnitude pruning of the converted weights at the target sparsities."""
    from .model.cost import model_cost
    from .model.rewrite import apply_plan

    model, _ = _as_model(model_or_path)
    qmodel = apply_plan(model, the_plan)
    costs = model_cost(qmodel)
    targets = [(item.path, item.prune.sparsity) for item in the_plan.layers if item.prune is not None]
    if not targets:
        return costs, None
    from .train.prune import prune_once

    prune_once(qmodel, targets)
    return costs, model_cost(qmodel)


def _find(model: Any, path: tuple[str, ...]) -> Any | None:
    for name in path:
        try:
            model = model.get_layer(name)
        except ValueError:
            return None
    return model


def _build_report(plan: Any, qmodel: Any, source: str, snapshot: Any = None) -> ConversionReport:
    from .model.cost import model_cost

    costs = model_cost(qmodel, snapshot=snapshot)
    rows: list[LayerRow] = []

    def cost_row(name: str, type_before: str, type_after: str, action: str, rule: str | None,
                 kernel: str, bias: str, activation: str, note: str, leftover: bool, layer: Any) -> LayerRow:
        c = costs.get(name)
        params = layer.count_params() if layer is not None and layer.built else 0
        return LayerRow(name, type_before, type_after, action, rule, kernel, bias, activation, params,
                        c.bops if c else 0.0, c.bops_fp32 if c else 0.0, c.bops_ap_fixed if c else 0.0, note, leftover,
                        ebops=c.ebops if c else None, multiplies=c.multiplies if c else None, dsp=c.dsp if c else None)

    if plan.input_quantizer is not None:
        for name in plan.input_names:
            q_name = f"{name}_quant"
            rows.append(cost_row(q_name, "", "QActivation", "quantize", "input", "", "", str(plan.input_quantizer),
                                 "input quantizer", False, _find(qmodel, (q_name,))))
    for item in plan.layers:
        if item.action == "nested":
            continue
        specs = item.specs
        kernel = " / ".join(str(specs[r]) for r in ("kernel", "depthwise", "pointwise", "gamma") if r in specs)
        bias = str(specs["bias"]) if "bias" in specs else ""
        activation = str(specs["activation"]) if "activation" in specs else ""
        layer = None if item.action == "fold" else _find(qmodel, item.path)
        rows.append(cost_row(item.qualified_name, item.class_name, item.target, item.action, item.rule,
                             kernel, bias, activation, item.note, item.action in ("uncovered", "unsupported"), layer))
        split = item.split
        if split is not None:
            name = "/".join(item.path[:-1] + (split.name,))
            act = str(split.spec) if split.spec is not None else f"float {split.function}"
            rows.append(cost_row(name, "", split.target, split.status, split.rule, "", "", act,
                                 split.note or f"split from {item.name}(activation='{split.function}')",
                                 split.status == "uncovered", _find(qmodel, item.path[:-1] + (split.name,))))
    quantized = sum(1 for r in rows if r.type_after.startswith("Q"))
    left_float = sum(1 for r in rows if r.action in ("keep", "float", "unquantizable", "uncovered", "unsupported"))
    totals = Totals(
        layers=len(rows),
        quantized=quantized,
        left_float=left_float,
        leftovers=sum(1 for r in rows if r.leftover),
        params=int(qmodel.count_params()),
        bops=sum(c.bops for c in costs.values()),
        bops_fp32=sum(c.bops_fp32 for c in costs.values()),
        bops_ap_fixed_16_6=sum(c.bops_ap_fixed for c in costs.values()),
        **_cost_totals(costs),
    )
    rules = {"source": plan.ruleset.source, "sha256": plan.ruleset.sha256, "description": plan.ruleset.description}
    return ConversionReport(model=source, rules=rules, layers=rows, totals=totals, versions=versions())


def _cost_totals(costs: dict[str, Any]) -> dict[str, Any]:
    return {"ebops": sum(c.ebops for c in costs.values()), "multiplies": sum(c.multiplies for c in costs.values()),
            "dsp": sum(c.dsp for c in costs.values())}


def _refresh_cost(report: ConversionReport, qmodel: Any, sparsity: dict[str, float]) -> dict[str, Any]:
    """Recount EBOPs, multiplies and DSPs from ``qmodel``'s weights (after QAT and pruning); returns the totals."""
    from .model.cost import model_cost

    costs = model_cost(qmodel)
    report.layers = [replace(row, ebops=c.ebops, multiplies=c.multiplies, dsp=c.dsp, sparsity=sparsity.get(row.name))
                     if (c := costs.get(row.name)) is not None else row for row in report.layers]
    totals = _cost_totals(costs)
    report.totals = replace(report.totals, **totals)
    return totals


def convert(model_or_path: Any, rules: RuleSet | str | os.PathLike, *, strict: bool = False,
            calibration_data: Any = None, percentile: float | None = None,
            uncalibrated: bool = False) -> tuple[Any, ConversionReport]:
    """Convert a Keras model (or a model file) with the rules: ``(qmodel, report)``.

    The input model is not changed. With ``strict``, layers the rules leave
    float without saying so (see ``Plan.leftovers``) raise :class:`ConversionError`.
    ``integer: auto`` is resolved from the weights and from ``calibration_data``
    (rows shaped like the model's input; see :mod:`qconvert.model.calibrate`);
    an activation's ``auto`` without rows raises :class:`DataError`. With
    ``uncalibrated``, every ``auto`` is 0 instead (the twin calibrated PTQ is
    compared with). The report's ``calibration`` section records each resolved
    value, its statistic and the fraction of values each quantizer clips.
    """
    from .model.calibrate import PERCENTILE, calibrate
    from .model.calibrate import uncalibrated as without_auto
    from .model.plan import plan_model
    from .model.rewrite import apply_plan
    from .model.snapshot import Snapshot

    model, source = _as_model(model_or_path)
    snapshot = Snapshot()  # configs and weights read once for this conversion
    ruleset = as_ruleset(rules)
    the_plan = plan_model(model, ruleset)
    leftovers = the_plan.leftovers()
    if strict and leftovers:
        names = ", ".join(p.qualified_name for p in leftovers)
        raise ConversionError(f"strict: {len(leftovers)} layer(s) left float without a rule: {names}")
    if uncalibrated:
        the_plan = without_auto(the_plan)
    the_plan, calibration = calibrate(model, the_plan, calibration_data, percentile=percentile or PERCENTILE)
    qmodel = apply_plan(model, the_plan, snapshot)
    report = _build_report(the_plan, qmodel, source, snapshot)
    report.sections["calibration"] = calibration.to_dict()
    return qmodel, report


def default_output(model_path: str | os.PathLike) -> Path:
    """``model.h5`` → ``model_q.keras``, next to the input."""
    path = Path(model_path)
    return path.with_name(f"{path.stem}_q.keras")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checkpoint_dir(out: Path) -> Path:
    return out.with_name(f"{out.stem}.ckpt")


def _accuracy_stage(model: Any, qmodel: Any, dataset: Any, train: Any, source: Path, out: Path,
                    report: ConversionReport, uncalibrated: Any = None,
                    prune: tuple[Any, ...] | list[Any] = ()) -> tuple[Any, Any]:
    """FP32 and PTQ accuracy (and the uncalibrated twin's, when given); with ``train``, QAT (pruning ``prune``
    targets) and its accuracy. Adds the report sections."""
    from dataclasses import replace

    from .train.qat import evaluate, infer_loss, loss_from_file

    compiled = loss_from_file(source)
    loss = (train.loss if train is not None else None) or infer_loss(model, dataset, compiled)
    split, x, y = dataset.eval_split
    metrics = {"fp32": evaluate(model, dataset, x, y, loss)}
    if uncalibrated is not None:
        metrics["ptq_uncalibrated"] = evaluate(uncalibrated, dataset, x, y, loss)
    metrics["ptq"] = evaluate(qmodel, dataset, x, y, loss)
    training = None
    if train is not None:
        options = train if train.checkpoint_dir is not None else replace(train, checkpoint_dir=_checkpoint_dir(out))
        qmodel, training = _train_stage(model, qmodel, dataset, replace(options, loss=loss), report, prune)
        metrics["qat"] = evaluate(qmodel, dataset, x, y, loss)
    report.sections["accuracy"] = {
        "split": split,
        "samples": len(x),
        "loss_function": loss,
        "note": dataset.split_note,
        **{name: m.accuracy for name, m in metrics.items()},
        "loss": {name: m.loss for name, m in metrics.items()},
    }
    report.sections["per_class"] = {name: m.per_class for name, m in metrics.items()}
    report.sections["auc"] = {name: m.auc for name, m in metrics.items()}
    if training is not None:
        report.sections["training"] = training.to_dict()
    return qmodel, training


def _train_stage(model: Any, qmodel: Any, dataset: Any, options: Any, report: ConversionReport,
                 prune: tuple[Any, ...] | list[Any] = (), callbacks: tuple[Any, ...] = ()) -> tuple[Any, Any]:
    """QAT of ``qmodel`` (pruning the ``prune`` targets), then its cost refreshed in ``report`` (EBOPs of the
    trained weights; sparsity per layer). ``callbacks`` (e.g. a search trial's early stop) run at each epoch's end
    after the pruning masks and before the checkpointing."""
    from .train.qat import fine_tune

    teacher = model if options.distill is not None else None
    if prune:
        from .train.prune import make_pruning_callback, sparsity_report

        before = {k: getattr(report.totals, k) for k in ("ebops", "multiplies", "dsp")}
        qmodel, training = fine_tune(qmodel, dataset, options, teacher=teacher,
                                     callbacks=[make_pruning_callback(prune), *callbacks],
                                     # masks grow at the end of an epoch, after Keras validated it: the first
                                     # epoch validated with the final masks is the one after end_epoch
                                     monitor_from=max(t.end_epoch for t in prune) + 1)
        layers = sparsity_report(qmodel, prune)
        after = _refresh_cost(report, qmodel, {name: v["sparsity"] for name, v in layers.items()})
        report.sections["pruning"] = {"applied": True, "layers": layers, "before": before, "after": after}
    else:
        qmodel, training = fine_tune(qmodel, dataset, options, teacher=teacher, callbacks=list(callbacks))
        _refresh_cost(report, qmodel, {})
    return qmodel, training


def train_rules(model: Any, ruleset: RuleSet, dataset: Any, train: Any, *, calibration_rows: int | None = None,
                callbacks: tuple[Any, ...] = ()) -> tuple[Any, ConversionReport, Any]:
    """Convert, calibrate and fine-tune: the main job's stages on data already loaded, nothing written.

    ``model`` is the FP32 Keras model, ``dataset`` a :class:`~qconvert.train.data.Dataset`, ``train`` a
    :class:`~qconvert.train.TrainOptions` (its ``loss`` None: inferred as the main job infers it). The
    conversion, calibration rows, pruning schedule and training are those of :func:`convert_file` with the
    same ``--seed``, so a search trial run through here is reproduced by the main job with its rule file.
    Returns ``(qmodel, report, training)``; the report's totals hold the trained model's EBOPs.
    """
    from dataclasses import replace

    from .model.calibrate import DEFAULT_ROWS
    from .train.qat import infer_loss

    x_cal = dataset.calibration_rows(calibration_rows or DEFAULT_ROWS, seed=train.seed)
    qmodel, report = convert(model, ruleset, calibration_data=x_cal)
    prune = _prune_targets(model, ruleset, train, report)
    options = replace(train, loss=train.loss or infer_loss(model, dataset, None))
    qmodel, training = _train_stage(model, qmodel, dataset, options, report, prune, callbacks)
    return qmodel, report, training


def _prune_targets(model: Any, ruleset: RuleSet, train: Any, report: ConversionReport) -> list[Any]:
    """Layers the rules prune (checked against ``--epochs``); without training, the report says it was not applied."""
    from .model.plan import plan_model

    the_plan = plan_model(model, ruleset)
    if not any(item.prune is not None for item in the_plan.layers):
        return []
    if train is None:
        report.sections["pruning"] = {"applied": False, "note": "the rules prune, but pruning acts during QAT: add --data and --epochs"}
        return []
    from .train.prune import prune_targets

    return prune_targets(the_plan, train.epochs)


@dataclass(frozen=True)
class FileResult:
    report: ConversionReport
    output: Path | None  # None when nothing was written (strict leftovers)


def convert_file(
    model_path: str | os.PathLike,
    rules_path: str | os.PathLike,
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
) -> FileResult:
    """The main job: convert a model file, write ``.keras`` and the JSON report.

    With ``data``, FP32 and PTQ accuracies are measured on its held-out split;
    with ``train`` (a :class:`~qconvert.train.TrainOptions`), the converted model
    is fine-tuned (QAT) first and its accuracy reported beside them. With
    ``strict`` and leftovers, the report is returned and nothing is written.
    ``integer: auto`` is calibrated on ``calibration_rows`` training rows of
    ``data`` (default :data:`~qconvert.model.calibrate.DEFAULT_ROWS`).
    ``rtl`` (a :class:`~qconvert.export.rtl.RtlOptions`): the RTL stage after hls4ml (``rtl`` section).
    """
    from .model.load import check_model_path
    from .model.save import save_model

    ruleset = as_ruleset(rules_path)  # rule errors first: cheap, and no Keras import
    if hls4ml is not None:  # a :class:`~qconvert.export.Hls4mlOptions`: bad backend/part/folder before any work
        from .export import check_options

        hls4ml = check_options(hls4ml)
    if rtl is not None:
        from .export.rtl import check_options as check_rtl

        check_rtl(rtl)
    source = check_model_path(model_path)
    out = Path(output) if output is not None else default_output(source)
    if out.suffix != ".keras":
        raise OutputError(f"{out}: the output must be a .keras file")
    if out.exists() and out.resolve() == source.resolve():
        raise OutputError(f"{out}: is the input model; qconvert never overwrites its input")
    if report_path is not None and not Path(report_path).parent.is_dir():
        raise OutputError(f"{report_path}: folder {Path(report_path).parent} does not exist")
    dataset = None
    if data is not None:
        from .train.data import load_data

        dataset = load_data(data, seed=train.seed if train is not None else 0)
    model, _ = _as_model(source, safe_mode=safe_mode, weights=weights, custom_objects=custom_objects)
    if dataset is not None:
        from .train.data import check_fits_model, check_one_input_one_output

        check_one_input_one_output(data, model.name, len(model.inputs), len(model.outputs))
        check_fits_model(dataset, tuple(model.inputs[0].shape), int(model.outputs[0].shape[-1]))
    x_cal = None
    if dataset is not None:
        from .model.calibrate import DEFAULT_ROWS

        x_cal = dataset.calibration_rows(calibration_rows or DEFAULT_ROWS, seed=train.seed if train is not None else 0)
    qmodel, report = convert(model, ruleset, calibration_data=x_cal)
    report.model = str(source)
    if strict and report.leftovers:
        return FileResult(report, None)
    training = None
    prune = _prune_targets(model, ruleset, train, report)
    if dataset is not None:
        twin = convert(model, ruleset, uncalibrated=True)[0] if report.sections["calibration"]["resolved"] else None
        qmodel, training = _accuracy_stage(model, qmodel, dataset, train, source, out, report, twin, prune)
    provenance = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": {"path": str(source), "sha256": file_sha256(source)},
        "rules": report.rules,
        "versions": report.versions,
    }
    save_model(qmodel, out, provenance)
    report.output = str(out)
    try:
        exported = _hls4ml_stage(qmodel, dataset, hls4ml, report) if hls4ml is not None else None
        rtl_result = _rtl_stage(qmodel, dataset, rtl, report.sections) if rtl is not None else None
    except ExportError as exc:  # the converted model is kept, and the report as far as it got
        if report_path is not None:
            write_text_atomic(report_path, report.to_json() + "\n")
        raise ExportError(f"{exc} ({out} is written)") from None
    if training is not None:
        from .train.plot import plot_training

        plot = Path(plot_path) if plot_path is not None else out.with_name(f"{out.stem}_training.png")
        accuracy = report.sections["accuracy"]
        plot_training(training.history, {k: accuracy.get(k) for k in ("fp32", "ptq_uncalibrated", "ptq", "qat", "hls4ml")},
                      plot)
        report.sections["accuracy"]["plot"] = str(plot)
        if train.checkpoint_dir is None:
            shutil.rmtree(_checkpoint_dir(out), ignore_errors=True)  # finished: nothing to resume
    if report_path is not None:
        write_text_atomic(report_path, report.to_json() + "\n")
    if exported is not None:
        exported.raise_for_build()  # --build without the synthesis tool: exit 2, project written and compiled
    if rtl_result is not None and rtl_result.missing_tool:
        raise ExportError(f"{rtl_result.missing_tool}; {out} is written")  # exit 2, RTL written
    return FileResult(report, out)


def _hls4ml_stage(qmodel: Any, dataset: Any, options: Any, report: ConversionReport) -> Any:
    """Write, compile and verify the hls4ml project (on the held-out split of ``dataset`` when given)."""
    from .export import bops_at_precisions, export

    x = y = None
    if dataset is not None:
        _, x, y = dataset.eval_split
        y = None if dataset.label_kind == "values" else y
    result = export(qmodel, options, x=x, y=y)
    section = result.to_dict()
    costs = bops_at_precisions(qmodel, result.precisions)
    section.update(costs)
    report.sections["hls4ml"] = section
    per_layer = costs["bops_per_layer"]
    lut = result.lut_da  # da4ml's LUT estimates: only with --strategy distributed_arithmetic
    report.layers = [replace(row, bops_hls4ml=per_layer.get(row.name, 0.0 if not row.bops else None),
                             lut_da=lut.get(row.name) if lut else None)
                     for row in report.layers]
    report.totals = replace(report.totals, bops_hls4ml=costs["bops"], lut_da=sum(lut.values()) if lut else None)
    if "accuracy" in report.sections and result.accuracy_hls4ml is not None:
        report.sections["accuracy"]["hls4ml"] = result.accuracy_hls4ml
    return result


def _rtl_stage(qmodel: Any, dataset: Any, options: Any, sections: dict[str, Any]) -> Any:
    """RTL through da4ml, Verilator and yosys (on the held-out split of ``dataset`` when given): the ``rtl`` section."""
    from .export.rtl import export_rtl

    x = y = None
    if dataset is not None:
        _, x, y = dataset.eval_split
        y = None if dataset.label_kind == "values" else y
    result = export_rtl(qmodel, options, x=x, y=y)
    sections["rtl"] = result.to_dict()
    return result


def rtl_file(model_path: str | os.PathLike, options: Any, *, data: str | os.PathLike | None = None,
             report_path: str | os.PathLike | None = None, seed: int = 0, safe_mode: bool = True) -> Any:
    """``qconvert rtl``: the RTL of a converted model (da4ml), emulated against Keras on the held-out split of
    ``data`` (else on sampled inputs) and synthesized with yosys; the JSON report's ``rtl`` section."""
    import json

    from .model.load import load_model

    qmodel = load_model(model_path, safe_mode=safe_mode)
    dataset = None
    if data is not None:
        from .train.data import check_fits_model, load_data

        dataset = load_data(data, seed=seed)
        check_fits_model(dataset, tuple(qmodel.inputs[0].shape), int(qmodel.outputs[0].shape[-1]))
    sections: dict[str, Any] = {}
    result = _rtl_stage(qmodel, dataset, options, sections)
    if report_path is not None:
        doc = {"model": str(model_path), "versions": versions(), **sections}
        write_text_atomic(report_path, json.dumps(doc, indent=2) + "\n")
    return result
