"""The command line: parse, call the pipeline, render, exit code. Imports are lazy.

Exit codes: 0 success; 1 finished with leftovers under ``--strict``; 2 usage,
rule, input or output error (one line on stderr; ``--debug`` for the traceback).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from .errors import QConvertError

__all__ = ["cli", "main"]

_GROUP_FLAGS = ("--debug", "--help", "-h", "--version")


class _MainJobGroup(click.Group):
    """A group whose default command is ``convert``: ``qconvert MODEL --rules R`` works."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rest = list(args)
        i = 0
        while i < len(rest) and rest[i] in _GROUP_FLAGS:
            i += 1
        if i < len(rest) and rest[i] not in self.commands:
            rest.insert(i, "convert")
        return super().parse_args(ctx, rest)


def _quiet_backends() -> None:
    """Import Keras and QKeras with TensorFlow's C++ start-up chatter kept off the terminal.

    TensorFlow writes INFO lines to file descriptor 2 before its logging is set
    up, whatever TF_CPP_MIN_LOG_LEVEL says; they are captured and shown only if
    the import fails.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "keras" in sys.modules:
        return
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
            import qkeras  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    import logging

    # TensorFlow's Python-side warnings (tf.function retracing when several models are evaluated in
    # one run) say nothing a qconvert user can act on; errors still show.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:  # logs and pipes: wide enough for one line per layer
        console = Console(stderr=stderr, highlight=False, width=200)
    return console


def _run(ctx: click.Context, job: Callable[[], int]) -> None:
    """Run ``job``; a QConvertError becomes one line on stderr and exit 2."""
    try:
        code = job()
    except QConvertError as exc:
        if ctx.find_root().params.get("debug"):
            raise
        click.echo(f"qconvert: error: {exc}", err=True)
        ctx.exit(2)
    ctx.exit(code)


@click.group(cls=_MainJobGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="qconvert", prog_name="qconvert")
def cli(debug: bool) -> None:
    """Turn FP32 Keras 3 models into QKeras models, by rule files.

    \b
    Main job:
      qconvert MODEL --rules RULES [-o OUT.keras] [--report report.json] [--strict]
    """


_calibration_rows_option = click.option(
    "--calibration-rows", type=click.IntRange(min=1),
    help="Training rows that calibrate 'integer: auto' and measure saturation (default 2048).")


def _training_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """QAT options of the main job (DESIGN.md's CLI surface)."""
    options = [
        click.option("--data", type=click.Path(path_type=str),
                     help="data.npz (X_train, y_train[, X_val, y_val, X_test, y_test]), data.csv or X.npy,y.npy: "
                          "reports FP32 vs PTQ accuracy; with --epochs, fine-tunes (QAT)."),
        click.option("--epochs", type=click.IntRange(min=0), default=0, show_default=True, help="QAT epochs (needs --data)."),
        click.option("--lr", type=click.FloatRange(min=0, min_open=True),
                     help="Adam learning rate. Default: the seed's 1e-4 at batch 1024, scaled by sqrt(1024 / batch size)."),
        click.option("--batch-size", type=click.IntRange(min=1),
                     help="Default: the largest power of two giving 32 steps per epoch, within 16..1024 "
                          "(1024, the seed's, for large sets)."),
        click.option("--distill", is_flag=True, help="Train against the FP32 model's soft outputs as well as the labels."),
        click.option("--distill-temperature", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True),
        click.option("--distill-alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True,
                     help="Weight of the soft-target term (1 - alpha: the labels)."),
        click.option("--patience", type=click.IntRange(min=1), help="Early stopping on val_loss (best weights restored)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed for the split, shuffling and initial state."),
        click.option("--loss", help="Loss (default: the model's compiled loss, else from its output activation)."),
        click.option("--lr-schedule", type=click.Choice(["cosine"]), help="Learning-rate schedule over the epochs."),
        click.option("--resume", is_flag=True, help="Continue an interrupted QAT run from its last finished epoch."),
        click.option("--plot", "plot_path", type=click.Path(path_type=str), help="Training figure (default: OUT_training.png)."),
        _calibration_rows_option,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _loading_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """How model files are loaded: classes Keras does not know, Lambda layers."""
    fn = click.option("--unsafe", is_flag=True,
                      help="Allow Lambda layers (their Python code runs on loading): trusted files only.")(fn)
    return click.option("--custom-objects", "custom_objects", multiple=True, metavar="MODULE:ATTR",
                        help="Import a class (or a dict of them) Keras does not know, e.g. mylayers:BinaryDense "
                             "or layers.py:BinaryDense. Repeatable.")(fn)


def _hls4ml_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """hls4ml handoff options of the main job (DESIGN.md's CLI surface)."""
    options = [
        click.option("--hls4ml", "hls4ml_dir", type=click.Path(path_type=str),
                     help="Write an hls4ml project to DIR, compile its emulation (g++) and verify it against Keras."),
        click.option("--backend", default="Vitis", show_default=True, help="hls4ml backend: Vitis or Vivado."),
        click.option("--part", default="xcu200-fsgd2104-2-e", show_default=True, help="FPGA part."),
        click.option("--io-type", default="io_parallel", show_default=True, help="io_parallel or io_stream."),
        click.option("--reuse-factor", type=int, default=1, show_default=True, help="hls4ml ReuseFactor (1: fully parallel)."),
        click.option("--strategy", help="hls4ml strategy: Latency (default), Resource, or distributed_arithmetic "
                                        "(da4ml: per-layer LUT estimate; pip install 'qconvert[da]')."),
        click.option("--hls4ml-config", type=click.Path(path_type=str),
                     help="hls4ml config YAML (Model / LayerName / LayerType) merged over the derived one."),
        click.option("--build", is_flag=True, help="Run synthesis (needs vitis-run / vivado_hls on PATH) and report it."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _rtl_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The RTL stage's clock and synthesis family (main job with --rtl, and `qconvert rtl`)."""
    options = [
        click.option("--clock-ns", type=float, default=5.0, show_default=True,
                     help="RTL clock period: da4ml puts pipeline registers every this many units of its delay model."),
        click.option("--family", default="xcup", show_default=True,
                     help="yosys synth_xilinx -family for the RTL figures: xcup (UltraScale+), xcu, xc7, ..."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@cli.command("convert")
@click.argument("model", type=click.Path(path_type=str))
@click.option("-r", "--rules", "rules", required=True, type=click.Path(path_type=str), help="Rule file (YAML).")
@click.option("-o", "--output", type=click.Path(path_type=str), help="Output .keras (default: MODEL_q.keras beside the input).")
@click.option("--report", "report_path", type=click.Path(path_type=str), help="Write the report as JSON.")
@click.option("--strict", is_flag=True, help="Layers the rules leave float without saying so: exit 1, write nothing.")
@_training_options
@_hls4ml_options
@click.option("--rtl", "rtl_dir", type=click.Path(path_type=str),
              help="Write the RTL (da4ml → Verilog) to DIR, emulate it with Verilator against Keras, synthesize with yosys.")
@_rtl_options
@click.option("--weights", type=click.Path(path_type=str), help="Weights .h5 of a Keras 2 JSON MODEL (default: found beside it).")
@_loading_options
@click.pass_context
def convert_cmd(ctx: click.Context, model: str, rules: str, output: str | None, report_path: str | None, strict: bool,
                **opts: Any) -> None:
    """Convert MODEL (.keras, .h5, or a Keras 2 .json architecture) with RULES into a QKeras model (.keras)."""

    def job() -> int:
        if opts["epochs"] and not opts["data"]:
            raise click.UsageError("--epochs needs --data")
        _quiet_backends()
        from .pipeline import convert_file

        train = None
        if opts["epochs"]:
            from .train.qat import Distill, TrainOptions

            distill = Distill(opts["distill_temperature"], opts["distill_alpha"]) if opts["distill"] else None
            train = TrainOptions(epochs=opts["epochs"], lr=opts["lr"], batch_size=opts["batch_size"],
                                 patience=opts["patience"], seed=opts["seed"], loss=opts["loss"],
                                 lr_schedule=opts["lr_schedule"], resume=opts["resume"], distill=distill)
        elif opts["distill"]:
            raise click.UsageError("--distill needs --epochs")
        if opts["calibration_rows"] is not None and not opts["data"]:
            raise click.UsageError("--calibration-rows needs --data")
        hls4ml = None
        if opts["hls4ml_dir"]:
            from pathlib import Path

            from .export import Hls4mlOptions

            hls4ml = Hls4mlOptions(Path(opts["hls4ml_dir"]), backend=opts["backend"], part=opts["part"],
                                   io_type=opts["io_type"], reuse_factor=opts["reuse_factor"],
                                   user_config=Path(opts["hls4ml_config"]) if opts["hls4ml_config"] else None,
                                   build=opts["build"], strategy=opts["strategy"])
        elif opts["build"] or opts["hls4ml_config"] or opts["strategy"]:
            raise click.UsageError("--build, --hls4ml-config and --strategy need --hls4ml DIR")
        rtl = None
        if opts["rtl_dir"]:
            from pathlib import Path

            from .export.rtl import RtlOptions

            rtl = RtlOptions(Path(opts["rtl_dir"]), clock_ns=opts["clock_ns"], family=opts["family"])
        from .model.load import resolve_custom_objects

        result = convert_file(model, rules, output=output, report_path=report_path, strict=strict, hls4ml=hls4ml,
                              data=opts["data"], train=train, plot_path=opts["plot_path"],
                              weights=opts["weights"], custom_objects=resolve_custom_objects(opts["custom_objects"]),
                              safe_mode=not opts["unsafe"], calibration_rows=opts["calibration_rows"], rtl=rtl)
        result.report.render(_console())
        if result.output is None:
            names = ", ".join(row.name for row in result.report.leftovers)
            click.echo(f"qconvert: strict: {len(result.report.leftovers)} layer(s) left float without a rule: {names}; nothing written", err=True)
            return 1
        click.echo(f"wrote {result.output}")
        return 0

    _run(ctx, job)


@cli.group("rules")
def rules_group() -> None:
    """Validate rule files and preview what they do to a model."""


@rules_group.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=str))
@click.pass_context
def rules_check(ctx: click.Context, files: tuple[str, ...]) -> None:
    """Validate rule files (no Keras import). Exit 2 if any is invalid."""
    from .rules import load_rules

    def job() -> int:
        failed = 0
        for path in files:
            try:
                space = _space_or_none(path)
                if space is not None:
                    _echo_space(space, f"{path}: ok (search space: ")
                    continue
                ruleset = load_rules(path)
            except QConvertError as exc:
                click.echo(f"qconvert: error: {exc}", err=True)
                failed += 1
                continue
            click.echo(f"{path}: ok ({len(ruleset.rules)} rules{', input quantizer' if ruleset.input else ''})")
        return 2 if failed else 0

    _run(ctx, job)


def _space_or_none(path: str) -> Any:
    """The parsed search space when the file at ``path`` holds choices or ranges, else None (no Keras)."""
    from .rules import is_space, load_space, resolve_rules_path

    resolved = resolve_rules_path(path)
    try:
        text = resolved.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # load_rules says what is wrong
    return load_space(resolved) if is_space(text, str(resolved)) else None


def _size(size: float) -> str:
    return "continuous" if size == float("inf") else f"{int(size):,}"


def _echo_space(space: Any, lead: str) -> None:
    """A space's size and one line per dimension (where it is written, its values)."""
    click.echo(f"{lead}{len(space.dimensions)} dimensions, {_size(space.size)} rule files)")
    for name, line, values, size in space.describe():
        click.echo(f"  line {line}: {name} = {values} ({_size(size)})")


@rules_group.command("show")
@click.argument("model", type=click.Path(path_type=str))
@click.option("-r", "--rules", "rules", required=True, type=click.Path(path_type=str), help="Rule file (YAML).")
@click.option("--data", type=click.Path(path_type=str),
              help="Calibrate 'integer: auto' on training rows of this data and show what each quantizer clips.")
@_calibration_rows_option
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the split and of the calibration rows (as the main job's --seed).")
@click.option("--weights", type=click.Path(path_type=str), help="Weights .h5 of a Keras 2 JSON MODEL (default: found beside it).")
@_loading_options
@click.pass_context
def rules_show(ctx: click.Context, model: str, rules: str, data: str | None, calibration_rows: int | None, seed: int,
               weights: str | None, custom_objects: tuple[str, ...], unsafe: bool) -> None:
    """Print, per layer, the rule that matches and the precisions it gives (integer: auto resolved). Converts nothing."""

    def job() -> int:
        _quiet_backends()
        from .report import render_calibration, render_plan
        from .rules import load_rules

        space = _space_or_none(rules)
        if space is not None:
            _echo_space(space, f"{rules}: search space (")
            click.echo("The layers below are shown at the first value of each dimension.")
            ruleset = space.ruleset({d.name: d.first for d in space.dimensions})
        else:
            ruleset = load_rules(rules)
        from .model.calibrate import has_auto
        from .model.load import load_model, resolve_custom_objects
        from .pipeline import calibrated_plan, preview_cost

        the_model = load_model(model, weights=weights, custom_objects=resolve_custom_objects(custom_objects),
                               safe_mode=not unsafe)
        x = None
        if data is not None:
            from .model.calibrate import DEFAULT_ROWS
            from .train.data import check_fits_model, load_data

            dataset = load_data(data, seed=seed)
            check_fits_model(dataset, tuple(the_model.inputs[0].shape), None)
            x = dataset.calibration_rows(calibration_rows or DEFAULT_ROWS, seed=seed)
        elif calibration_rows is not None:
            raise click.UsageError("--calibration-rows needs --data")
        the_plan, calibration = calibrated_plan(the_model, ruleset, x)
        console = _console()
        costs = () if has_auto(the_plan) else preview_cost(the_model, the_plan)  # auto left: no model to cost yet
        render_plan(the_plan, console, *costs)
        render_calibration(calibration.to_dict(), console)
        return 0

    _run(ctx, job)


@cli.command("demo")
@click.option("--model", "model_kind", type=click.Choice(["mlp", "cnn"]), default="mlp", show_default=True,
              help="A jet-tagger-shaped MLP or a small Conv2D model.")
@click.option("--epochs", type=click.IntRange(min=1), default=40, show_default=True, help="QAT epochs (early stopping on).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_context
def demo_cmd(ctx: click.Context, model_kind: str, epochs: int, seed: int) -> None:
    """The case study end to end on scikit-learn's digits (ships offline): FP32 vs 6-bit and 4-bit, PTQ and QAT."""

    def job() -> int:
        _quiet_backends()
        import tempfile
        from pathlib import Path

        from .demo import (
            digits_cnn,
            digits_dataset,
            digits_mlp,
            hls4ml_column,
            preset,
            render_study,
            run_case_study,
            train_baseline,
        )

        console = _console()
        data = digits_dataset(seed=seed, image=model_kind == "cnn")
        console.print(f"digits: {len(data.x_train)} train / {len(data.x_val)} validation / {len(data.x_test)} test samples")
        console.print("training the FP32 baseline ...")
        fp32 = train_baseline((digits_cnn if model_kind == "cnn" else digits_mlp)(seed), data, seed=seed)
        console.print(f"converting with rules/6bit.yaml and rules/4bit.yaml, QAT for up to {epochs} epochs each ...")
        with tempfile.TemporaryDirectory(prefix="qconvert-demo-hls4ml-") as projects:  # hls4ml column: needs g++
            study = run_case_study(fp32, data, [("6-bit", preset("6bit")), ("4-bit", preset("4bit"))], qat_epochs=epochs,
                                   seed=seed, after_qat=hls4ml_column(data, Path(projects)))
        render_study(study, console)
        return 0

    _run(ctx, job)


@cli.command("migrate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("-r", "--rules", "rules", required=True, type=click.Path(path_type=str), help="Rule file (YAML).")
@click.option("--write", is_flag=True, help="Rewrite the files in place (atomically).")
@click.option("--out", "out_dir", type=click.Path(path_type=str), help="Write a converted copy of the tree to DIR.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if anything would change.")
@click.option("-j", "--jobs", default=1, show_default=True, type=click.IntRange(min=1), help="Worker processes.")
@click.option("--report", "report_path", type=click.Path(path_type=str), help="Write every finding as JSON.")
@click.option("--strict", is_flag=True, help="Exit 1 if any Keras layer construction is left unconverted.")
@click.pass_context
def migrate_cmd(ctx: click.Context, paths: tuple[str, ...], rules: str, write: bool, out_dir: str | None,
                check: bool, jobs: int, report_path: str | None, strict: bool) -> None:
    """Rewrite Keras model code (.py, .ipynb) into QKeras code. Default: print a diff, write nothing.

    Folders are walked recursively (.gitignore respected). Findings go to stderr as
    file:line:col CODE message. Exit codes: 0 nothing to do or all written; 1 a file
    failed to parse, changes pending (--check) or leftovers (--strict); 2 usage or rule error.
    """

    def job() -> int:
        from .source.command import run_migrate  # libcst only: no TensorFlow

        return run_migrate(paths, rules, write=write, out_dir=out_dir, check=check, jobs=jobs,
                           report_path=report_path, strict=strict, echo=click.echo)

    if sum((write, out_dir is not None, check)) > 1:
        raise click.UsageError("--write, --out and --check exclude each other")
    _run(ctx, job)


@cli.command("search")
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
              help="Instead of a front: the cheapest model within PP percentage points of FP32 validation accuracy.")
@click.option("-j", "--jobs", default=1, show_default=True, type=click.IntRange(min=1),
              help="Local worker processes sharing the study.")
@click.option("--storage", help="Optuna storage shared by workers on many machines: an RDB URL (sqlite:///..., "
                                "postgresql://...) or a journal file on a shared file system. Default: OUTDIR/study.db.")
@click.option("--study", "study_name", default="qconvert-search", show_default=True, help="Study name in the storage.")
@click.option("--resume", is_flag=True, help="Continue the interrupted search in OUTDIR.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the data split, the trials' training and the sampler (one worker: the same trials).")
@click.option("--reference", "references", multiple=True, default=("6bit",), show_default=True,
              help="Preset or rule file measured in the same run as a reference point (repeat; 'none': no reference).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Adam learning rate (default: the main job's).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Default: the main job's automatic batch size.")
@click.option("--lr-schedule", type=click.Choice(["cosine"]), help="Learning-rate schedule over the epochs.")
@_calibration_rows_option
@click.option("--no-early-stop", is_flag=True, help="Run every trial to the end (default: stop trials a cheaper "
                                                      "finished trial beat at the same epoch).")
@click.option("--hls4ml", "hls4ml_flag", is_flag=True,
              help="Run the main job on the chosen point's rule file with the hls4ml export and verification "
                   "(OUTDIR/chosen.keras, OUTDIR/hls4ml).")
@click.option("--io-type", default="io_parallel", show_default=True, help="hls4ml io type for --hls4ml.")
@click.option("--strategy", help="hls4ml strategy for --hls4ml (Latency by default).")
@click.option("--weights", type=click.Path(path_type=str), help="Weights .h5 of a Keras 2 JSON MODEL (default: found beside it).")
@_loading_options
@click.pass_context
def search_cmd(ctx: click.Context, model: str, space: str, data: str, outdir: str, trials: int, epochs: int,
               objective: str, max_drop: float | None, jobs: int, storage: str | None, study_name: str, resume: bool,
               seed: int, references: tuple[str, ...], lr: float | None, batch_size: int | None,
               lr_schedule: str | None, calibration_rows: int | None, no_early_stop: bool, hls4ml_flag: bool,
               io_type: str, strategy: str | None, weights: str | None, custom_objects: tuple[str, ...],
               unsafe: bool) -> None:
    """Search precisions and pruning for MODEL over the space in RULES: the accuracy-cost front (Optuna)."""

    def job() -> int:
        from .search import SearchSettings, StudyOptions, load_space

        load_space(space)  # a bad space: exit 2 naming file, line and key, before anything else
        goal = [part.strip() for part in objective.split(",")]
        if len(goal) != 2 or goal[0] != "accuracy":
            raise click.BadParameter("expected accuracy,COST (e.g. accuracy,ebops)", param_hint="--objective")
        settings = SearchSettings(model=model, space=space, data=data, epochs=epochs, seed=seed, cost=goal[1],
                                  max_drop=max_drop, batch_size=batch_size, lr=lr, lr_schedule=lr_schedule,
                                  calibration_rows=calibration_rows, safe_mode=not unsafe, weights=weights,
                                  custom_objects=custom_objects, early_stop=not no_early_stop)
        refs = () if references == ("none",) else references
        options = StudyOptions(outdir=outdir, trials=trials, jobs=jobs, storage=storage, study=study_name,
                               resume=resume, references=refs)
        hls4ml = None
        if hls4ml_flag:
            from pathlib import Path

            from .export import Hls4mlOptions

            hls4ml = Hls4mlOptions(Path(outdir) / "hls4ml", io_type=io_type, strategy=strategy)
        elif strategy:
            raise click.UsageError("--strategy needs --hls4ml")
        _quiet_backends()
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        from .search import search

        console = _console()
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
        if result.chosen is not None:
            c = result.chosen
            console.print(f"chosen: front/{result.front.index(c):02d}.yaml (trial {c['number']}): validation accuracy "
                          f"{c['val_accuracy']:.4f}, {result.cost} {c[result.cost]:,.0f}")
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

    _run(ctx, job)


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
            text = (f"best: trial {best['number']} acc {best['val_accuracy']:.4f}" if best else
                    (event["event"] if event["event"] not in ("start", "trial", "poll") else ""))
            progress.update(task, completed=min(event["done"], total), best=text)

        with progress:
            yield update

    return bar()


@cli.command("batch")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("-r", "--rules", "rules", required=True, type=click.Path(path_type=str), help="Rule file (YAML).")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=str),
              help="Output folder: OUT/<relative path>.keras for each model.")
@click.option("-j", "--jobs", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes (each imports Keras once).")
@click.option("--report", "report_path", type=click.Path(path_type=str), help="Write the batch report as JSON.")
@click.option("--markdown", "markdown_path", type=click.Path(path_type=str), help="Write a Markdown summary.")
@click.option("--resume", is_flag=True, help="Skip models already converted with the same rule file (and input).")
@click.option("--verify", is_flag=True,
              help="Check each model converted with pass-through quantizers against the FP32 model (random inputs).")
@_loading_options
@click.pass_context
def batch_cmd(ctx: click.Context, inputs: tuple[str, ...], rules: str, out_dir: str, jobs: int,
              report_path: str | None, markdown_path: str | None, resume: bool, verify: bool,
              custom_objects: tuple[str, ...], unsafe: bool) -> None:
    """Convert every model in folders, files or globs (INPUTS) into OUT. Exit 1 if any model failed."""

    def job() -> int:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from .batch import run_batch
        from .report import write_text_atomic
        from .rules import load_rules

        ruleset = load_rules(rules)  # rule errors first: no Keras import
        for path in (report_path, markdown_path):
            if path is not None and not os.path.isdir(os.path.dirname(path) or "."):
                raise click.UsageError(f"{path}: folder {os.path.dirname(path)} does not exist")
        _quiet_backends()
        from .model.load import resolve_custom_objects

        resolve_custom_objects(custom_objects)  # a bad --custom-objects: one error (exit 2), not one per model
        progress = Progress(TextColumn("converting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("{task.description}"), console=_console(stderr=True), transient=True)
        with progress:
            task = progress.add_task("", total=None)
            report = run_batch(
                inputs, ruleset, out_dir, jobs=jobs, resume=resume, verify=verify, safe_mode=not unsafe,
                custom_objects=custom_objects, worker_init=_quiet_backends,
                on_start=lambda n: progress.update(task, total=n),
                on_result=lambda r: progress.update(task, advance=1, description=os.path.basename(r.path)),
            )
        report.render(_console())
        if report_path is not None:
            write_text_atomic(report_path, report.to_json() + "\n")
        if markdown_path is not None:
            write_text_atomic(markdown_path, report.to_markdown())
        return report.exit_code

    _run(ctx, job)


@cli.command("rtl")
@click.argument("model", type=click.Path(path_type=str))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=str),
              help="Folder for the RTL project (da4ml's layout: src/, sim/, model/, build scripts).")
@click.option("--data", type=click.Path(path_type=str),
              help="Check the emulation on the held-out split of this data (else 1,000 sampled inputs).")
@click.option("--vhdl", is_flag=True, help="Write VHDL (Verilator and yosys run on the same logic as Verilog in OUT/verilog).")
@_rtl_options
@click.option("--no-emulate", is_flag=True, help="Skip the Verilator emulation.")
@click.option("--no-synth", is_flag=True, help="Skip yosys (da4ml's estimate only).")
@click.option("--input-precision", help="Input type, e.g. 'ap_fixed<16,6>' (default: input quantizer, else data range).")
@click.option("--report", "report_path", type=click.Path(path_type=str), help="Write the JSON report (an 'rtl' section).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the data split (as the main job's --seed).")
@click.pass_context
def rtl_cmd(ctx: click.Context, model: str, out_dir: str, data: str | None, vhdl: bool, clock_ns: float, family: str,
            no_emulate: bool, no_synth: bool, input_precision: str | None, report_path: str | None, seed: int) -> None:
    """RTL of a converted MODEL (.keras) without Vivado: da4ml → Verilog, Verilator emulation vs Keras, yosys figures."""

    def job() -> int:
        _quiet_backends()
        from pathlib import Path

        from .export.rtl import RtlOptions
        from .pipeline import rtl_file
        from .report import render_rtl

        options = RtlOptions(Path(out_dir), flavor="vhdl" if vhdl else "verilog", clock_ns=clock_ns, family=family,
                             emulate=not no_emulate, synth=not no_synth, input_precision=input_precision)
        result = rtl_file(model, options, data=data, report_path=report_path, seed=seed)
        render_rtl(result.to_dict(), _console())
        if result.missing_tool:
            click.echo(f"qconvert: error: {result.missing_tool}", err=True)
            return 2
        return 0

    _run(ctx, job)


def main() -> None:
    cli(prog_name="qconvert")


if __name__ == "__main__":
    sys.exit(main())
