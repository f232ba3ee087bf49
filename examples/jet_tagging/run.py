"""The seed's case study: LHC jet tagging, FP32 baseline vs 6-bit QAT (vs hls4ml emulation).

Data, in this order of preference:
  --data FILE      a local copy: .npz (X, y or X_train/y_train...), .csv or .parquet
                   with a label column 'class' (the OpenML table), or anything
                   qconvert's --data reads
  (default)        OpenML 'hls4ml_lhc_jets_hlf' through scikit-learn's fetch_openml,
                   cached in --cache (default ~/.cache/qconvert/openml); needs the
                   network the first time and fails with a clear message offline
  --synthetic      a clearly labelled stand-in of the same shape (16 features,
                   5 classes, Gaussian clusters) so the example runs anywhere

Then, as the seed does: one-hot labels, 80/20 train/test split (random_state 42),
StandardScaler, the FP32 baseline (64-32-32-5, Adam 1e-3, batch 1024, 20 epochs,
validation split 0.25), rules/6bit.yaml, QAT (Adam 1e-4, 30 epochs), and the
accuracies side by side.

    python examples/jet_tagging/run.py [--synthetic | --data FILE] [--baseline-epochs 20] [--qat-epochs 30]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_model import baseline, synthetic_jets  # noqa: E402


class DataUnavailable(Exception):
    pass


def openml_jets(cache: Path) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import fetch_openml

    try:
        data = fetch_openml("hls4ml_lhc_jets_hlf", data_home=str(cache), as_frame=False, parser="liac-arff")
    except Exception as exc:  # urllib/http errors differ by version; all mean the same to the user
        raise DataUnavailable(
            f"cannot fetch OpenML 'hls4ml_lhc_jets_hlf' (offline? {type(exc).__name__}: {' '.join(str(exc).split())[:120]}); "
            "pass --data with a local copy, or --synthetic for a stand-in"
        ) from None
    return np.asarray(data["data"], dtype="float32"), np.asarray(data["target"])


def local_jets(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.exists():
        raise DataUnavailable(f"{path}: no such file")
    if path.suffix == ".parquet":
        import pandas as pd  # optional: only for parquet copies

        frame = pd.read_parquet(path)
        return frame.drop(columns=["class"]).to_numpy("float32"), frame["class"].to_numpy()
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            x = npz["X"] if "X" in npz.files else npz["X_train"]
            y = npz["y"] if "y" in npz.files else npz["y_train"]
        return x.astype("float32"), (y.argmax(1) if y.ndim == 2 else y)
    from qconvert.train.data import load_data

    data = load_data(path, label_column="class")
    return np.concatenate([data.x_train, data.x_val]), np.concatenate([data.y_train, data.y_val])


def prepare(x: np.ndarray, labels: np.ndarray, seed: int):
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelEncoder, StandardScaler

    from qconvert.train.data import Dataset

    y = np.eye(len(np.unique(labels)), dtype="float32")[LabelEncoder().fit_transform(labels)]
    x_tv, x_test, y_tv, y_test = train_test_split(x, y, test_size=0.2, random_state=42)
    scaler = StandardScaler()
    x_tv = scaler.fit_transform(x_tv).astype("float32")
    x_test = scaler.transform(x_test).astype("float32")
    x_train, x_val, y_train, y_val = train_test_split(x_tv, y_tv, test_size=0.25, random_state=seed)
    return Dataset("jets", x_train, y_train, x_val, y_val, x_test, y_test, "onehot", "seed's split")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path)
    source.add_argument("--synthetic", action="store_true")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "qconvert" / "openml")
    parser.add_argument("--samples", type=int, default=100_000, help="size of the --synthetic stand-in")
    parser.add_argument("--baseline-epochs", type=int, default=20)
    parser.add_argument("--qat-epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hls4ml", type=Path, default=Path(tempfile.gettempdir()) / "qconvert_jet_hls4ml_prj",
                        help="where the hls4ml project goes")
    args = parser.parse_args()

    try:
        if args.synthetic:
            x, onehot = synthetic_jets(args.samples, seed=args.seed)
            labels, title = onehot.argmax(1), "SYNTHETIC stand-in for the jets (not physics)"
        elif args.data is not None:
            (x, labels), title = local_jets(args.data), f"jets from {args.data}"
        else:
            (x, labels), title = openml_jets(args.cache), "OpenML hls4ml_lhc_jets_hlf"
    except DataUnavailable as exc:
        print(f"jet_tagging: error: {exc}", file=sys.stderr)
        return 2

    import keras
    from rich.console import Console

    from qconvert.demo import hls4ml_column, preset, render_study, run_case_study

    data = prepare(x, labels, args.seed)
    data = type(data)(title, *[getattr(data, f) for f in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")],
                      "onehot", data.split_note)
    keras.utils.set_random_seed(args.seed)
    fp32 = baseline()
    fp32.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    fp32.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), batch_size=1024,
             epochs=args.baseline_epochs, shuffle=True, verbose=0)
    study = run_case_study(fp32, data, [("6-bit", preset("6bit"))], qat_epochs=args.qat_epochs, seed=args.seed, after_qat=hls4ml_column(data, args.hls4ml))
    render_study(study, Console())
    qat = next((r for r in study.rows if "hls4ml" in r), None)
    print(f"Accuracy baseline: {study.accuracy('FP32 baseline'):.4f}")
    print(f"Accuracy quantized: {study.accuracy('6-bit QAT'):.4f}")
    print(f"Accuracy hls4ml: {qat['hls4ml']:.4f} (argmax agreement {qat['hls4ml_agreement']:.2%}, project in {args.hls4ml})"
          if qat else "Accuracy hls4ml: - (g++ not found: no emulation)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
