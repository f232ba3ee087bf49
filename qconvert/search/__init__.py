"""``qconvert search``: the mixed-precision, pruned model on the accuracy–cost front.

A space (:mod:`.space`, a rule file with choices) → many trials of the main job
(:mod:`.objective`), stopped early when they lose (:mod:`.pruning`), run by Optuna
workers on one study (:mod:`.study`) → optionally the front re-trained for longer
(:mod:`.retrain`) → the Pareto front, its rule files and plot (:mod:`.front`).
:func:`search` composes them; it re-implements no stage of the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import DataError, OutputError, QConvertError, RuleError
from ..rules import Dimension, Space, is_space, load_space, loads_space
from .front import SearchResult, check_outdir, collect, pareto_front
from .objective import COSTS, PRUNERS, SearchSettings, reproduce_command, rules_header
from .study import StudyOptions, count_trials, open_study, run_worker
from .workers import run_workers

__all__ = [
    "COSTS",
    "PRUNERS",
    "Dimension",
    "SearchResult",
    "SearchSettings",
    "Space",
    "StudyOptions",
    "is_space",
    "load_space",
    "loads_space",
    "pareto_front",
    "search",
]


def _check(settings: SearchSettings, options: StudyOptions) -> None:
    from ..rules import load_rules

    if settings.epochs < 1:
        raise DataError(f"search: --epochs must be at least 1, got {settings.epochs} (each trial fine-tunes)")
    if settings.cost not in COSTS:
        raise QConvertError(f"search: unknown cost {settings.cost!r}; expected one of {', '.join(COSTS)}")
    if settings.pruner not in PRUNERS:
        raise QConvertError(f"search: unknown --pruner {settings.pruner!r}; expected one of {', '.join(PRUNERS)}")
    if settings.warmup_epochs is not None and settings.warmup_epochs < 1:
        raise QConvertError(f"search: --warmup-epochs must be at least 1, got {settings.warmup_epochs}")
    if settings.retrain_epochs is not None and settings.retrain_epochs < 1:
        raise QConvertError(f"search: --retrain-epochs must be at least 1, got {settings.retrain_epochs}")
    if settings.max_drop is not None and settings.max_drop < 0:
        raise QConvertError(f"search: --max-drop must be >= 0 percentage points, got {settings.max_drop}")
    if options.trials < 1 or options.jobs < 1:
        raise QConvertError("search: --trials and -j must be at least 1")
    if "none" in options.references:
        raise QConvertError("search: --reference none means no reference; it cannot be given with others")
    for name in options.references:
        load_rules(name)  # a bad reference preset fails before any training
    out = Path(options.outdir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    if not out.parent.is_dir():
        raise OutputError(f"{out}: folder {out.parent} does not exist")
    check_outdir(out, options.study)


def search(settings: SearchSettings, options: StudyOptions, *, hls4ml: Any = None,
           on_progress: Callable[[dict[str, Any]], None] | None = None) -> SearchResult:
    """Run (or resume, or join) the study and write its results into ``options.outdir``.

    ``settings.space`` is a space file (choices and ranges; see :mod:`qconvert.rules.space`); every error in
    it is raised as :class:`RuleError` (file, line, key) before any training, as are bad data, model and
    settings (:class:`QConvertError`). ``hls4ml`` (a :class:`~qconvert.export.Hls4mlOptions`) runs the main job on
    the chosen point's rule file with the hls4ml export and verification; the figures land in
    ``result.reproduced``. ``on_progress`` gets ``{"done", "total", "best", "event"}`` after each trial
    (polled every 2 s with several workers).

    Returns the :class:`SearchResult` (it renders as a table and a plot in a notebook). Files written:
    ``OUTDIR/search.json`` (every trial), ``OUTDIR/pareto.png``, ``OUTDIR/front/NN.yaml`` (NN by cost, each
    reproducing its trial through the main job) and, by default, the study ``OUTDIR/study.db``.
    """
    space = load_space(settings.space)
    if not space.dimensions:
        raise RuleError("has no choices or ranges: nothing to search (write e.g. 'bits: [4, 6, 8]')",
                        source=space.source)
    _check(settings, options)
    if hls4ml is not None:
        from ..export import check_options

        hls4ml = check_options(hls4ml)
    from .objective import Workbench, float_gaps

    bench = Workbench(settings, space)  # the model and data, checked before anything is written
    warnings = float_gaps(bench.model, space, options.references)
    if options.storage is not None:
        from .study import open_storage

        open_storage(options.storage)  # a shared storage that cannot be opened: before OUTDIR is made
    Path(options.outdir).mkdir(exist_ok=True)
    study = open_study(settings, space, options, create=True)

    seen: set[int] = set()

    def progress(event: str, current: Any = None) -> None:
        if on_progress is None:
            return
        s = current if current is not None else study
        on_progress({"done": count_trials(s), "total": options.trials, "best": _best(s, settings), "event": event,
                     "finished": _newly_finished(s, seen, settings)})

    progress("start")
    if options.jobs == 1:
        run_worker(settings, space, options, 0, on_event=lambda event: progress(event), bench=bench)
    else:
        errors = run_workers(settings, space, options, bench, on_event=lambda event: progress(event),
                             on_poll=lambda s: progress("poll", s))
        if errors and count_trials(study) < options.trials:
            raise QConvertError(errors[0])
    progress("done")  # the trials that ended after the last poll
    result = collect(study, space, settings, options.outdir, settings.max_drop)
    result.warnings = warnings
    if settings.retrain_epochs:
        result = _retrain(study, space, settings, options, bench, result, progress)
    fp32 = result.fp32.get("val_accuracy")
    result.write(space, lambda t, path: rules_header(t, settings, fp32, path))
    if hls4ml is not None and result.chosen is not None:
        result.reproduced = _reproduce(settings, options, result, hls4ml)
        result.write_json()
    return result


def _retrain(study: Any, space: Space, settings: SearchSettings, options: StudyOptions, bench: Any,
             result: SearchResult, progress: Callable[..., None]) -> SearchResult:
    """Re-train the search's front and the references for ``--retrain-epochs`` (those not yet re-trained),
    sharing them among the ``-j`` workers; the result collected again, its front that of the re-trained models."""
    from .retrain import pending, retrain

    tasks = pending(study, result.search_front, options.references, settings.retrain_epochs)
    if tasks:
        if options.jobs == 1 or len(tasks) == 1:
            retrain(study, settings, space, tasks, bench, on_event=lambda event: progress(event))
        else:
            errors = run_workers(settings, space, options, bench, on_event=lambda event: progress(event),
                                 on_poll=lambda s: progress("re-training", s), tasks=tasks)
            if errors:
                raise QConvertError(errors[0])
    return collect(study, space, settings, options.outdir, settings.max_drop)


def _newly_finished(study: Any, seen: set[int], settings: SearchSettings) -> list[dict[str, Any]]:
    """The trials that ended (complete, stopped early, failed) since the last call, oldest first (``seen``: the
    numbers already told, updated): number, state, parameters, validation accuracy and cost when known."""
    from optuna.trial import TrialState

    ended = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    out = []
    for t in sorted((t for t in ended if t.number not in seen), key=lambda t: t.number):
        seen.add(t.number)
        out.append({"number": t.number, "state": t.state.name.lower(), "params": dict(t.params),
                    "val_accuracy": t.user_attrs.get("val_accuracy"), settings.cost: t.user_attrs.get(settings.cost)})
    return out


def _best(study: Any, settings: SearchSettings) -> dict[str, Any] | None:
    """The most accurate finished trial so far (for the progress line)."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if "val_accuracy" in t.user_attrs]
    if not done:
        return None
    best = max(done, key=lambda t: (t.user_attrs["val_accuracy"], -t.user_attrs.get(settings.cost, 0)))
    return {"number": best.number, "val_accuracy": best.user_attrs["val_accuracy"],
            settings.cost: best.user_attrs.get(settings.cost)}


