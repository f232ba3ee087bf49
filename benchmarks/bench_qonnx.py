"""QONNX export of the shipped jet tagger: qonnx's execution, hls4ml's QONNX frontend and qconvert's hls4ml route.

    python benchmarks/bench_qonnx.py [--samples 10000] [--rules 6bit,4bit] [--out DIR]

For the shipped jet model converted with each preset, on the test split of ``make_model.py``'s synthetic jets,
one 16-bit input type from the data's range for all three: logits bit-identical to Keras, argmax
agreement of the outputs with Keras's, accuracy, wall time — for qonnx's ``execute_onnx`` of the written
graph, hls4ml's QONNX frontend compiling that graph (hls4ml's own configuration), and qconvert's own
hls4ml route (``--hls4ml``: its derived configuration). Also the graph's size and its export time.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--rules", default="6bit,4bit")
    parser.add_argument("--out", type=Path, help="keep the graphs and projects here (default: a temporary folder)")
    args = parser.parse_args()

    from make_model import synthetic_jets

    import qconvert
    from qconvert.export import Hls4mlOptions, export
    from qconvert.export.qonnx import QonnxOptions, export_qonnx

    x, y = synthetic_jets(40000)  # make_model.py's stand-in: the test split is its last quarter
    x, y = x[-args.samples:], y[-args.samples:]
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_qonnx_"))
    rows = []
    for rules in args.rules.split(","):
        qmodel, _ = qconvert.convert(ROOT / "examples" / "jet_tagging" / "keras_model_fp32.h5", rules)
        start = time.perf_counter()
        route = export(qmodel, Hls4mlOptions(out / f"route_{rules}"), x=x, y=y)
        route_s = time.perf_counter() - start
        result = export_qonnx(qmodel, QonnxOptions(out / f"jet_{rules}.onnx", hls4ml_dir=out / f"frontend_{rules}"), x=x, y=y)
        a, f = result.agreement, result.hls4ml
        rows.append((rules, "qonnx execute_onnx", a["logits_exact_fraction"], a["argmax_agreement"], a["accuracy_keras"],
                     a["accuracy_qonnx"], result.export_seconds + result.verify_seconds - f["seconds"]))
        rows.append((rules, "hls4ml QONNX frontend", f["logits_exact_fraction"], f["argmax_agreement"], f["accuracy_keras"],
                     f["accuracy_hls4ml"], f["seconds"]))
        rows.append((rules, "qconvert hls4ml route", route.logits_exact_fraction, route.argmax_agreement,
                     route.accuracy_keras, route.accuracy_hls4ml, route_s))
        print(f"{rules}: {result.nodes} nodes ({result.quant_nodes} Quant), input {result.input_precision}; "
              f"frontend limits: {f['limits']}")
    print("\n| preset | route | logits bit-identical | argmax agreement | accuracy Keras | accuracy route | seconds |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {100 * r[2]:.2f} % | {100 * r[3]:.2f} % | {r[4]:.4f} | {r[5]:.4f} | {r[6]:.0f} |")
    print(f"\n{args.samples} synthetic jets; graphs and projects in {out}")


if __name__ == "__main__":
    main()
