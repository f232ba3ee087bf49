"""QAT fine-tuning time: qconvert's ``fine_tune`` against a bare ``model.fit``.

Same quantized model (the seed's jet tagger with rules/6bit.yaml), same data
(a synthetic stand-in of jet size), epochs and batch size; qconvert adds its
per-epoch checkpoint (model + optimizer state), best-weights tracking and
early-stopping bookkeeping. Prints figures; asserts nothing. Goal: ratio ≤ 1.10.

    python benchmarks/bench_qat.py [--samples 400000] [--epochs 5] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "jet_tagging"))

import keras  # noqa: E402
from make_model import baseline, synthetic_jets  # noqa: E402

import qconvert  # noqa: E402
from qconvert.train.data import Dataset  # noqa: E402
from qconvert.train.qat import TrainOptions, fine_tune  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=400_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    x, y = synthetic_jets(args.samples)
    n_val = args.samples // 4
    data = Dataset("synthetic jets", x[n_val:], y[n_val:], x[:n_val], y[:n_val])
    rules = ROOT / "rules" / "6bit.yaml"
    fp32 = baseline()

    def bare() -> float:
        qmodel, _ = qconvert.convert(fp32, rules)
        keras.utils.set_random_seed(0)
        qmodel.compile(optimizer=keras.optimizers.Adam(1e-4), loss="categorical_crossentropy", metrics=["accuracy"])
        start = time.perf_counter()
        qmodel.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=args.epochs,
                   batch_size=args.batch_size, shuffle=True, verbose=0)
        return time.perf_counter() - start

    def ours(checkpoint: bool = True) -> float:
        qmodel, _ = qconvert.convert(fp32, rules)
        with tempfile.TemporaryDirectory() as ckpt:
            options = TrainOptions(epochs=args.epochs, lr=1e-4, batch_size=args.batch_size, seed=0,
                                   checkpoint_dir=Path(ckpt) if checkpoint else None, verbose=0)
            start = time.perf_counter()
            fine_tune(qmodel, data, options)
            return time.perf_counter() - start

    bare()  # warm-up: tracing and first-call costs
    times: dict[str, list[float]] = {"bare": [], "ours": [], "no_ckpt": []}
    for _ in range(args.repeat):  # interleaved, so drift hits all three
        times["bare"].append(bare())
        times["ours"].append(ours())
        times["no_ckpt"].append(ours(checkpoint=False))
    b, o, n = (statistics.median(times[k]) for k in ("bare", "ours", "no_ckpt"))
    print(f"{len(data.x_train)} training samples, {args.epochs} epochs, batch {args.batch_size}")
    print(f"bare model.fit:      {b:7.2f} s")
    print(f"qconvert fine_tune:  {o:7.2f} s (checkpoint every epoch)")
    print(f"  without checkpoints: {n:5.2f} s")
    print(f"ratio: {o / b:.3f} (goal <= 1.10)")


if __name__ == "__main__":
    main()
