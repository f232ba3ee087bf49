"""The case study end to end on data that ships offline: scikit-learn's handwritten digits.

FP32 baseline → convert with a preset → PTQ accuracy → QAT → accuracy, for
the 6-bit and the 4-bit presets, on a small MLP shaped like the seed's jet
tagger (64 → 64 → 32 → 32 → 10) or a small Conv2D model. ``qconvert demo``
and ``examples/digits/run.py`` run it; ``examples/jet_tagging/run.py`` runs
the same stages on the jets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import QConvertError
from .train.data import Dataset

__all__ = ["CaseStudy", "digits_cnn", "digits_dataset", "digits_mlp", "hls4ml_column", "preset", "render_study", "run_case_study", "train_baseline"]

def preset(name: str) -> Path:
    """The path of a shipped preset (``rules/<name>.yaml``)."""
    from .rules import presets_dir

    path = presets_dir() / f"{name}.yaml"
    if not path.exists():
        raise QConvertError(f"preset {name!r} not found in {presets_dir()}")
    return path


def digits_dataset(seed: int = 0, image: bool = False) -> Dataset:
    """scikit-learn's 8×8 digits, scaled to [0, 1], split 60/20/20 (stratified), one-hot labels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    if image:
        x = x.reshape(-1, 8, 8, 1)
    y = np.eye(10, dtype="float32")[digits.target]
    x_tv, x_test, y_tv, y_test = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=digits.target)
    x_train, x_val, y_train, y_val = train_test_split(x_tv, y_tv, test_size=0.25, random_state=seed, stratify=y_tv.argmax(1))
    return Dataset("sklearn digits", x_train, y_train, x_val, y_val, x_test, y_test, "onehot", "60/20/20 stratified split")


def digits_mlp(seed: int = 0) -> Any:
    """An FP32 MLP for digits shaped like the jet tagger (64 → 64 → 32 → 32 → 10, relu, softmax); seeded weights."""
    import keras

    keras.utils.set_random_seed(seed)  # the initial weights: same seed, same model, in any process
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu", name="fc1"),
            keras.layers.Dense(32, activation="relu", name="fc2"),
            keras.layers.Dense(32, activation="relu", name="fc3"),
            keras.layers.Dense(10, activation="softmax", name="output"),
        ],
        name="digits_mlp",
    )


def digits_cnn(seed: int = 0) -> Any:
    """A small FP32 Conv2D model for the 8×8 digits images (10 classes, softmax); seeded weights."""
    import keras

    keras.utils.set_random_seed(seed)  # the initial weights: same seed, same model, in any process
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(2, name="pool1"),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(2, name="pool2"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(10, activation="softmax", name="output"),
        ],
        name="digits_cnn",
    )


def train_baseline(model: Any, data: Dataset, *, epochs: int = 60, lr: float = 3e-3, batch_size: int = 64, seed: int = 0) -> Any:
    """Fit the FP32 baseline (Adam, categorical cross-entropy, best val_loss weights kept)."""
    import keras

    keras.utils.set_random_seed(seed)
    from .train.compiled import build_training_state

    model.compile(optimizer=keras.optimizers.Adam(lr), loss="categorical_crossentropy", metrics=["accuracy"])
    build_training_state(model, data.x_train, data.y_train)  # one trace of the training step, not two
    stop = keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)
    model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=epochs,
              batch_size=batch_size, callbacks=[stop], verbose=0)
    return model


@dataclass
class CaseStudy:
    """Accuracies on the held-out split and BOPs, per model."""

    dataset: str
    split: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def accuracy(self, name: str) -> float:
        return next(r["accuracy"] for r in self.rows if r["model"] == name)


def run_case_study(
    fp32: Any,
    data: Dataset,
    presets: list[tuple[str, Path]],
    *,
    qat_epochs: int = 40,
    seed: int = 0,
    patience: int | None = None,
    after_qat: Callable[[str, Any, CaseStudy], None] | None = None,
) -> CaseStudy:
    """Convert ``fp32`` with each preset, report PTQ, fine-tune (QAT), report QAT: through the main job's stages.

    Conversion, calibration and QAT are :func:`qconvert.pipeline.train_rules` with the main job's defaults (its
    learning rate, batch size and loss), so each row is what ``qconvert MODEL --rules PRESET --data D --epochs
    qat_epochs --seed seed [--patience patience]`` computes. ``after_qat(name, qmodel, study)`` lets a caller add
    rows (e.g. hls4ml emulation).
    """
    from .pipeline import convert, train_rules
    from .rules import as_ruleset
    from .train.qat import TrainOptions, evaluate, infer_loss

    split, x, y = data.eval_split
    loss = infer_loss(fp32, data, None)
    study = CaseStudy(data.source, split)
    base = evaluate(fp32, data, x, y, loss)
    _, fp32_report = convert(fp32, presets[0][1])
    study.rows.append({"model": "FP32 baseline", "accuracy": base.accuracy, "auc": base.auc, "bops": fp32_report.totals.bops_fp32})
    options = TrainOptions(epochs=qat_epochs, patience=patience, seed=seed, verbose=0)
    for name, rules in presets:
        ptq_model, report = convert(fp32, rules)
        ptq = evaluate(ptq_model, data, x, y, loss)
        study.rows.append({"model": f"{name} PTQ", "accuracy": ptq.accuracy, "auc": ptq.auc, "bops": report.totals.bops})
        qmodel, _, _ = train_rules(fp32, as_ruleset(rules), data, options)
        qat = evaluate(qmodel, data, x, y, loss)
        study.rows.append({"model": f"{name} QAT", "accuracy": qat.accuracy, "auc": qat.auc, "bops": report.totals.bops})
        if after_qat is not None:
            after_qat(name, qmodel, study)
    return study


