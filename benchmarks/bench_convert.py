"""Conversion speed against QKeras's own ``model_quantize``, and ``qconvert --help`` start-up.

Prints figures; asserts nothing. Run from the repository root:

    python benchmarks/bench_convert.py [--repeat 11] [--no-help]

Goals: ``qconvert.convert`` (plan, calibrate, rewrite, cost report) takes at most half the time of
``qkeras.utils.model_quantize`` on the same model (ratio <= 0.5, issue 18; issue 2 asked for <= 1.0),
and ``qconvert --help`` takes under 0.5 s. The two conversions alternate, one of each per round, so
that a machine whose load changes slows both alike; the figures are medians over the rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import keras  # noqa: E402
from models import seed_fp32  # noqa: E402

import qconvert  # noqa: E402

QKERAS_CONFIG = {
    "QDense": {"kernel_quantizer": "quantized_bits(6,0,alpha=1)", "bias_quantizer": "quantized_bits(6,0,alpha=1)"},
    "QConv2D": {"kernel_quantizer": "quantized_bits(6,0,alpha=1)", "bias_quantizer": "quantized_bits(6,0,alpha=1)"},
    "QActivation": {"relu": "quantized_relu(6)"},
}


def conv_model() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(16, 3, activation="relu", name="c1"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, activation="relu", name="c2"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu", name="d1"),
            keras.layers.Dense(10, activation="softmax", name="out"),
        ],
        name="small_cnn",
    )


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_conversion(repeat: int) -> None:
    from qkeras.utils import model_quantize

    rules = qconvert.load_rules(ROOT / "rules" / "6bit.yaml")
    print(f"{'model':<16}{'qconvert s':>12}{'model_quantize s':>18}{'ratio':>8}")
    for build in (seed_fp32, conv_model):
        model = build()
        qconvert.convert(model, rules)  # warm-up: first calls trace and import
        model_quantize(model, QKERAS_CONFIG, 6, transfer_weights=True)
        ours, theirs = [], []
        for _ in range(repeat):
            ours.append(timed(lambda m=model: qconvert.convert(m, rules), 1))
            theirs.append(timed(lambda m=model: model_quantize(m, QKERAS_CONFIG, 6, transfer_weights=True), 1))
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"{model.name:<16}{a:>12.3f}{b:>18.3f}{a / b:>8.2f}")


def bench_help(repeat: int) -> None:
    def run(args: list[str]) -> float:
        return timed(lambda: subprocess.run(args, capture_output=True, check=True), repeat)

    bare = run([sys.executable, "-c", "pass"])
    helped = run([sys.executable, "-m", "qconvert", "--help"])
    print(f"qconvert --help: {helped:.3f} s (bare interpreter {bare:.3f} s, ratio {helped / bare:.1f}x; goal < 0.5 s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--no-help", action="store_true", help="skip the `qconvert --help` start-up figure")
    args = parser.parse_args()
    bench_conversion(args.repeat)
    if not args.no_help:
        bench_help(max(args.repeat, 10))
