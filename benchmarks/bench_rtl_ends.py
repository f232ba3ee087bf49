"""`qconvert rtl` always ends (issue 20.7): the digits CNN's RTL end to end, and how fast Ctrl-C ends a solve.

    python benchmarks/bench_rtl_ends.py [--synth] [--out DIR]

The model of the issue: 8×8 digits → Conv2D 16 (3×3, same) → BatchNormalization → ReLU → MaxPooling 2 →
Flatten (256) → Dense 32 → Dense 10 (softmax), trained 20 epochs on scikit-learn's digits and converted with
``6bit-auto`` (calibrated on the training split). Prints the wall time of ``qconvert rtl`` (a fresh process, as
a user runs it: start-up, solver warm-up, trace per layer, write, Verilator, emulation; yosys with ``--synth``)
and its phases from the report, the agreement with Keras, then runs it again and sends SIGINT one second into
the 256×32 Dense's solve: the seconds until the process has exited.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _make(folder: Path) -> tuple[Path, Path]:
    """The converted CNN (.keras) and the digits images (.npz)."""
    import keras
    import numpy as np

    from qconvert.demo import digits_dataset, train_baseline
    from qconvert.pipeline import DataOptions, Job, Outputs, run

    data = digits_dataset(image=True)
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(16, 3, padding="same", name="conv")(inp)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Activation("relu", name="relu0")(h)
    h = keras.layers.MaxPooling2D(2, name="pool")(h)
    h = keras.layers.Flatten(name="flat")(h)
    h = keras.layers.Dense(32, activation="relu", name="fc1")(h)
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax", name="out")(h))
    train_baseline(model, data, epochs=20).save(folder / "cnn.keras")
    npz = folder / "digits.npz"
    np.savez(npz, X_train=data.x_train, y_train=data.y_train, X_val=data.x_val, y_val=data.y_val,
             X_test=data.x_test, y_test=data.y_test)
    run(Job(folder / "cnn.keras", "6bit-auto", data=DataOptions(npz), outputs=Outputs(folder / "cnn_6bit.keras")))
    return folder / "cnn_6bit.keras", npz


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--synth", action="store_true", help="run yosys too (minutes for a design of this size)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-rtl-ends-"))
    out.mkdir(parents=True, exist_ok=True)
    model, npz = _make(out)
    cmd = [sys.executable, "-m", "qconvert", "rtl", str(model), "-o", str(out / "rtl"), "--data", str(npz),
           "--report", str(out / "r.json"), *([] if args.synth else ["--no-synth"])]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(proc.stderr[-2000:])
    rtl = json.loads((out / "r.json").read_text())["rtl"]
    print(f"digits CNN, 6bit-auto: qconvert rtl {'with' if args.synth else 'without'} yosys: {wall:.1f} s wall")
    print(f"  phases (s): {json.dumps(rtl['seconds'])}")
    print(f"  multiplies: {json.dumps(rtl['multiplies'])}; da4ml LUT estimate {rtl['lut_da4ml']:,.0f}")
    print(f"  logits bit-identical {rtl['logits_exact_fraction']:.4f} on {rtl['n_samples']} samples; notes: {rtl['notes']}")

    proc = subprocess.Popen(cmd[:-2] + ["--no-synth"] if args.synth else cmd, stderr=subprocess.PIPE, text=True,
                            stdout=subprocess.DEVNULL)
    for line in proc.stderr:
        if "layer 'fc1'" in line and "matrix" in line:
            break
    time.sleep(1.0)
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate()
    print(f"Ctrl-C one second into fc1's solve: exit {proc.returncode} after {time.perf_counter() - sent:.2f} s: "
          f"{err.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