def hls4ml_column(data: Dataset, out_dir: Path) -> Callable[[str, Any, CaseStudy], None]:
    """An ``after_qat`` hook: export each QAT model to hls4ml (``out_dir/<name>``), compile it with g++ and
    put the emulation's accuracy beside the Keras one (the seed's third column). Without g++, nothing."""
    import shutil

    def add(name: str, qmodel: Any, study: CaseStudy) -> None:
        if shutil.which("g++") is None:
            return
        from .export import Hls4mlOptions, export

        _, x, y = data.eval_split
        slug = "".join(c if c.isalnum() else "_" for c in name)
        result = export(qmodel, Hls4mlOptions(Path(out_dir) / slug), x=x, y=y)
        study.rows[-1]["hls4ml"] = result.accuracy_hls4ml
        study.rows[-1]["hls4ml_agreement"] = result.argmax_agreement

    return add


def render_study(study: CaseStudy, console: Any) -> None:
    """The case study as one table: accuracy, ROC AUC and BOPs per model (FP32, PTQ, QAT, hls4ml)."""
    from rich.table import Table

    from .sections import format_count

    table = Table(title=f"{study.dataset}: accuracy on the {study.split} split", title_justify="left")
    with_hls4ml = any("hls4ml" in row for row in study.rows)
    for name in ("model", "accuracy", "ROC AUC", "BOPs") + (("hls4ml accuracy",) if with_hls4ml else ()):
        table.add_column(name, justify="left" if name == "model" else "right")
    for row in study.rows:
        auc = row.get("auc")
        cells = [row["model"], f"{row['accuracy']:.4f}", "-" if auc is None else f"{auc:.4f}",
                 format_count(row["bops"]) if row.get("bops") else "-"]
        if with_hls4ml:
            cells.append(f"{row['hls4ml']:.4f}" if row.get("hls4ml") is not None else "")
        table.add_row(*cells)
    console.print(table)


#: What ``qconvert demo -o DIR`` writes into DIR (for the 6-bit and 4-bit presets it runs).
DEMO_OUTPUTS = ("fp32.keras", "digits.npz", "accuracy.png", "6_bit.keras", "4_bit.keras", "hls4ml")


def check_demo_folder(out_dir: Path) -> list[str]:
    """The earlier demo outputs in ``out_dir`` that a new run replaces (sorted; empty for a new or empty folder).

    Raises :class:`OutputError` when ``out_dir`` (or a folder above it) is a file, or holds anything the demo does
    not write (hidden files such as ``.DS_Store`` aside): nothing of the user's is overwritten."""
    from .errors import OutputError

    out_dir = Path(out_dir)
    for folder in (out_dir, *out_dir.parents):
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"{out_dir}: {folder} exists and is not a folder")
    present = sorted(p.name for p in out_dir.iterdir() if not p.name.startswith(".")) if out_dir.is_dir() else []
    foreign = [name for name in present if name not in DEMO_OUTPUTS]
    if foreign:
        raise OutputError(f"{out_dir}: holds {', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}, which the "
                          "demo did not write; choose a new or empty folder")
    return present


def keep_models(out_dir: Path, then: Callable[[str, Any, CaseStudy], None] | None = None
                ) -> Callable[[str, Any, CaseStudy], None]:
    """An ``after_qat`` hook: save each QAT model as ``out_dir/<name>.keras`` (with provenance), then ``then``."""
    from .model.save import save_model

    def add(name: str, qmodel: Any, study: CaseStudy) -> None:
        slug = "".join(c if c.isalnum() else "_" for c in name)
        save_model(qmodel, Path(out_dir) / f"{slug}.keras", {"created_by": "qconvert demo", "preset": name})
        if then is not None:
            then(name, qmodel, study)

    return add


def write_outputs(out_dir: Path, fp32: Any, data: Dataset, study: CaseStudy) -> list[Path]:
    """The FP32 model (``fp32.keras``), the data it was trained on (``digits.npz``: the train/validation/test split
    the study used, as the main job's ``--data`` takes it) and the study's figure (``accuracy.png``: accuracy per
    model, hls4ml's beside Keras's). Returns the paths written (each atomically)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .io import write_bytes_atomic
    from .model.save import save_model
    from .train.plot import save_figure

    out_dir = Path(out_dir)
    written = [save_model(fp32, out_dir / "fp32.keras", {"created_by": "qconvert demo", "preset": "FP32 baseline"})]
    buffer = io.BytesIO()
    np.savez(buffer, X_train=data.x_train, y_train=data.y_train, X_val=data.x_val, y_val=data.y_val,
             X_test=data.x_test, y_test=data.y_test)
    written.append(write_bytes_atomic(out_dir / "digits.npz", buffer.getvalue()))
    names = [row["model"] for row in study.rows]
    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 2, 4))
    positions = np.arange(len(names))
    bars = ax.bar(positions - 0.2, [row["accuracy"] for row in study.rows], 0.4, label="Keras")
    ax.bar_label(bars, labels=[f"{row['accuracy']:.3f}" for row in study.rows], fontsize=8)
    emulated = [row.get("hls4ml") for row in study.rows]
    if any(v is not None for v in emulated):
        ax.bar(positions + 0.2, [v or 0.0 for v in emulated], 0.4, label="hls4ml emulation")
    ax.set_xticks(positions, names, rotation=20)
    ax.set_ylim(max(0.0, min(row["accuracy"] for row in study.rows) - 0.1), 1.0)
    ax.set_title(f"{study.dataset}: accuracy on the {study.split} split")
    ax.legend(loc="lower left")
    return [*written, save_figure(fig, out_dir / "accuracy.png")]