def _reproduce(settings: SearchSettings, options: StudyOptions, result: SearchResult, hls4ml: Any) -> dict[str, Any]:
    """The main job on the chosen point's rule file, with the hls4ml export: does it give the same model?"""
    from ..pipeline import convert_file
    from ..train.qat import TrainOptions

    out = Path(options.outdir)
    chosen = result.chosen
    shown = result.figures(chosen)
    retrained = shown is not chosen
    rules = out / chosen["rules_file"]
    target = (chosen.get("training") or {}).get("target_ebops")  # the main job's --target-ebops, as the trial's
    train = TrainOptions(epochs=settings.retrain_epochs if retrained else settings.epochs, lr=settings.lr,
                         batch_size=settings.batch_size, seed=settings.seed, lr_schedule=settings.lr_schedule,
                         verbose=0)
    if getattr(hls4ml, "output_dir", None) is None:
        hls4ml = replace(hls4ml, output_dir=out / "hls4ml")
    try:
        from ..model.load import resolve_custom_objects

        file_result = convert_file(settings.model, rules, output=out / "chosen.keras", report_path=out / "chosen.json",
                                   data=settings.data, train=train, hls4ml=hls4ml, safe_mode=settings.safe_mode,
                                   weights=settings.weights, calibration_rows=settings.calibration_rows,
                                   custom_objects=resolve_custom_objects(settings.custom_objects), target_ebops=target)
    except QConvertError as exc:
        return {"rules_file": str(rules), "error": str(exc)}
    report = file_result.report
    accuracy = report.sections.get("accuracy", {})
    section = report.sections.get("hls4ml", {})
    return {
        "trial": chosen["number"], "rules_file": str(rules), "retrained": retrained,
        "command": reproduce_command(settings, str(rules), retrained=retrained, target_ebops=target),
        "model": str(file_result.output), "report": str(out / "chosen.json"),
        "split": accuracy.get("split"), "accuracy": accuracy.get("qat"),
        "search_accuracy": shown.get("test_accuracy") if accuracy.get("split") == "test" else shown["val_accuracy"],
        "ebops": report.totals.ebops, "search_ebops": shown.get("ebops"),
        "hls4ml": {k: section.get(k) for k in ("logits_exact_fraction", "argmax_agreement", "accuracy_hls4ml",
                                               "first_divergent_layer", "limits", "project_dir")},
    }


