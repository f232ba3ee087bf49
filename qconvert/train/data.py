"""Training and evaluation data: ``.npz``, a pair of ``.npy`` files, or CSV, validated.

* ``.npz`` with ``X_train`` and ``y_train``, optionally ``X_val``/``y_val`` and
  ``X_test``/``y_test`` (lower-case ``x_...`` is accepted too).
* ``X.npy,y.npy``: two files, features then labels.
* ``.csv`` with a header; the label column is ``--label-column`` or, if absent,
  the first of ``label``, ``class``, ``target``, ``y``, else the last column.

Labels are one-hot (2-D rows of 0/1 summing to 1) or integer class indices
(1-D, whole numbers); :attr:`Dataset.label_kind` says which. Without a
validation set, ``val_split`` of the training rows (0.25, as in the seed) is
held out with a seeded shuffle. Nothing here imports Keras.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["Dataset", "check_fits_model", "check_one_input_one_output", "label_kind", "load_data"]

_LABEL_NAMES = ("label", "class", "target", "y")


@dataclass(frozen=True)
class Dataset:
    """Loaded data with its splits (``x_train``/``y_train``, validation, optional test; rows first), the kind of
    labels (one-hot, integer classes or values) and a note on how the validation split was made."""

    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    label_kind: str = "onehot"  # onehot | integer | values
    split_note: str = ""

    @property
    def n_classes(self) -> int | None:
        if self.label_kind == "onehot":
            return int(self.y_train.shape[1])
        if self.label_kind == "integer":
            return int(max(self.y_train.max(), self.y_val.max())) + 1
        return None

    @property
    def eval_split(self) -> tuple[str, np.ndarray, np.ndarray]:
        """The held-out set accuracies are reported on: test if given, else validation."""
        if self.x_test is not None and self.y_test is not None:
            return "test", self.x_test, self.y_test
        return "validation", self.x_val, self.y_val

    def calibration_rows(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` rows of the training split (all when fewer), drawn with a seeded shuffle: never the
        validation or test rows, so calibration does not see what the accuracies are measured on."""
        if n < 1:
            raise DataError(f"--calibration-rows must be at least 1, got {n}")
        if n >= len(self.x_train):
            return self.x_train
        pick = np.sort(np.random.default_rng(seed).choice(len(self.x_train), size=n, replace=False))
        return self.x_train[pick]

    def class_indices(self, y: np.ndarray) -> np.ndarray:
        return y.argmax(axis=1) if self.label_kind == "onehot" else y.astype(int).ravel()


def label_kind(y: np.ndarray) -> str:
    """onehot, integer (class indices) or values (anything else: regression targets)."""
    if y.ndim == 2 and y.shape[1] > 1 and np.isin(y, (0, 1)).all() and np.allclose(y.sum(axis=1), 1):
        return "onehot"
    flat = y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y
    if flat.ndim == 1 and np.issubdtype(flat.dtype, np.number) and np.all(np.mod(flat, 1) == 0) and flat.min() >= 0:
        return "integer"
    return "values"


