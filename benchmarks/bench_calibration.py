"""Calibration, training defaults and distillation: the figures behind the README's claims.

Every QAT run goes through ``qconvert.pipeline.convert_file`` — the main job,
as ``qconvert MODEL --rules R --data D --epochs 30`` runs it — with every other
flag at its default (batch size and learning rate chosen from the data).
Seeds fixed, all offline (scikit-learn's digits; the jet example's synthetic
stand-in). Prints figures; asserts nothing.

* PTQ (no training): each preset, uncalibrated and calibrated (``6bit-auto``, ``8bit-auto``), on the
  digits MLP, the digits CNN and the jet stand-in, against FP32.
* QAT with default flags (``--epochs 30``): 6-bit and 4-bit presets on the digits MLP.
* Epochs to within 0.5 pp of the uncalibrated QAT's final validation accuracy: ``6bit`` vs ``6bit-auto``.
* ``--distill`` at 4 bits on the digits MLP and CNN: the difference it makes.

    python benchmarks/bench_calibration.py [--epochs 30] [--skip-qat]
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

import keras  # noqa: E402
import numpy as np  # noqa: E402
from make_model import synthetic_jets  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from qconvert.demo import digits_cnn, digits_dataset, digits_mlp, train_baseline  # noqa: E402
from qconvert.pipeline import convert, convert_file  # noqa: E402
from qconvert.train.data import Dataset, load_data  # noqa: E402
from qconvert.train.qat import Distill, TrainOptions  # noqa: E402

JET_H5 = ROOT / "examples" / "jet_tagging" / "keras_model_fp32.h5"


def save_case(folder: Path, name: str, model, data: Dataset) -> tuple[Path, Path]:
    model_path, data_path = folder / f"{name}.keras", folder / f"{name}.npz"
    model.save(model_path)
    np.savez(data_path, X_train=data.x_train, y_train=data.y_train, X_val=data.x_val, y_val=data.y_val,
             X_test=data.x_test, y_test=data.y_test)
    return model_path, data_path


def cases(folder: Path) -> dict[str, tuple[Path, Path]]:
    out = {}
    for kind, build in (("mlp", digits_mlp), ("cnn", digits_cnn)):
        data = digits_dataset(seed=0, image=kind == "cnn")
        out[f"digits {kind}"] = save_case(folder, kind, train_baseline(build(0), data, seed=0), data)
    # The stand-in's distribution (seed 0 fixes its class centres) with fresh noise: new samples of what
    # the shipped jet model was fitted on.
    x, y = synthetic_jets(25000, seed=0)
    jets = Dataset("jets", x[:15000], y[:15000], x[15000:20000], y[15000:20000], x[20000:], y[20000:])
    data_path = folder / "jet.npz"
    np.savez(data_path, X_train=jets.x_train, y_train=jets.y_train, X_val=jets.x_val, y_val=jets.y_val,
             X_test=jets.x_test, y_test=jets.y_test)
    out["jet stand-in"] = (JET_H5, data_path)
    return out


def accuracy(model, x, y) -> float:
    return float(np.mean(np.asarray(model.predict(x, verbose=0)).argmax(1) == y.argmax(1)))


def ptq_table(console: Console, all_cases: dict[str, tuple[Path, Path]]) -> None:
    table = Table(title="PTQ, no training: accuracy on the test split (Δ vs FP32, pp)", title_justify="left")
    presets = ["6bit", "6bit-auto", "8bit", "8bit-auto", "4bit"]
    for name in ["model", "FP32", *presets]:
        table.add_column(name, justify="left" if name == "model" else "right")
    for case, (model_path, data_path) in all_cases.items():
        model, data = keras.saving.load_model(model_path), load_data(data_path)
        _, x, y = data.eval_split
        fp32 = accuracy(model, x, y)
        cells = [case, f"{fp32:.4f}"]
        for preset in presets:
            q, _ = convert(model, preset, calibration_data=data.calibration_rows(2048))
            a = accuracy(q, x, y)
            cells.append(f"{a:.4f} ({100 * (a - fp32):+.1f})")
        table.add_row(*cells)
    console.print(table)


def qat(model_path: Path, data_path: Path, rules: str, out: Path, epochs: int, distill: Distill | None = None):
    t0 = time.perf_counter()
    result = convert_file(model_path, rules, output=out, data=data_path,
                          train=TrainOptions(epochs=epochs, verbose=0, distill=distill), plot_path=out.with_suffix(".png"))
    return result.report.sections, time.perf_counter() - t0


def epochs_to(history: list[float], target: float, tolerance: float = 0.005) -> int | None:
    return next((i + 1 for i, v in enumerate(history) if v >= target - tolerance), None)


def qat_tables(console: Console, all_cases: dict[str, tuple[Path, Path]], folder: Path, epochs: int) -> None:
    table = Table(title=f"QAT through the main job, --epochs {epochs}, every other flag at its default",
                  title_justify="left")
    for name in ("model", "rules", "batch", "lr", "FP32", "PTQ", "QAT", "Δ QAT vs FP32 (pp)", "converged", "seconds"):
        table.add_column(name, justify="left" if name in ("model", "rules", "converged") else "right")
    runs: dict[tuple[str, str], dict] = {}
    plan = [("digits mlp", "6bit", None), ("digits mlp", "4bit", None), ("digits mlp", "6bit-auto", None),
            ("digits mlp", "4bit", Distill()), ("digits cnn", "4bit", None), ("digits cnn", "4bit", Distill())]
    for case, rules, distill in plan:
        model_path, data_path = all_cases[case]
        label = rules + (" --distill" if distill else "")
        sections, seconds = qat(model_path, data_path, rules, folder / f"{case.replace(' ', '_')}_{label.replace(' --', '_')}.keras",
                                epochs, distill)
        runs[(case, label)] = sections
        acc, tr = sections["accuracy"], sections["training"]
        table.add_row(case, label, str(tr["batch_size"]), f"{tr['lr']:.2g}", f"{acc['fp32']:.4f}", f"{acc['ptq']:.4f}",
                      f"{acc['qat']:.4f}", f"{100 * (acc['qat'] - acc['fp32']):+.2f}",
                      str(tr["convergence"]["converged"]), f"{seconds:.0f}")
    console.print(table)

    plain = runs[("digits mlp", "6bit")]["training"]["history"]["val_accuracy"]
    calibrated = runs[("digits mlp", "6bit-auto")]["training"]["history"]["val_accuracy"]
    target = plain[-1]
    console.print(f"epochs to within 0.5 pp of the uncalibrated 6-bit QAT's final validation accuracy ({target:.4f}): "
                  f"6bit {epochs_to(plain, target)}, 6bit-auto {epochs_to(calibrated, target)}")
    for case in ("digits mlp", "digits cnn"):
        a = runs[(case, "4bit")]["accuracy"]["qat"]
        b = runs[(case, "4bit --distill")]["accuracy"]["qat"]
        console.print(f"--distill at 4 bits, {case}: QAT {a:.4f} → {b:.4f} ({100 * (b - a):+.2f} pp)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--skip-qat", action="store_true", help="PTQ figures only (a minute)")
    args = parser.parse_args()
    console = Console(width=160)
    with tempfile.TemporaryDirectory(prefix="qconvert-bench-cal-") as tmp:
        folder = Path(tmp)
        all_cases = cases(folder)
        ptq_table(console, all_cases)
        if not args.skip_qat:
            qat_tables(console, all_cases, folder, args.epochs)


if __name__ == "__main__":
    main()
