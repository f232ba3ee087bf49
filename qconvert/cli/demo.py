"""``qconvert demo``: the case study on scikit-learn's digits, offline."""

from __future__ import annotations

import click

from ..runtime import quiet_backends
from .common import (
    make_console,
    run,
)


@click.command("demo")
@click.option("--model", "model_kind", type=click.Choice(["mlp", "cnn"]), default="mlp", show_default=True,
              help="A jet-tagger-shaped MLP or a small Conv2D model.")
@click.option("--epochs", type=click.IntRange(min=1), default=40, show_default=True, help="QAT epochs (as the main job's --epochs: its learning rate and batch size).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_context
def demo_cmd(ctx: click.Context, model_kind: str, epochs: int, seed: int) -> None:
    """The case study end to end on scikit-learn's digits (ships offline): FP32 vs 6-bit and 4-bit, PTQ and QAT."""

    def job() -> int:
        quiet_backends()
        import tempfile
        from pathlib import Path

        from ..demo import (
            digits_cnn,
            digits_dataset,
            digits_mlp,
            hls4ml_column,
            preset,
            render_study,
            run_case_study,
            train_baseline,
        )

        console = make_console()
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

    run(ctx, job)
