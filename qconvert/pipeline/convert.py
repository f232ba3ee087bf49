"""Planning and rewriting: the rules applied to a model, the report of what they did (nothing written)."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from ..errors import ConversionError
from ..report import ConversionReport, LayerRow, Totals, plan_rows
from ..rules import RuleSet, as_ruleset
from ..version import __version__

__all__ = ["build_report", "calibrated_plan", "convert", "convert_planned", "plan", "preview_cost", "refresh_cost", "versions"]


def versions() -> dict[str, str]:
    """The versions a report and a model's provenance record: qconvert, Keras, QKeras, backend."""
    import keras

    from ..runtime import import_qkeras

    qkeras = import_qkeras()
    return {"qconvert": __version__, "keras": keras.__version__, "qkeras": qkeras.__version__, "backend": keras.backend.backend()}


def _as_model(model_or_path: Any, safe_mode: bool = True, *, weights: str | os.PathLike | None = None,
              custom_objects: dict[str, Any] | None = None) -> tuple[Any, str]:
    if isinstance(model_or_path, (str, os.PathLike)):
        from ..model.load import load_model

        model = load_model(model_or_path, safe_mode=safe_mode, weights=weights, custom_objects=custom_objects)
        return model, str(model_or_path)
    return model_or_path, getattr(model_or_path, "name", "model")


def plan(model_or_path: Any, rules: RuleSet | str | os.PathLike, *, safe_mode: bool = True,
         weights: str | os.PathLike | None = None, custom_objects: dict[str, Any] | None = None) -> Any:
    """The :class:`~qconvert.model.plan.Plan` the rules make for the model (nothing converted)."""
    from ..model.plan import plan_model

    model, _ = _as_model(model_or_path, safe_mode, weights=weights, custom_objects=custom_objects)
    return plan_model(model, as_ruleset(rules))


def calibrated_plan(model_or_path: Any, rules: RuleSet | str | os.PathLike, x: Any = None, *,
                    percentile: float | None = None, safe_mode: bool = True, weights: str | os.PathLike | None = None,
                    custom_objects: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """``(plan, calibration)``: the plan with ``integer: auto`` resolved from the weights and the calibration
    rows ``x`` (activations left ``auto`` without ``x``), and what each quantizer clips. What ``rules show`` prints."""
    from ..model.calibrate import PERCENTILE, calibrate

    model, _ = _as_model(model_or_path, safe_mode, weights=weights, custom_objects=custom_objects)
    return calibrate(model, plan(model, rules), x, percentile=percentile or PERCENTILE, require=False)


def preview_cost(model_or_path: Any, the_plan: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Cost per layer of what ``the_plan`` makes (``rules show``, before any training), and, when the rules
    prune, the same after one-shot magnitude pruning of the converted weights at the target sparsities."""
    from ..model.cost import model_cost
    from ..model.rewrite import apply_plan

    model, _ = _as_model(model_or_path)
    qmodel = apply_plan(model, the_plan)
    costs = model_cost(qmodel)
    targets = [(item.path, item.prune.sparsity) for item in the_plan.layers if item.prune is not None]
    if not targets:
        return costs, None
    from ..train.prune import prune_once

    prune_once(qmodel, targets)
    return costs, model_cost(qmodel)


def _find(model: Any, path: tuple[str, ...]) -> Any | None:
    for name in path:
        try:
            model = model.get_layer(name)
        except ValueError:
            return None
    return model


def build_report(plan: Any, qmodel: Any, source: str, snapshot: Any = None) -> ConversionReport:
    """The report of ``qmodel`` made by ``plan`` from the model named ``source``: one row per layer, costs, totals."""
    from ..model.cost import model_cost

    costs = model_cost(qmodel, snapshot=snapshot)
    rows: list[LayerRow] = []

    for row in plan_rows(plan):
        c = costs.get(row.name)
        layer = _find(qmodel, row.path) if row.path is not None else None
        params = layer.count_params() if layer is not None and layer.built else 0
        rows.append(LayerRow(row.name, row.type_before, row.type_after, row.action, row.rule, row.kernel, row.bias,
                             row.activation, params, c.bops if c else 0.0, c.bops_fp32 if c else 0.0,
                             c.bops_ap_fixed if c else 0.0, row.note, row.leftover, ebops=c.ebops if c else None,
                             multiplies=c.multiplies if c else None, dsp=c.dsp if c else None))
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


def refresh_cost(report: ConversionReport, qmodel: Any, sparsity: dict[str, float]) -> dict[str, Any]:
    """Recount EBOPs, multiplies and DSPs from ``qmodel``'s weights (after QAT and pruning); returns the totals."""
    from ..model.cost import model_cost

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
    from ..model.plan import plan_model

    model, source = _as_model(model_or_path)
    from ..model.snapshot import Snapshot

    snapshot = Snapshot()  # configs and weights read once for the plan, the calibration and the rewrite
    the_plan = plan_model(model, as_ruleset(rules), snapshot=snapshot)
    leftovers = the_plan.leftovers()
    if strict and leftovers:
        names = ", ".join(p.qualified_name for p in leftovers)
        raise ConversionError(f"strict: {len(leftovers)} layer(s) left float without a rule: {names}")
    return convert_planned(model, the_plan, source, calibration_data, percentile=percentile, uncalibrated=uncalibrated,
                           snapshot=snapshot)


def convert_planned(model: Any, the_plan: Any, source: str, calibration_data: Any = None, *,
                    percentile: float | None = None, uncalibrated: bool = False,
                    snapshot: Any = None) -> tuple[Any, ConversionReport]:
    """:func:`convert` on a plan already made for ``model`` (the main job plans once and converts twice: the
    calibrated model and, for comparison, its uncalibrated twin). ``source`` names the model in the report.
    ``snapshot``: the :class:`~qconvert.model.snapshot.Snapshot` the plan was made with, valid while ``model``
    does not change (None: a fresh one)."""
    from ..model.calibrate import PERCENTILE, calibrate
    from ..model.calibrate import uncalibrated as without_auto
    from ..model.rewrite import apply_plan
    from ..model.snapshot import Snapshot

    snapshot = snapshot if snapshot is not None else Snapshot()  # configs and weights read once
    if uncalibrated:
        the_plan = without_auto(the_plan)
    the_plan, calibration = calibrate(model, the_plan, calibration_data, percentile=percentile or PERCENTILE,
                                      snapshot=snapshot)
    qmodel = apply_plan(model, the_plan, snapshot)
    report = build_report(the_plan, qmodel, source, snapshot)
    report.sections["calibration"] = calibration.to_dict()
    return qmodel, report
