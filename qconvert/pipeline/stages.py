"""The stages after conversion: accuracy and QAT (with pruning), the hls4ml, RTL and QONNX exports.

Each stage takes what the earlier ones made (the FP32 model, the converted model, the plan computed once,
the data) and adds its section to the report.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..report import ConversionReport
from ..rules import RuleSet
from .convert import build_report, convert_planned, refresh_cost

__all__ = [
    "accuracy_stage",
    "checkpoint_dir",
    "hls4ml_stage",
    "prune_targets",
    "qat_warning",
    "qonnx_stage",
    "rtl_stage",
    "target_stage",
    "train_rules",
    "train_stage",
    "validation_warning",
]


def checkpoint_dir(out: Path) -> Path:
    """The folder QAT checkpoints to for the output ``out`` (``OUT.ckpt``; ``--resume`` reads it)."""
    return out.with_name(f"{out.stem}.ckpt")


def accuracy_stage(model: Any, qmodel: Any, dataset: Any, train: Any, source: Path, out: Path,
                    report: ConversionReport, uncalibrated: Any = None,
                    prune: tuple[Any, ...] | list[Any] = (), target: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """FP32 and PTQ accuracy (and the uncalibrated twin's, when given); with ``train``, QAT (pruning ``prune``
    targets) and its accuracy; with ``target`` (``{"ebops", "rules", "calibration"}``), cost-aware QAT to that
    many EBOPs instead (:func:`target_stage`). Adds the report sections."""
    from ..train.qat import evaluate, infer_loss, loss_from_file

    compiled = loss_from_file(source)
    loss = (train.loss if train is not None else None) or infer_loss(model, dataset, compiled)
    split, x, y = dataset.eval_split
    metrics = {"fp32": evaluate(model, dataset, x, y, loss)}
    if uncalibrated is not None:
        metrics["ptq_uncalibrated"] = evaluate(uncalibrated, dataset, x, y, loss)
    metrics["ptq"] = evaluate(qmodel, dataset, x, y, loss)
    training = None
    if train is not None:
        options = train if train.checkpoint_dir is not None else replace(train, checkpoint_dir=checkpoint_dir(out))
        if target is not None:
            qmodel, training, target_section = target_stage(model, dataset, replace(train, loss=loss), report, target,
                                                            compiled, out)
        else:
            qmodel, training = train_stage(model, qmodel, dataset, replace(options, loss=loss), report, prune)
        metrics["qat"] = evaluate(qmodel, dataset, x, y, loss)
    report.sections["accuracy"] = {
        "split": split,
        "samples": len(x),
        "loss_function": loss,
        "note": dataset.split_note,
        **{name: m.accuracy for name, m in metrics.items()},
        "loss": {name: m.loss for name, m in metrics.items()},
    }
    if split == "test" and metrics["fp32"].accuracy is not None:
        val = evaluate(model, dataset, dataset.x_val, dataset.y_val, loss).accuracy
        report.sections["accuracy"]["fp32_validation"] = val
        warning = validation_warning(val, metrics["fp32"].accuracy, len(dataset.x_val), len(x))
        if warning:
            report.sections["accuracy"]["warning"] = warning
    if metrics.get("qat") is not None and metrics["qat"].accuracy is not None and metrics["ptq"].accuracy is not None:
        collapse = qat_warning(metrics["qat"].accuracy, metrics["ptq"].accuracy, len(x), target is not None)
        if collapse:
            report.sections["accuracy"]["qat_warning"] = collapse
    report.sections["per_class"] = {name: m.per_class for name, m in metrics.items()}
    report.sections["auc"] = {name: m.auc for name, m in metrics.items()}
    if training is not None:
        report.sections["training"] = training.to_dict()
    if target is not None:
        report.sections.setdefault("training", {})["target_ebops"] = target_section
    return qmodel, training


#: The validation split is questioned when the FP32 model scores this much higher on it than on the test split
#: (and by more than three standard errors of the difference).
VALIDATION_GAP = 0.02


def validation_warning(val: float, test: float, n_val: int, n_test: int) -> str | None:
    """A warning when the FP32 model's validation accuracy ``val`` is far above its test accuracy ``test``
    (fractions; ``n_val``, ``n_test`` rows): more than :data:`VALIDATION_GAP` and three standard errors of the
    difference of two binomial proportions. Else None."""
    p = (val * n_val + test * n_test) / (n_val + n_test)
    se = math.sqrt(max(p * (1 - p), 1e-12) * (1 / n_val + 1 / n_test))
    if val - test <= max(VALIDATION_GAP, 3 * se):
        return None
    return (f"the FP32 model scores {val:.4f} on the validation split but {test:.4f} on the test split: it may have "
            "been trained or chosen on validation rows, so training choices made on them (early stopping, a search's "
            "ranking) can be optimistic; give validation rows it never saw")


#: QAT is questioned when it ends this far (accuracy, absolute) below the converted model before training.
QAT_DROP = 0.10


def qat_warning(qat: float, ptq: float, n: int, target: bool) -> str | None:
    """A warning when QAT ends more than :data:`QAT_DROP` and three standard errors (binomial, ``n`` rows) below
    PTQ: training that diverged or had too few epochs, not a quantization limit. Else None."""
    se = math.sqrt(max(ptq * (1 - ptq), 1e-12) * 2 / n)
    if ptq - qat <= max(QAT_DROP, 3 * se):
        return None
    advice = ("cost-aware QAT needs tens of epochs to learn the bit widths and then fine-tune; give more --epochs, "
              "or a higher --target-ebops" if target else "give more --epochs or a lower --lr")
    return f"QAT ended at {qat:.4f}, {100 * (ptq - qat):.1f} pp below the model before training ({ptq:.4f}): {advice}"


def target_stage(model: Any, dataset: Any, options: Any, report: ConversionReport, target: dict[str, Any],
                 compiled: str | None, out: Path) -> tuple[Any, Any, dict[str, Any]]:
    """``--target-ebops``: cost-aware QAT (:func:`~qconvert.train.target.train_to_target`) of the converted model;
    writes the rule file of the learned precisions beside ``out`` (``OUT.rules.yaml``) and redoes the report's
    layer rows and totals for the trained model. Returns ``(model, fine-tuning TrainResult or None, the
    training.target_ebops section)``."""
    from ..io import write_text_atomic

    rules_path = out.with_name(f"{out.stem}.rules.yaml")
    qmodel, finetune, section, text = _to_target(model, target["qmodel"], dataset, options, report, target["ebops"],
                                                 target["rules"], target["calibration"], compiled, str(rules_path))
    write_text_atomic(rules_path, text)
    return qmodel, finetune, {**section, "rules_file": str(rules_path)}


def _to_target(model: Any, qmodel: Any, dataset: Any, options: Any, report: ConversionReport, target_ebops: float,
               ruleset: RuleSet, x_cal: Any, compiled: str | None, rules_name: str) -> tuple[Any, Any, dict, str]:
    """Cost-aware QAT and the report's rows and totals redone for the trained model; returns ``(model, fine-tuning
    TrainResult, the target_ebops section, the learned rule file's text)``."""
    from ..model.plan import plan_model
    from ..rules import loads_rules
    from ..train.target import train_to_target

    result = train_to_target(model, qmodel, dataset, target_ebops, options, rules=ruleset, calibration=x_cal,
                             compiled_loss=compiled)
    trained = build_report(plan_model(model, loads_rules(result.rules_text, rules_name)), result.model, report.model)
    report.layers, report.totals = trained.layers, trained.totals
    section = result.to_dict()
    section.pop("finetune", None)
    return result.model, result.finetune, section, result.rules_text


