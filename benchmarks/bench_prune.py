"""Pruning and hardware cost: 6-bit + 75 % sparsity against unpruned 6-bit QAT, EBOPs, DSPs, da4ml LUTs.

    python benchmarks/bench_prune.py [--epochs 40] [--models mlp,cnn,jet] [--no-da]

For the digits MLP, the digits Conv2D model and the jet tagger's synthetic stand-in (the seed's
architecture, examples/jet_tagging/make_model.py), runs the CLI twice — rules/6bit.yaml and
rules/6bit-pruned.yaml, the same --epochs, seed and learning rate, with --hls4ml (Latency) — and
prints: test accuracy of both QAT runs and their difference, the sparsity of every pruned kernel, the
logits' bit-identical fraction in the hls4ml emulation, EBOPs / multiplies / DSPs unpruned and
pruned, then hls4ml's distributed_arithmetic strategy on both models (da4ml): bit-identical fraction,
LUT estimate per layer, and the seconds it took against the Latency project's. The jet runs add
``input: quantized_bits(16, 6)`` to the rules (a signed 16-bit input, as in the EBOPs check of
174,425 for the seed's 6-bit model).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "jet_tagging"))

JET_INPUT = "input: quantized_bits(16, 6)\n"


def _write_case(name: str, folder: Path, seed: int) -> tuple[Path, Path, str]:
    """FP32 model file, data .npz and a rule-file prefix for one case."""
    import numpy as np

    from qconvert.demo import digits_cnn, digits_dataset, digits_mlp, train_baseline

    if name == "jet":
        from make_model import synthetic_jets

        x, y = synthetic_jets(40000, seed=seed)
        n = len(x)
        split = {"X_train": x[: n // 2], "y_train": y[: n // 2], "X_val": x[n // 2: 3 * n // 4],
                 "y_val": y[n // 2: 3 * n // 4], "X_test": x[3 * n // 4:], "y_test": y[3 * n // 4:]}
        model = ROOT / "examples" / "jet_tagging" / "keras_model_fp32.h5"
        prefix = JET_INPUT
    else:
        data = digits_dataset(seed=seed, image=name == "cnn")
        fp32 = train_baseline((digits_cnn if name == "cnn" else digits_mlp)(seed), data, seed=seed)
        model = folder / f"{name}_fp32.keras"
        fp32.save(model)
        split = {"X_train": data.x_train, "y_train": data.y_train, "X_val": data.x_val, "y_val": data.y_val,
                 "X_test": data.x_test, "y_test": data.y_test}
        prefix = ""
    npz = folder / f"{name}.npz"
    np.savez(npz, **split)
    return model, npz, prefix


def _rules(preset: str, prefix: str, folder: Path) -> Path:
    text = (ROOT / "rules" / f"{preset}.yaml").read_text()
    path = folder / f"{preset}{'-in16' if prefix else ''}.yaml"
    path.write_text(text.replace("defaults:", prefix + "defaults:", 1))
    return path


def _run_cli(model: Path, rules: Path, data: Path, out: Path, args: argparse.Namespace) -> tuple[dict, float]:
    report = out.with_suffix(".json")
    cmd = [sys.executable, "-m", "qconvert", str(model), "-r", str(rules), "-o", str(out), "--data", str(data),
           "--epochs", str(args.epochs), "--lr", str(args.lr), "--batch-size", str(args.batch_size), "--seed", str(args.seed),
           "--hls4ml", str(out.with_suffix("")) + "_prj", "--report", str(report)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return json.loads(report.read_text()), time.perf_counter() - start


def _da(out: Path, data: Path, folder: Path) -> tuple[object, float]:
    import numpy as np

    import qconvert
    from qconvert.export import Hls4mlOptions, export

    split = np.load(data)
    start = time.perf_counter()
    result = export(qconvert.load_model(out), Hls4mlOptions(folder / f"{out.stem}_da", strategy="distributed_arithmetic"),
                    x=split["X_test"], y=split["y_test"])
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="mlp,cnn,jet")
    parser.add_argument("--no-da", action="store_true", help="skip the distributed_arithmetic projects")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-prune-") as tmp:
        folder = Path(tmp)
        for name in args.models.split(","):
            model, data, prefix = _write_case(name, folder, args.seed)
            runs = {}
            for preset in ("6bit", "6bit-pruned"):
                out = folder / f"{name}_{preset}.keras"
                doc, seconds = _run_cli(model, _rules(preset, prefix, folder), data, out, args)
                runs[preset] = (out, doc, seconds)
            (_, plain, t_plain), (pruned_out, pruned, t_pruned) = runs["6bit"], runs["6bit-pruned"]
            a0, a1 = plain["accuracy"]["qat"], pruned["accuracy"]["qat"]
            print(f"\n== {name}: {args.epochs} epochs, lr {args.lr}, batch {args.batch_size}, seed {args.seed}")
            print(f"  QAT accuracy: 6-bit {a0:.4f}, 6-bit + 75 % pruned {a1:.4f} ({100 * (a1 - a0):+.2f} pp); "
                  f"FP32 {plain['accuracy']['fp32']:.4f}; CLI wall time {t_plain:.0f} s / {t_pruned:.0f} s")
            sparsity = ", ".join(f"{k} {100 * v['sparsity']:.2f}%" for k, v in pruned["pruning"]["layers"].items())
            print(f"  kernel sparsity: {sparsity}")
            for label, doc in (("6-bit", plain), ("pruned", pruned)):
                h, t = doc["hls4ml"], doc["totals"]
                exact = h["logits_exact_fraction"] if h["logits_exact_fraction"] is not None else h["exact_fraction"]
                print(f"  {label:7s} EBOPs {t['ebops']:>10,.0f}  multiplies {t['multiplies']:>7,}  DSP {t['dsp']:>5,}  "
                      f"hls4ml Latency: logits bit-identical {exact:.2%}, compile {h['compile_seconds']:.0f} s")
            if args.no_da:
                continue
            for label, out in (("6-bit", runs["6bit"][0]), ("pruned", pruned_out)):
                r, seconds = _da(out, data, folder)
                exact = r.logits_exact_fraction if r.logits_exact_fraction is not None else r.exact_fraction
                per_layer = ", ".join(f"{k} {v:,.0f}" for k, v in r.lut_da.items())
                print(f"  {label:7s} distributed_arithmetic: logits bit-identical {exact:.2%}; LUT estimate "
                      f"{sum(r.lut_da.values()):,.0f} ({per_layer}); {seconds:.0f} s (compile {r.compile_seconds:.0f} s)")


if __name__ == "__main__":
    main()
