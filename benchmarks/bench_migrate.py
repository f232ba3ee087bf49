"""Speed of ``qconvert migrate``: files and lines per second, with -j 1 and -j 2.

Generates a corpus of Keras scripts (Sequential with model.add, Sequential
lists, functional models, tf.keras spellings, with comments and training code
around them) in a temporary folder and migrates it in preview mode (nothing
is written), as the CLI does. Prints one line per job count.

    python benchmarks/bench_migrate.py [--files 200] [--jobs 1 2]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from qconvert.rules import load_rules
from qconvert.source import migrate_paths, unified_diff

ROOT = Path(__file__).resolve().parent.parent

_HEADER = '''"""Generated model script {i}."""
import os
import numpy as np
import tensorflow as tf
import keras
from keras import layers as L
from keras.layers import Dense, Dropout  # the usual suspects


def load_data(n=1000):
    rng = np.random.default_rng({i})
    return rng.normal(size=(n, 16)), rng.integers(0, 5, size=n)

'''

_SEQ_ADD = '''
def build_add_{k}():
    model = keras.Sequential()
    model.add(keras.Input(shape=(16,)))
{body}    model.add(Dense(5, activation="softmax", name="out_{k}"))  # logits
    return model
'''

_SEQ_LIST = '''
def build_list_{k}():
    return keras.Sequential([
        keras.Input(shape=(16,)),
{body}        L.Dense(5, activation="softmax"),
    ])
'''

_FUNCTIONAL = '''
def build_functional_{k}():
    inputs = keras.Input(shape=(16,))
    x = inputs
{body}    outputs = tf.keras.layers.Dense(5, activation="softmax")(x)
    return keras.Model(inputs, outputs)
'''

_FOOTER = '''

if __name__ == "__main__":
    x, y = load_data()
    model = build_add_0()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=int(os.environ.get("EPOCHS", 1)))
'''


def make_script(i: int, rng: random.Random) -> str:
    parts = [_HEADER.format(i=i)]
    for k in range(rng.randint(1, 3)):
        kind = rng.choice(("add", "list", "functional"))
        width = rng.choice((16, 32, 64))
        depth = rng.randint(2, 5)
        if kind == "add":
            body = "".join(f"    model.add(Dense({width}, activation='relu', name='fc{j}_{k}'))  # layer {j}\n"
                           + ("    model.add(Dropout(0.1))\n" if j % 2 else "") for j in range(depth))
            parts.append(_SEQ_ADD.format(k=k, body=body))
        elif kind == "list":
            body = "".join(f"        L.Dense({width}, activation=tf.nn.relu),\n" for _ in range(depth))
            parts.append(_SEQ_LIST.format(k=k, body=body))
        else:
            body = "".join(f"    x = L.Dense({width}, activation='relu')(x)\n" for _ in range(depth))
            parts.append(_FUNCTIONAL.format(k=k, body=body))
    parts.append(_FOOTER)
    return "".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rules", default=str(ROOT / "rules" / "6bit.yaml"))
    args = parser.parse_args()
    rules = load_rules(args.rules)
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp)
        lines = 0
        for i in range(args.files):
            text = make_script(i, rng)
            lines += text.count("\n")
            (corpus / f"model_{i:04d}.py").write_text(text)
        print(f"corpus: {args.files} files, {lines} lines, rules {Path(args.rules).name}")
        outputs = []
        for jobs in args.jobs:
            start = time.perf_counter()
            results = migrate_paths([corpus], rules, jobs=jobs)
            diff = "".join(unified_diff(r) for r in results)
            seconds = time.perf_counter() - start
            changed = sum(r.changed for r in results)
            findings = sum(len(r.findings) for r in results)
            outputs.append(diff)
            print(f"-j {jobs}: {seconds:6.2f} s  {args.files / seconds:7.1f} files/s  {lines / seconds:9.0f} lines/s  "
                  f"({changed} changed, {findings} findings)")
        if len(set(outputs)) > 1:
            print("WARNING: the output differs between job counts")


if __name__ == "__main__":
    main()
