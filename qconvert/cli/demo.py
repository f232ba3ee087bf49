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
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the split, the training and the rows.")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=str),
              help="Keep what the demo makes in this folder (made if missing): fp32.keras, digits.npz, the QAT models, "
                   "their hls4ml projects, accuracy.png. Default: nothing is kept.")
@click.pass_context
def demo_cmd(ctx: click.Context, model_kind: str, epochs: int, seed: int, out_dir: str | None) -> None:
    """The case study end to end on scikit-learn's digits (ships offline): FP32 vs 6-bit and 4-bit, PTQ and QAT."""

    def job() -> int:
        quiet_backends()
        import tempfile
        from pathlib import Path

        from ..demo import (
            check_demo_folder,
            digits_cnn,
            digits_dataset,
            digits_mlp,
            hls4ml_column,
            keep_models,
            preset,
            render_study,
            run_case_study,
            train_baseline,
            write_outputs,
        )
        console = make_console()
        out = Path(out_dir) if out_dir is not None else None
        if out is not None:
            replaced = check_demo_folder(out)
            if replaced:
                console.print(f"{out}: replacing an earlier demo's {', '.join(replaced)}")
            out.mkdir(parents=True, exist_ok=True)
        data = digits_dataset(seed=seed, image=model_kind == "cnn")
        console.print(f"digits: {len(data.x_train)} train / {len(data.x_val)} validation / {len(data.x_test)} test samples")
        console.print("training the FP32 baseline ...")
        fp32 = train_baseline((digits_cnn if model_kind == "cnn" else digits_mlp)(seed), data, seed=seed)
        console.print(f"converting with rules/6bit.yaml and rules/4bit.yaml, QAT for up to {epochs} epochs each ...")
        presets = [("6-bit", preset("6bit")), ("4-bit", preset("4bit"))]
        with tempfile.TemporaryDirectory(prefix="qconvert-demo-hls4ml-") as projects:  # hls4ml column: needs g++
            after_qat = (hls4ml_column(data, Path(projects)) if out is None
                         else keep_models(out, hls4ml_column(data, out / "hls4ml")))
            study = run_case_study(fp32, data, presets, qat_epochs=epochs, seed=seed, after_qat=after_qat)
        render_study(study, console)
        if out is not None:
            written = write_outputs(out, fp32, data, study)
            console.print(f"wrote {', '.join(str(p) for p in written)}, {out / '6_bit.keras'}, {out / '4_bit.keras'} "
                          f"and the hls4ml projects in {out / 'hls4ml'}; the main job on the same data: "
                          f"qconvert {out / 'fp32.keras'} --rules 6bit --data {out / 'digits.npz'} --epochs {epochs}",
                          soft_wrap=True)
        return 0

    run(ctx, job)
