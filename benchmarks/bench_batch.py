"""Batch throughput: models per minute for ``-j 1`` and ``-j 2``, and the per-model cost after import.

Prints figures; asserts nothing. Run from the repository root:

    python benchmarks/bench_batch.py [--models 20] [--jobs 1 2]

The corpus is jet-tagger-sized (16 → 64 → 32 → 32 → 5, with a BatchNormalization),
saved alternately as ``.keras`` and Keras 3 ``.h5``, converted with rules/6bit.yaml.
``-j 1`` runs in this process (Keras already imported): its per-model seconds are
the cost after import (issue 6 goal: well under a second). ``-j N`` > 1 spawns N
workers, each importing Keras once; its wall time includes that start-up.
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
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import qkeras  # noqa: E402,F401

from qconvert.batch import run_batch  # noqa: E402

RULES = ROOT / "rules" / "6bit.yaml"


def jet_tagger(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inp = keras.Input((16,), name="features")
    x = keras.layers.Dense(64, activation="relu", name="fc1")(inp)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.Dense(32, activation="relu", name="fc2")(x)
    x = keras.layers.Dense(32, activation="relu", name="fc3")(x)
    out = keras.layers.Dense(5, activation="softmax", name="output")(x)
    return keras.Model(inp, out, name=f"jet_{seed}")


def make_corpus(folder: Path, n: int) -> None:
    for i in range(n):
        sub = folder / f"group{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        jet_tagger(i).save(sub / f"jet_{i:03d}{'.keras' if i % 2 else '.h5'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        make_corpus(corpus, args.models)
        print(f"corpus: {args.models} jet-tagger models ({sum(1 for _ in corpus.rglob('*.*'))} files), "
              f"rules {RULES.name}, backend {keras.backend.backend()}, {os.cpu_count()} CPUs")
        for jobs in args.jobs:
            start = time.perf_counter()
            report = run_batch([corpus], RULES, Path(tmp) / f"out_j{jobs}", jobs=jobs)
            wall = time.perf_counter() - start
            per_model = [m.seconds for m in report.models if m.status == "converted"]
            totals = report.totals()
            print(f"-j {jobs}: {totals['converted']}/{totals['models']} converted in {wall:.1f} s wall "
                  f"= {60 * totals['converted'] / wall:.0f} models/minute; per model after import: "
                  f"median {statistics.median(per_model):.3f} s, max {max(per_model):.3f} s")


if __name__ == "__main__":
    main()
