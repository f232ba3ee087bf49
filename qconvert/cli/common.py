"""What every command shares: the console, the error-to-exit-code wrapper, the option groups.

Imports are lazy: nothing here imports Keras, so ``qconvert --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ..errors import Interrupted, QConvertError
from ..targets import (
    BACKENDS,
    DEFAULT_MAX_MULTIPLIES,
    DEFAULT_SOLVE_TIMEOUT,
    DEFAULT_SYNTH_TIMEOUT,
    FAMILIES,
    IO_TYPES,
    STRATEGIES,
)

__all__ = [
    "calibration_rows_option",
    "hls4ml_options",
    "loading_options",
    "make_console",
    "rtl_options",
    "run",
    "training_options",
    "weights_option",
]

def make_console(stderr: bool = False) -> Any:
    """A rich console on stdout (or stderr); 200 columns wide when the output is not a terminal (logs, pipes)."""
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:  # logs and pipes: wide enough for one line per layer
        console = Console(stderr=stderr, highlight=False, width=200)
    return console


def run(ctx: click.Context, job: Callable[[], int]) -> None:
    """Run ``job``; a QConvertError becomes one line on stderr and exit 2 (Ctrl-C during QAT: exit 130)."""
    try:
        code = job()
    except Interrupted as exc:  # Ctrl-C during QAT: where the checkpoint is and how to continue
        click.echo(f"qconvert: {exc}", err=True)
        ctx.exit(130)
    except QConvertError as exc:
        if ctx.find_root().params.get("debug"):
            raise
        click.echo(f"qconvert: error: {exc}", err=True)
        ctx.exit(2)
    ctx.exit(code)



calibration_rows_option = click.option(
    "--calibration-rows", type=click.IntRange(min=1),
    help="Training rows that calibrate 'integer: auto' and measure saturation (default 2048).")


def training_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """QAT options of the main job (DESIGN.md's CLI surface)."""
    options = [
        click.option("--data", type=click.Path(path_type=str),
                     help="data.npz (X_train, y_train[, X_val, y_val, X_test, y_test]), data.csv or X.npy,y.npy: "
                          "reports FP32 vs PTQ accuracy; with --epochs, fine-tunes (QAT)."),
        click.option("--epochs", type=click.IntRange(min=0), default=0, show_default=True, help="QAT epochs (needs --data)."),
        click.option("--lr", type=click.FloatRange(min=0, min_open=True),
                     help="Adam learning rate. Default: the seed's 1e-4 at batch 1024, scaled by sqrt(1024 / batch size); "
                          "3e-3 with --target-ebops."),
        click.option("--batch-size", type=click.IntRange(min=1),
                     help="Default: the largest power of two giving 32 steps per epoch, within 16..1024 "
                          "(1024, the seed's, for large sets); with --target-ebops 16 steps, within 16..512."),
        click.option("--distill", is_flag=True, help="Train against the FP32 model's soft outputs as well as the labels."),
        click.option("--distill-temperature", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True),
        click.option("--distill-alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True,
                     help="Weight of the soft-target term (1 - alpha: the labels)."),
        click.option("--patience", type=click.IntRange(min=1), help="Early stopping on val_loss (best weights restored)."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed for the split, shuffling and initial state."),
        click.option("--loss", help="Loss (default: the model's compiled loss, else from its output activation)."),
        click.option("--lr-schedule", type=click.Choice(["cosine"]), help="Learning-rate schedule over the epochs."),
        click.option("--resume", is_flag=True, help="Continue an interrupted QAT run from its last finished epoch."),
        click.option("--target-ebops", type=click.FloatRange(min=0, min_open=True), metavar="N",
                     help="Cost-aware QAT: learn per-layer bit widths and prune so the trained model costs at most N "
                          "EBOPs (the rule file gives the largest precisions); writes OUT.rules.yaml (needs --data, --epochs)."),
        click.option("--plot", "plot_path", type=click.Path(path_type=str), help="Training figure (default: OUT_training.png)."),
        calibration_rows_option,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def loading_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """How model files are loaded: classes Keras does not know, Lambda layers."""
    fn = click.option("--unsafe", is_flag=True,
                      help="Allow Lambda layers (their Python code runs on loading): trusted files only.")(fn)
    return click.option("--custom-objects", "custom_objects", multiple=True, metavar="MODULE:ATTR",
                        help="Import a class (or a dict of them) Keras does not know, e.g. mylayers:BinaryDense "
                             "or layers.py:BinaryDense. Repeatable.")(fn)


def hls4ml_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """hls4ml handoff options of the main job (DESIGN.md's CLI surface)."""
    options = [
        click.option("--hls4ml", "hls4ml_dir", type=click.Path(path_type=str),
                     help="Write an hls4ml project to DIR, compile its emulation (g++) and verify it against Keras."),
        click.option("--backend", type=click.Choice(BACKENDS, case_sensitive=False), default="Vitis", show_default=True,
                     help="hls4ml backend."),
        click.option("--part", default="xcu200-fsgd2104-2-e", show_default=True, help="FPGA part."),
        click.option("--io-type", type=click.Choice(IO_TYPES), default="io_parallel", show_default=True,
                     help="hls4ml io type."),
        click.option("--reuse-factor", type=click.IntRange(min=1), default=1, show_default=True, help="hls4ml ReuseFactor (1: fully parallel)."),
        click.option("--strategy", type=click.Choice(STRATEGIES, case_sensitive=False),
                     help="hls4ml strategy (default Latency; Resource where --reuse-factor > 1); distributed_arithmetic: "
                          "da4ml, a per-layer LUT estimate (pip install 'qconvert[da]')."),
        click.option("--hls4ml-config", type=click.Path(path_type=str),
                     help="hls4ml config YAML (Model / LayerName / LayerType) merged over the derived one."),
        click.option("--build", is_flag=True, help="Run synthesis (needs vitis-run / vivado_hls on PATH) and report it."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A number option's callback: nan is not a number a range can check (every comparison with it is false)."""
    if value is not None and value != value:
        raise click.BadParameter(f"{value} is not a number", ctx, param)
    return value


def rtl_progress(console: Any) -> Callable[[str], None]:
    """The RTL stage's progress lines (one as each layer's constant-matrix solve starts and ends), dim, on ``console``."""
    return lambda line: console.print(f"rtl: {line}", style="dim", markup=False, highlight=False)


def rtl_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The RTL stage's clock and synthesis family (main job with --rtl, and `qconvert rtl`)."""
    options = [
        click.option("--clock-ns", type=click.FloatRange(min=0.0, max=1e6, min_open=True), callback=_finite, default=5.0, show_default=True,
                     help="RTL clock period: da4ml puts pipeline registers every this many units of its delay model."),
        click.option("--family", type=click.Choice(FAMILIES), default="xcup", show_default=True,
                     help="yosys synth_xilinx -family for the RTL figures (xcup: UltraScale+, xcu: UltraScale, "
                          "xc7: 7-series)."),
        click.option("--max-multiplies", type=click.IntRange(min=1), default=DEFAULT_MAX_MULTIPLIES, show_default=True,
                     help="Size budget: the multiplies (nonzero weights × output positions) the fully unrolled RTL may "
                          "implement; a larger model is refused before tracing, naming its largest layer."),
        click.option("--solve-timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_SOLVE_TIMEOUT,
                     show_default=True, help="Seconds one layer's constant-matrix solve (da4ml) may take before the "
                                             "RTL is refused, naming the layer."),
        click.option("--synth-timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_SYNTH_TIMEOUT,
                     show_default=True, help="Seconds yosys may take; past them it is stopped and da4ml's LUT "
                                             "estimate stands (a note)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


weights_option = click.option("--weights", type=click.Path(path_type=str),
                              help="Weights .h5 of a Keras 2 JSON MODEL (default: found beside it).")