def _check_arrays(source: str, name: str, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if x.size == 0 or len(x) == 0:
        raise DataError(f"{source}: {name} is empty")
    if len(x) != len(y):
        raise DataError(f"{source}: {name} has {len(x)} samples but {len(y)} labels")
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{source}: {name} features are not numbers (dtype {x.dtype})")
    bad = ~np.isfinite(x)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise DataError(f"{source}: {name} has NaN or infinite values (first at sample {row})")
    if np.issubdtype(y.dtype, np.number) and not np.isfinite(y).all():
        raise DataError(f"{source}: {name} labels have NaN or infinite values")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    return x.astype("float32"), y


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: cannot read as .npz: {' '.join(str(exc).split())[:200]}") from None


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: cannot read as .npy: {' '.join(str(exc).split())[:200]}") from None


def _read_csv(path: Path, label_column: str | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read as CSV: {exc}") from None
    if len(rows) < 2:
        raise DataError(f"{path}: no data rows")
    header, body = rows[0], rows[1:]
    if label_column is None:
        label_column = next((c for c in header if c.strip().lower() in _LABEL_NAMES), header[-1])
    if label_column not in header:
        raise DataError(f"{path}: no column {label_column!r}; columns: {', '.join(header)}")
    li = header.index(label_column)
    try:
        table = np.array([[float(v) for v in row] for row in body if row], dtype="float64")
    except ValueError as exc:
        raise DataError(f"{path}: non-numeric value ({exc})") from None
    if table.ndim != 2 or table.shape[1] != len(header):
        raise DataError(f"{path}: rows do not all have {len(header)} columns")
    return np.delete(table, li, axis=1), table[:, li]


def _get(arrays: dict[str, np.ndarray], name: str) -> np.ndarray | None:
    for key in (name, name.lower(), name[0].lower() + name[1:]):
        if key in arrays:
            return arrays[key]
    return None


def check_one_input_one_output(spec: Any, model: str, n_inputs: int, n_outputs: int) -> None:
    """``--data`` holds one input array and one target array per split: a model with more is refused in one line."""
    if n_inputs != 1 or n_outputs != 1:
        raise DataError(f"{spec}: model {model!r} has {n_inputs} input(s) and {n_outputs} output(s); --data holds one "
                        "input (X_*) and one target (y_*), so evaluation and training need a single-input, "
                        "single-output model (convert and --hls4ml without --data work)")


def load_data(spec: str | Path, *, label_column: str | None = None, val_split: float = 0.25, seed: int = 0) -> Dataset:
    """Read ``spec`` (``data.npz``, ``X.npy,y.npy`` or ``data.csv``) into a validated :class:`Dataset`."""
    text = str(spec)
    paths = [Path(p) for p in text.split(",")] if "," in text else [Path(text)]
    for path in paths:
        if not path.exists():
            raise DataError(f"{path}: no such data file")
        if path.is_dir():
            raise DataError(f"{path}: is a directory, not a data file")
    arrays: dict[str, np.ndarray] = {}
    if len(paths) == 2:
        arrays = {"X_train": _read_npy(paths[0]), "y_train": _read_npy(paths[1])}
    elif len(paths) != 1:
        raise DataError(f"{text}: expected data.npz, data.csv or a pair X.npy,y.npy")
    elif paths[0].suffix == ".npz":
        arrays = _read_npz(paths[0])
    elif paths[0].suffix == ".csv":
        arrays["X_train"], arrays["y_train"] = _read_csv(paths[0], label_column)
    else:
        raise DataError(f"{paths[0]}: unsupported data format {paths[0].suffix!r}; expected .npz, .csv or X.npy,y.npy")
    x, y = _get(arrays, "X_train"), _get(arrays, "y_train")
    if x is None or y is None:
        raise DataError(f"{text}: needs X_train and y_train; found {', '.join(sorted(arrays)) or 'nothing'}")
    x, y = _check_arrays(text, "X_train", x, y)
    parts: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
    for split in ("val", "test"):
        xs, ys = _get(arrays, f"X_{split}"), _get(arrays, f"y_{split}")
        if (xs is None) != (ys is None):
            raise DataError(f"{text}: X_{split} and y_{split} must come together")
        parts[split] = None if xs is None else _check_arrays(text, f"X_{split}", xs, ys)
        if parts[split] is not None and parts[split][0].shape[1:] != x.shape[1:]:
            raise DataError(f"{text}: X_{split} samples have shape {parts[split][0].shape[1:]}, X_train {x.shape[1:]}")
    note = ""
    if parts["val"] is None:
        if not 0 < val_split < 1:
            raise DataError(f"validation split must be between 0 and 1, got {val_split}")
        order = np.random.default_rng(seed).permutation(len(x))
        n_val = max(1, round(len(x) * val_split))
        if n_val >= len(x):
            raise DataError(f"{text}: too few samples ({len(x)}) to hold out a validation split")
        val_idx, train_idx = order[:n_val], order[n_val:]
        parts["val"] = (x[val_idx], y[val_idx])
        x, y = x[train_idx], y[train_idx]
        note = f"validation: {val_split:.0%} of the training rows (seed {seed})"
    kind = label_kind(y)
    for split in ("val", "test"):
        if parts[split] is not None and parts[split][1].shape[1:] != y.shape[1:]:
            raise DataError(f"{text}: y_{split} labels have shape {parts[split][1].shape[1:]}, y_train {y.shape[1:]}")
    test = parts["test"]
    return Dataset(text, x, y, parts["val"][0], parts["val"][1], test[0] if test else None, test[1] if test else None, kind, note)


def check_fits_model(data: Dataset, input_shape: tuple, output_units: int | None) -> None:
    """Raise :class:`DataError` unless the samples and labels fit the model's input and output."""
    expected = tuple(input_shape[1:])
    got = tuple(data.x_train.shape[1:])
    if len(expected) != len(got) or any(e is not None and e != g for e, g in zip(expected, got)):
        raise DataError(f"{data.source}: samples have shape {got}, the model takes {expected}")
    if output_units is None:
        return
    if data.label_kind == "values" and data.y_train.ndim == 1 and output_units > 1:
        # one number per sample for a model with several outputs: meant as classes, and not class indices
        flat = data.y_train
        bad = int(np.argmax((np.mod(flat, 1) != 0) | (flat < 0)))
        raise DataError(f"{data.source}: labels are not class indices ({flat[bad]:g} at sample {bad}) and the model "
                        f"outputs {output_units} values: give integer classes 0..{output_units - 1} or one-hot rows")
    if data.label_kind == "values":
        return
    if data.label_kind == "onehot" and data.y_train.shape[1] != output_units:
        raise DataError(f"{data.source}: labels have {data.y_train.shape[1]} classes, the model outputs {output_units}")
    if data.label_kind == "integer" and output_units > 1 and (data.n_classes or 0) > output_units:
        raise DataError(f"{data.source}: labels go up to class {data.n_classes - 1}, the model outputs {output_units}")