def train_stage(model: Any, qmodel: Any, dataset: Any, options: Any, report: ConversionReport,
                 prune: tuple[Any, ...] | list[Any] = (), callbacks: tuple[Any, ...] = ()) -> tuple[Any, Any]:
    """QAT of ``qmodel`` (pruning the ``prune`` targets), then its cost refreshed in ``report`` (EBOPs of the
    trained weights; sparsity per layer). ``callbacks`` (e.g. a search trial's early stop) run at each epoch's end
    after the pruning masks and before the checkpointing."""
    from ..train.qat import fine_tune

    teacher = model if options.distill is not None else None
    if prune:
        from ..train.prune import make_pruning_callback, sparsity_report

        before = {k: getattr(report.totals, k) for k in ("ebops", "multiplies", "dsp")}
        qmodel, training = fine_tune(qmodel, dataset, options, teacher=teacher,
                                     callbacks=[make_pruning_callback(prune), *callbacks],
                                     # masks grow at the end of an epoch, after Keras validated it: the first
                                     # epoch validated with the final masks is the one after end_epoch
                                     monitor_from=max(t.end_epoch for t in prune) + 1)
        layers = sparsity_report(qmodel, prune)
        after = refresh_cost(report, qmodel, {name: v["sparsity"] for name, v in layers.items()})
        report.sections["pruning"] = {"applied": True, "layers": layers, "before": before, "after": after}
    else:
        qmodel, training = fine_tune(qmodel, dataset, options, teacher=teacher, callbacks=list(callbacks))
        refresh_cost(report, qmodel, {})
    return qmodel, training


