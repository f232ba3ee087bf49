"""RTL without Vivado: the seed's jet tagger through da4ml, Verilator and yosys.

    python benchmarks/bench_rtl.py [--samples 20000] [--family xcup] [--models 6bit,4bit,6bit-pruned] [--out DIR]

For the shipped jet model converted with ``6bit``, ``4bit`` and ``6bit`` + 75 % one-shot magnitude
pruning (every kernel, as ``rules/6bit-pruned.yaml`` asks; no fine-tuning, the hardware figures
depend on which weights are zero, not on training), prints: logits bit-identical between the
Verilator emulation and Keras on synthetic jets, yosys ``synth_xilinx`` cells (LUT, CARRY, FF, DSP,
BRAM) beside da4ml's estimate, the pipeline latency, and the wall time of each step. ``--naive``
also measures a trace that rounds half up (da4ml's ``RND``) instead of half to even, with da4ml's
software interpreter: how often the naive logic matches Keras.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "jet_tagging"))


def _model(name: str):
    import qconvert

    rules = "6bit" if name == "6bit-pruned" else name
    qmodel, _ = qconvert.convert(ROOT / "examples" / "jet_tagging" / "keras_model_fp32.h5", rules)
    if name == "6bit-pruned":
        from qconvert.train.prune import prune_once

        prune_once(qmodel, [((layer.name,), 0.75) for layer in qmodel.layers if type(layer).__name__ == "QDense"])
    return qmodel


def _naive(qmodel, x) -> tuple[float, float]:
    """(fraction of logits bit-identical, da4ml's LUT estimate) of a half-up trace (no parity correction)."""
    import keras
    import numpy as np
    from da4ml.trace import comb_trace

    from qconvert.export.inputs import round_to_type
    from qconvert.export.rtl import trace as tr

    exact_round = tr._round_one
    tr._round_one = lambda v, k, i, f, overflow: v.quantize(k, i, f, overflow, "RND")
    try:
        traced = tr.trace_model(qmodel, x=x)
    finally:
        tr._round_one = exact_round
    sol = comb_trace(traced.inp, traced.out)
    xq = round_to_type(x, traced.input_type)
    logits = keras.Model(qmodel.inputs, qmodel.get_layer(traced.logits_layer).output).predict(
        xq.astype("float32"), verbose=0, batch_size=1024)
    return float(np.mean(np.all(sol.predict(xq) == logits, axis=1))), float(sol.cost)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20000, help="synthetic jet samples")
    parser.add_argument("--family", default="xcup")
    parser.add_argument("--models", default="6bit,4bit,6bit-pruned")
    parser.add_argument("--out", type=Path, default=None, help="keep the RTL projects here")
    parser.add_argument("--naive", action="store_true", help="also measure a half-up trace (software interpreter)")
    args = parser.parse_args()

    from make_model import synthetic_jets

    from qconvert.export.rtl import RtlOptions, export_rtl

    x, y = synthetic_jets(args.samples)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-rtl-"))
    print(f"{args.samples} synthetic jets, yosys synth_xilinx -family {args.family}, 2 cores; projects in {out}")
    for name in args.models.split(","):
        qmodel = _model(name)
        start = time.perf_counter()
        r = export_rtl(qmodel, RtlOptions(out / name, family=args.family), x=x, y=y)
        total = time.perf_counter() - start
        f, s = r.figures, r.figures.synth
        print(f"\n== {name}: input {r.input_precision} ({r.input_source}), logits of '{r.logits_layer}'")
        print(f"  emulation: logits bit-identical {r.logits_exact_fraction:.4%} of {r.n_samples}, argmax agreement "
              f"{r.argmax_agreement:.4%}, accuracy Keras {r.accuracy_keras:.4f} vs RTL {r.accuracy_rtl:.4f}; "
              f"limits: {r.limits}")
        print(f"  da4ml estimate: {f.lut_da4ml:,.0f} LUT, {f.ff_da4ml:,} register bits, {f.latency_cycles} cycles at "
              f"{f.clock_ns:g} ns, adder depth {f.adder_depth:g}")
        if s is not None:
            sizes = ", ".join(f"{k} {v:,}" for k, v in s.lut_by_size.items())
            print(f"  yosys {s.family}: {s.lut:,} LUT ({sizes}), {s.carry:,} CARRY, {s.ff:,} FF, {s.dsp} DSP, "
                  f"{s.bram:g} BRAM, {s.lutram} LUTRAM")
        else:
            print(f"  yosys: {r.synth_error}")
        d = r.to_dict()["seconds"]
        print(f"  seconds: trace {d['trace']}, write {d['write']}, Verilator build {d['verilator']}, emulate "
              f"{d['emulate']}, yosys {d['yosys']}; total {total:.1f}")
        if args.naive:
            fraction, lut = _naive(qmodel, x)
            print(f"  naive half-up trace: logits bit-identical {fraction:.4%}, da4ml estimate {lut:,.0f} LUT "
                  f"(exact rounding adds {f.lut_da4ml - lut:,.0f})")


if __name__ == "__main__":
    main()
