"""``qconvert search``: the accuracy-cost front of a search space (Optuna)."""

from __future__ import annotations

from typing import Any

import click

from ..errors import SettingsError
from ..runtime import quiet_backends
from ..targets import IO_TYPES, STRATEGIES
from .common import (
    calibration_rows_option,
    loading_options,
    make_console,
    run,
)


@click.command("search")
@click.argument("model", type=click.Path(path_type=str))
@click.option("-r", "--rules", "space", required=True, type=click.Path(path_type=str),
              help="Search space: a rule file whose values may be lists of choices or {low, high[, step, log]} ranges.")
@click.option("--data", required=True, type=click.Path(path_type=str),
              help="data.npz (X_train, y_train[, X_val, y_val, X_test, y_test]), data.csv or X.npy,y.npy. Trials are "
                   "chosen on the validation split; the front's test accuracy is reported, never used for choosing.")
@click.option("-o", "--output", "outdir", required=True, type=click.Path(path_type=str),
              help="Output folder: study.db, search.json, pareto.png, front/NN.yaml.")
@click.option("--trials", type=click.IntRange(min=1), default=40, show_default=True,
              help="Finished trials the study runs to (all workers together; failed ones do not count).")
@click.option("--epochs", type=click.IntRange(min=1), default=20, show_default=True, help="QAT epochs per trial.")
@click.option("--objective", default="accuracy,ebops", show_default=True,
              help="accuracy,COST: the Pareto front of validation accuracy against COST: ebops, dsp, multiplies, lut "
                   "(da4ml's LUT estimate of the RTL, seconds a trial) or lut_yosys (yosys synth_xilinx, minutes).")
@click.option("--max-drop", type=click.FloatRange(min=0), metavar="PP",
              help="Instead of a front: the cheapest model within PP percentage points of FP32 validation accuracy "
                   "(default: the whole front, its chosen point the cheapest within 1 pp).")
@click.option("-j", "--jobs", default=1, show_default=True, type=click.IntRange(min=1),
              help="Local worker processes sharing the study.")
@click.option("--storage", help="Optuna storage shared by workers on many machines: an RDB URL (sqlite:///..., "
                                "postgresql://...) or a journal file on a shared file system. Default: OUTDIR/study.db.")
@click.option("--study", "study_name", default="qconvert-search", show_default=True, help="Study name in the storage.")
@click.option("--resume", is_flag=True, help="Continue the interrupted search in OUTDIR.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the data split, the trials' training and the sampler (one worker: the same trials).")
@click.option("--reference", "references", multiple=True, default=("6bit",), show_default=True,
              help="Preset or rule file measured in the same run as a reference point (repeat; 'none': no reference).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Adam learning rate (default: the main job's).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Default: the main job's automatic batch size.")
@click.option("--lr-schedule", type=click.Choice(["cosine"]), help="Learning-rate schedule over the epochs.")
@calibration_rows_option
@click.option("--pruner", type=click.Choice(["dominance", "halving", "hyperband", "none"]),
              help="How trials are stopped early: dominance (default: a finished trial costing no more was more "
                   "accurate at the same epoch), halving or hyperband (Optuna's successive halving / Hyperband, the "
                   "epoch as the resource, among trials within a factor 2 of each other's EBOPs), none.")
@click.option("--warmup-epochs", type=click.IntRange(min=1), metavar="N",
              help="No trial is stopped before N epochs (halving/hyperband: the first rung). Default: dominance a "
                   "third of --epochs, halving/hyperband a ninth.")
@click.option("--no-early-stop", is_flag=True, help="Run every trial to the end (--pruner none).")
@click.option("--retrain-epochs", type=click.IntRange(min=1), metavar="E",
              help="After the study, re-train each front point and reference through the main job for E epochs (same "
                   "seed); the front, the chosen point and front/NN.yaml are those of the re-trained models.")
@click.option("--hls4ml", "hls4ml_flag", is_flag=True,
              help="Run the main job on the chosen point's rule file with the hls4ml export and verification "
                   "(OUTDIR/chosen.keras, OUTDIR/hls4ml).")
@click.option("--io-type", type=click.Choice(IO_TYPES), default="io_parallel", show_default=True,
              help="hls4ml io type for --hls4ml.")
@click.option("--strategy", type=click.Choice(STRATEGIES, case_sensitive=False),
              help="hls4ml strategy for --hls4ml (default Latency).")