def train_rules(model: Any, ruleset: RuleSet, dataset: Any, train: Any, *, calibration_rows: int | None = None,
                callbacks: tuple[Any, ...] = (), target_ebops: float | None = None) -> tuple[Any, ConversionReport, Any]:
    """Convert, calibrate and fine-tune: the main job's stages on data already loaded, nothing written.

    ``model`` is the FP32 Keras model, ``dataset`` a :class:`~qconvert.train.data.Dataset`, ``train`` a
    :class:`~qconvert.train.TrainOptions` (its ``loss`` None: inferred as the main job infers it). The
    conversion, calibration rows, pruning schedule and training are those of :func:`convert_file` with the
    same ``--seed``, so a search trial run through here is reproduced by the main job with its rule file.
    Returns ``(qmodel, report, training)``; the report's totals hold the trained model's EBOPs. With
    ``target_ebops``, cost-aware QAT as the main job's ``--target-ebops`` (``callbacks`` do not apply; the
    report's ``training.target_ebops`` section holds the learned rule file's text as ``rules_text``).
    """
    from ..model.calibrate import DEFAULT_ROWS
    from ..model.plan import plan_model
    from ..train.qat import infer_loss

    x_cal = dataset.calibration_rows(calibration_rows or DEFAULT_ROWS, seed=train.seed)
    the_plan = plan_model(model, ruleset)
    qmodel, report = convert_planned(model, the_plan, getattr(model, "name", "model"), x_cal)
    options = replace(train, loss=train.loss or infer_loss(model, dataset, None))
    if target_ebops is not None:
        qmodel, training, section, text = _to_target(model, qmodel, dataset, options, report, target_ebops, ruleset,
                                                     x_cal, None, f"{ruleset.source} (learned)")
        report.sections["training"] = {"target_ebops": {**section, "rules_text": text}}
        return qmodel, report, training
    prune = prune_targets(the_plan, train, report)
    qmodel, training = train_stage(model, qmodel, dataset, options, report, prune, callbacks)
    return qmodel, report, training


def prune_targets(the_plan: Any, train: Any, report: ConversionReport) -> list[Any]:
    """Layers the plan prunes (checked against ``--epochs``); without training, the report says it was not applied."""
    if not any(item.prune is not None for item in the_plan.layers):
        return []
    if train is None:
        report.sections["pruning"] = {"applied": False, "note": "the rules prune, but pruning acts during QAT: add --data and --epochs"}
        return []
    from ..train.prune import prune_targets as schedule

    return schedule(the_plan, train.epochs)


def _held_out(dataset: Any) -> tuple[Any, Any]:
    """The inputs and class labels an export is checked on: the held-out split (no labels for regression targets);
    ``(None, None)`` without data."""
    if dataset is None:
        return None, None
    _, x, y = dataset.eval_split
    return x, (None if dataset.label_kind == "values" else y)


def hls4ml_stage(qmodel: Any, dataset: Any, options: Any, report: ConversionReport) -> Any:
    """Write, compile and verify the hls4ml project (on the held-out split of ``dataset`` when given)."""
    from ..export import bops_at_precisions, export

    x, y = _held_out(dataset)
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


def rtl_stage(qmodel: Any, dataset: Any, options: Any, sections: dict[str, Any]) -> Any:
    """RTL through da4ml, Verilator and yosys (on the held-out split of ``dataset`` when given): the ``rtl`` section."""
    from ..export.rtl import export_rtl

    x, y = _held_out(dataset)
    result = export_rtl(qmodel, options, x=x, y=y)
    sections["rtl"] = result.to_dict()
    return result


def qonnx_stage(qmodel: Any, dataset: Any, options: Any, sections: dict[str, Any]) -> Any:
    """The QONNX graph, run by qonnx against Keras (on the held-out split of ``dataset`` when given): the ``qonnx``
    section."""
    from ..export.qonnx import export_qonnx

    x, y = _held_out(dataset)
    result = export_qonnx(qmodel, options, x=x, y=y)
    sections["qonnx"] = result.to_dict()
    return result
