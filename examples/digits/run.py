"""The seed's pipeline on scikit-learn's digits (real data that ships offline).

FP32 baseline → rules/6bit.yaml and rules/4bit.yaml → PTQ → QAT → hls4ml
emulation (when g++ is there), for a small MLP (shaped like the jet tagger)
and a small Conv2D model.

    python examples/digits/run.py [--model mlp|cnn|both] [--epochs 40] [--hls4ml DIR]
"""

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from rich.console import Console

from qconvert.demo import (
    digits_cnn,
    digits_dataset,
    digits_mlp,
    hls4ml_column,
    preset,
    render_study,
    run_case_study,
    train_baseline,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["mlp", "cnn", "both"], default="both")
    parser.add_argument("--epochs", type=int, default=40, help="QAT epochs (early stopping on)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hls4ml", type=Path, default=Path(tempfile.gettempdir()) / "qconvert_digits_hls4ml",
                        help="where the hls4ml projects go")
    args = parser.parse_args()
    console = Console()
    kinds = ["mlp", "cnn"] if args.model == "both" else [args.model]
    for kind in kinds:
        data = digits_dataset(seed=args.seed, image=kind == "cnn")
        fp32 = train_baseline((digits_cnn if kind == "cnn" else digits_mlp)(args.seed), data, seed=args.seed)
        study = run_case_study(fp32, data, [("6-bit", preset("6bit")), ("4-bit", preset("4bit"))],
                               qat_epochs=args.epochs, seed=args.seed, after_qat=hls4ml_column(data, args.hls4ml / kind))
        console.print(f"[bold]{fp32.name}[/bold]")
        render_study(study, console)


if __name__ == "__main__":
    main()