@click.option("--weights", type=click.Path(path_type=str), help="Weights .h5 of a Keras 2 JSON MODEL (default: found beside it).")
@loading_options
@click.pass_context
def search_cmd(ctx: click.Context, model: str, space: str, data: str, outdir: str, trials: int, epochs: int,
               objective: str, max_drop: float | None, jobs: int, storage: str | None, study_name: str, resume: bool,
               seed: int, references: tuple[str, ...], lr: float | None, batch_size: int | None,
               lr_schedule: str | None, calibration_rows: int | None, pruner: str | None, warmup_epochs: int | None,
               no_early_stop: bool, retrain_epochs: int | None, hls4ml_flag: bool,
               io_type: str, strategy: str | None, weights: str | None, custom_objects: tuple[str, ...],
               unsafe: bool) -> None:
    """Search precisions and pruning for MODEL over the space in RULES: the accuracy-cost front (Optuna)."""

    def job() -> int:
        from ..search import SearchSettings, StudyOptions, load_space

        load_space(space)  # a bad space: exit 2 naming file, line and key, before anything else
        goal = [part.strip() for part in objective.split(",")]
        if len(goal) != 2 or goal[0] != "accuracy":
            raise click.BadParameter("expected accuracy,COST (e.g. accuracy,ebops)", param_hint="--objective")
        if no_early_stop and pruner not in (None, "none"):
            raise SettingsError(f"--no-early-stop means --pruner none; it cannot be given with --pruner {pruner}")
        settings = SearchSettings(model=model, space=space, data=data, epochs=epochs, seed=seed, cost=goal[1],
                                  max_drop=max_drop, batch_size=batch_size, lr=lr, lr_schedule=lr_schedule,
                                  calibration_rows=calibration_rows, safe_mode=not unsafe, weights=weights,
                                  custom_objects=custom_objects, warmup_epochs=warmup_epochs,
                                  pruner="none" if no_early_stop else (pruner or "dominance"),
                                  retrain_epochs=retrain_epochs)
        refs = () if references == ("none",) else references
        options = StudyOptions(outdir=outdir, trials=trials, jobs=jobs, storage=storage, study=study_name,
                               resume=resume, references=refs)
        hls4ml = None
        if hls4ml_flag:
            from pathlib import Path

            from ..export import Hls4mlOptions

            hls4ml = Hls4mlOptions(Path(outdir) / "hls4ml", io_type=io_type, strategy=strategy)
        elif strategy:
            raise click.UsageError("--strategy needs --hls4ml")
        quiet_backends()
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        from ..search import search

        console = make_console()
        try:
            with _search_progress(console, trials) as on_progress:
                result = search(settings, options, hls4ml=hls4ml, on_progress=on_progress)
        except KeyboardInterrupt:
            click.echo(f"qconvert: interrupted; finished trials are kept in the study: run the same command with "
                       f"--resume to continue{'' if storage is None else ' (or without it, on the shared --storage)'}",
                       err=True)
            return 130
        console.print(result.table())
        counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(result.counts.items()))
        console.print(f"trials: {counts}")
        click.echo(f"wrote {result.files.get('json')}, {result.files.get('pareto')}, "
                   f"{result.files.get('front')}/ ({len(result.front)} rule files)")
        for name, error in result.retrain_errors.items():
            click.echo(f"qconvert: warning: re-training {name} failed: {error}", err=True)
        for warning in result.warnings:
            click.echo(f"qconvert: warning: {warning}", err=True)
        if result.chosen is not None:
            c, f = result.chosen, result.figures(result.chosen)
            how = f" re-trained for {result.retrain_epochs} epochs" if f is not c else ""
            console.print(f"chosen: front/{result.front.index(c):02d}.yaml (trial {c['number']}{how}): validation "
                          f"accuracy {f['val_accuracy']:.4f}, {result.cost} {f[result.cost]:,.0f}")
        if result.reproduced is not None:
            r = result.reproduced
            if "error" in r:
                click.echo(f"qconvert: error: --hls4ml: {r['error']}", err=True)
                return 2
            h = r["hls4ml"]
            console.print(f"main job on it: {r['split']} accuracy {r['accuracy']:.4f} (search: {r['search_accuracy']:.4f}), "
                          f"EBOPs {r['ebops']:,.0f} (search: {r['search_ebops']:,.0f}); hls4ml logits bit-identical "
                          f"{100 * (h['logits_exact_fraction'] or 0):.1f} %, limits: {h['limits'] or 'none'}")
        return 0 if result.front else 1

    run(ctx, job)


def trial_line(trial: dict[str, Any]) -> str:
    """``trial 3 complete: val acc 0.9561, ebops 12,345; fc1.kernel.bits=4, ...`` (an ended trial, one line)."""
    figures = [f"val acc {trial['val_accuracy']:.4f}"] if trial.get("val_accuracy") is not None else []
    figures += [f"{key} {value:,.0f}" for key, value in trial.items()
                if key not in ("number", "state", "params", "val_accuracy") and isinstance(value, (int, float))]
    params = ", ".join(f"{k}={v}" for k, v in trial["params"].items())
    return f"trial {trial['number']} {trial['state']}: {', '.join(figures) or 'no figures'}" + (f"; {params}" if params else "")


def _search_progress(console: Any, total: int) -> Any:
    """A rich progress bar (trials done, best so far, ETA) as a context manager yielding the callback."""
    from contextlib import contextmanager

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    @contextmanager
    def bar() -> Any:
        progress = Progress(TextColumn("search"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[best]}"),
                            console=console, transient=False, disable=not console.is_terminal)
        task = progress.add_task("search", total=total, best="")

        def update(event: dict[str, Any]) -> None:
            best = event.get("best")
            text = (event["event"] if event["event"].startswith("re-train") else
                    f"best: trial {best['number']} acc {best['val_accuracy']:.4f}" if best else
                    (event["event"] if event["event"] not in ("start", "trial", "poll") else ""))
            progress.update(task, completed=min(event["done"], total), best=text)
            if not console.is_terminal:  # a log (CI, Slurm): one line per trial that ended, as it ends
                for trial in event.get("finished", ()):
                    console.print(trial_line(trial), soft_wrap=True, highlight=False)

        with progress:
            yield update

    return bar()
