"""HGQ2 0.2's route of ``bench_quality.py``: one model trained with HGQ2, its figures as one JSON line.

Runs in the benchmark's own virtual environment (``benchmarks/.venv-hgq2``, made by ``bench_quality.py``),
never in qconvert's: HGQ2 installs a top-level ``qkeras`` of its own that would shadow qkeras-v3.

    benchmarks/.venv-hgq2/bin/python benchmarks/hgq2_route.py --data D.npz --beta 1e-5 --epochs 300 --seed 0
                                                              [--batch-size 256] [--lr 5e-3]

The data is the benchmark's ``.npz`` (``X_train``/``y_train``, ``X_val``/``y_val``, ``X_test``/``y_test``;
labels one-hot or integer), used as split there. The network is the seed's 16 → 64 → 32 → 32 → 5 (ReLU) in
HGQ2's layers, set up as HGQ2's own example for this network (``example/small_jet_tagger.ipynb``):

* weights and biases: HGQ2's ``kbi`` quantizers (signed, 3 bits, 0 integer bits to start, saturating),
  learned per weight;
* activations ("datalane"): ``kif`` quantizers (3 integer and 3 fractional bits to start, wrapping),
  learned per value; the input quantizer is signed; the output layer quantizes its logits (with the
  example's ``MonoL1(1e-3)`` on their fractional bits);
* the loss: cross-entropy on the logits (the softmax is left to the loss, as the example advises;
  accuracy is the same argmax) plus β · EBOPs of every layer, β constant from the first epoch
  (``beta0``, as in the example); Adam at ``--lr`` (the example's 5e-3) for ``--epochs``, the last
  epoch's model kept.

After training, HGQ2's ``trace_minmax`` over the training and validation rows sets the wrapping
quantizers' integer bits from the data and returns HGQ2's own EBOPs count of the final model, the
figure reported. Test accuracy is that traced model's, on the test split. Beside it, the same model's count
with each weight and bias at its own value's bits (``ebops_values``; :func:`value_bits`, qconvert's count
of its own models) and, as a check of that formula, at the declared widths (``ebops_recount``: within one
EBOP per layer of ``ebops``, which HGQ2 truncates per layer, or the route fails).

Printed (stdout, the last line), one JSON object: ``beta``, ``seed``, ``epochs``, ``batch_size``, ``lr``;
``test_accuracy``, ``val_accuracy`` (fractions); ``ebops`` (after the trace), ``ebops_recount`` and
``ebops_values`` (above), ``ebops_training`` (HGQ2's running count at the last epoch);
``train_s``/``train_cpu_s`` (``fit`` alone, wall and process CPU seconds),
``epoch_s``/``epoch_cpu_s`` (the median epoch after the first, which compiles), ``first_epoch_s``;
``setup_s`` (imports, data, build: before ``fit``), ``trace_s`` (the final trace);
``wall_s``/``cpu_s`` (the whole script: imports, build, fit, trace, evaluation); ``versions``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

START = time.perf_counter()
TRACE_BATCH = 65536
os.environ["KERAS_BACKEND"] = "jax"  # HGQ2 runs fastest on JAX (its docs)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _labels(y):
    """Integer class indices from one-hot rows or indices."""
    import numpy as np

    y = np.asarray(y)
    return y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.astype("int64").ravel()


def build(beta: float, n_classes: int, n_features: int):
    """The seed's network in HGQ2 layers (the setup of HGQ2's small jet-tagger example)."""
    import keras
    from hgq.config import QuantizerConfig, QuantizerConfigScope
    from hgq.layers import QDense
    from hgq.regularizers import MonoL1

    weights = QuantizerConfigScope(place="all", k0=1, b0=3, i0=0, default_q_type="kbi", overflow_mode="sat_sym")
    data = QuantizerConfigScope(place="datalane", k0=0, default_q_type="kif", overflow_mode="wrap", f0=3, i0=3)
    with weights, data:
        signed_input = QuantizerConfig(place="datalane", k0=1)
        logits = QuantizerConfig(place="datalane", k0=1, fr=MonoL1(1e-3))
        model = keras.Sequential([
            keras.Input((n_features,)),
            QDense(64, beta0=beta, iq_conf=signed_input, activation="relu", name="fc1"),
            QDense(32, beta0=beta, activation="relu", name="fc2"),
            QDense(32, beta0=beta, activation="relu", name="fc3"),
            QDense(n_classes, beta0=beta, oq_conf=logits, name="output"),
        ])
    return model


def value_bits(values):
    """Per value, the magnitude bits of the narrowest fixed-point format holding it (0 for zero): the same
    function as ``qconvert.model.cost.value_bits`` (qconvert is not installed in this environment)."""
    import numpy as np

    v = np.abs(np.asarray(values, dtype=np.float64))
    m = (np.frexp(v)[0] * 2.0**53).astype(np.uint64)
    with np.errstate(divide="ignore"):
        bits = 53.0 - np.log2((m & (~m + np.uint64(1))).astype(np.float64))
    return np.where(v == 0, 0.0, bits)


def ebops_of(model, by_value: bool) -> float:
    """HGQ2's EBOPs formula for its QDense (``QDense._compute_ebops``: input bits @ kernel bits, plus the mean
    bias bits per output), with the kernel's and bias's declared per-weight widths (``by_value`` False: equals
    HGQ2's own count) or each value's own bits (``by_value``: the count qconvert gives its models)."""
    import numpy as np
    from keras import ops

    total = 0.0
    for layer in model.layers:
        if not hasattr(layer, "qkernel"):
            continue
        if layer.ebops_factor != 1 or getattr(layer, "parallelization_factor", 1) != getattr(layer, "n_parallel", 1):
            raise SystemExit(f"{layer.name}: ebops_factor or parallelization other than 1: not counted here")
        n_in, units = (int(d) for d in layer.kernel.shape)
        bw_in = np.asarray(ops.convert_to_numpy(layer.iq.bits_((1, n_in))))
        if by_value:
            bw_k = value_bits(ops.convert_to_numpy(layer.qkernel))
            bw_b = value_bits(ops.convert_to_numpy(layer.qbias)) if layer.bq is not None else None
        else:
            bw_k = np.asarray(ops.convert_to_numpy(layer.kq.bits_(layer.kernel.shape)))
            bw_b = np.asarray(ops.convert_to_numpy(layer.bq.bits_(layer.bias.shape))) if layer.bq is not None else None
        total += float(np.sum(bw_in @ bw_k)) + (float(np.mean(bw_b)) * units if bw_b is not None else 0.0)
    return total


def epoch_clock():
    """A keras callback that records the wall and process CPU seconds of each epoch."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.wall: list[float] = []
            self.cpu: list[float] = []

        def on_epoch_begin(self, epoch, logs=None) -> None:
            self._start = (time.perf_counter(), time.process_time())

        def on_epoch_end(self, epoch, logs=None) -> None:
            self.wall.append(time.perf_counter() - self._start[0])
            self.cpu.append(time.process_time() - self._start[1])

        def median(self, which: str) -> float:
            """The median epoch after the first (which compiles), or the first when it is the only one."""
            times = getattr(self, which)
            return statistics.median(times[1:] or times)

    return EpochClock()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help=".npz with X_train/y_train, X_val/y_val, X_test/y_test")
    parser.add_argument("--beta", type=float, required=True, help="weight of EBOPs in the loss")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate (HGQ2's example: 5e-3)")
    args = parser.parse_args()

    import hgq
    import keras
    import numpy as np
    from hgq.utils import trace_minmax
    from hgq.utils.sugar import FreeEBOPs

    with np.load(args.data) as npz:
        x = {s: npz[f"X_{s}"].astype("float32") for s in ("train", "val", "test")}
        y = {s: _labels(npz[f"y_{s}"]) for s in ("train", "val", "test")}
    n_classes = int(max(v.max() for v in y.values())) + 1

    keras.utils.set_random_seed(args.seed)
    model = build(args.beta, n_classes, x["train"].shape[1])
    model.compile(optimizer=keras.optimizers.Adam(args.lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    clock = epoch_clock()
    start, cpu = time.perf_counter(), time.process_time()
    history = model.fit(x["train"], y["train"], batch_size=args.batch_size, epochs=args.epochs,
                        validation_data=(x["val"], y["val"]),
                        callbacks=[FreeEBOPs(), keras.callbacks.TerminateOnNaN(), clock], verbose=0)
    train_s, train_cpu_s = time.perf_counter() - start, time.process_time() - cpu
    epochs_run = len(history.history.get("loss", []))
    if epochs_run < args.epochs or not np.isfinite(history.history["loss"][-1]):
        sys.exit(f"HGQ2 training stopped at epoch {epochs_run} of {args.epochs}: loss is not finite")

    # The final trace: integer bits of the wrapping quantizers from the data; HGQ2's EBOPs of the result.
    # The trace runs the model eagerly, one call per batch, and each new batch shape costs JAX a new
    # compilation of every op: the training and validation rows go in as one array, in batches of one size.
    trace_start = time.perf_counter()
    rows = np.concatenate([x["train"], x["val"]])
    ebops = trace_minmax(model, rows, batch_size=min(TRACE_BATCH, len(rows)))
    trace_s = time.perf_counter() - trace_start

    recount = ebops_of(model, by_value=False)
    if abs(recount - ebops) >= len(model.layers):  # HGQ2 truncates each layer's count to an integer
        raise SystemExit(f"the recount of HGQ2's formula ({recount:,.1f}) differs from HGQ2's count ({ebops:,})")

    def accuracy(split: str) -> float:
        logits = model.predict(x[split], batch_size=4096, verbose=0)
        return float(np.mean(np.argmax(logits, axis=1) == y[split]))

    result = {
        "beta": args.beta, "seed": args.seed, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "test_accuracy": accuracy("test"), "val_accuracy": accuracy("val"), "ebops": int(ebops),
        "ebops_recount": recount, "ebops_values": ebops_of(model, by_value=True),
        "ebops_training": int(history.history["ebops"][-1]), "train_s": train_s, "train_cpu_s": train_cpu_s,
        "epoch_s": clock.median("wall"), "epoch_cpu_s": clock.median("cpu"), "first_epoch_s": clock.wall[0],
        "setup_s": start - START, "trace_s": trace_s, "wall_s": time.perf_counter() - START, "cpu_s": time.process_time(),
        "versions": {"hgq2": hgq.__version__, "keras": keras.__version__, "backend": keras.backend.backend()},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
