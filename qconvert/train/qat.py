"""Quantization-aware fine-tuning: loss from the model, Adam, early stopping, checkpoints, resume.

Each finished epoch writes ``CKPT/last.keras`` (model and optimizer state) and
``CKPT/state.json`` (epoch, history, best epoch and its weights in
``CKPT/best.weights.h5``), each through a temporary file and a rename, so an
interrupted run continues with ``resume=True`` from the last finished epoch.
Early stopping restores the best weights, as Keras's ``EarlyStopping`` does.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DataError
from .data import Dataset

__all__ = ["TrainOptions", "TrainResult", "Metrics", "fine_tune", "evaluate", "infer_loss", "loss_from_file"]


@dataclass(frozen=True)
class TrainOptions:
    epochs: int
    lr: float = 1e-4  # the seed's QAT learning rate
    batch_size: int = 1024
    patience: int | None = None  # early stopping on val_loss; None: off
    seed: int = 0
    loss: str | None = None  # None: from the model's compile config or its output activation
    lr_schedule: str | None = None  # None | "cosine"
    checkpoint_dir: Path | None = None
    resume: bool = False
    verbose: Any = "auto"


@dataclass(frozen=True)
class TrainResult:
    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int
    resumed_from: int
    loss: str
    stopped_early: bool


@dataclass(frozen=True)
class Metrics:
    loss: float
    accuracy: float | None
    per_class: list[float] = field(default_factory=list)
    auc: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _output_activation(model: Any) -> str | None:
    last = model.layers[-1]
    act = last.get_config().get("activation")
    return act if isinstance(act, str) else None


def loss_from_file(path: str | Path) -> str | None:
    """The loss a model file was compiled with (``.keras`` compile_config, ``.h5`` training_config)."""
    path = Path(path)
    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
            loss = (config.get("compile_config") or {}).get("loss")
        elif path.suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                raw = f.attrs.get("training_config")
            loss = json.loads(raw).get("loss") if raw else None
        else:
            return None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return loss if isinstance(loss, str) else None


def infer_loss(model: Any, data: Dataset, compiled_loss: str | None = None) -> str:
    """The loss to train with: the compiled one if known, else from the output activation and labels."""
    if compiled_loss:
        if data.label_kind == "integer" and compiled_loss == "categorical_crossentropy":
            return "sparse_categorical_crossentropy"
        return compiled_loss
    activation = _output_activation(model)
    units = int(model.outputs[0].shape[-1])
    if activation == "softmax" or (units > 1 and data.label_kind in ("onehot", "integer")):
        return "sparse_categorical_crossentropy" if data.label_kind == "integer" else "categorical_crossentropy"
    if activation == "sigmoid":
        return "binary_crossentropy"
    return "mean_squared_error"


def _is_classifier(loss: str) -> bool:
    return "crossentropy" in loss


def _compile(model: Any, options: TrainOptions, loss: str, steps_per_epoch: int) -> None:
    import keras

    lr: Any = options.lr
    if options.lr_schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(options.lr, decay_steps=max(1, options.epochs * steps_per_epoch))
    metrics = ["accuracy"] if _is_classifier(loss) else []
    from_logits = _output_activation(model) not in ("softmax", "sigmoid") and _is_classifier(loss)
    loss_obj = keras.losses.get({"class_name": loss, "config": {"from_logits": from_logits}}) if from_logits else loss
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss=loss_obj, metrics=metrics)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def _make_checkpoint_callback(directory: Path | None, patience: int | None, state: dict[str, Any],
                              monitor_from: int = 1) -> Any:
    import keras

    class _Checkpoint(keras.callbacks.Callback):
        """Best weights, early stopping and per-epoch checkpoints, all resumable."""

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs or {}
            for key, value in logs.items():
                state["history"].setdefault(key, []).append(float(value))
            monitor = logs.get("val_loss", logs.get("loss", math.inf))
            if epoch + 1 < monitor_from:  # e.g. pruning has not reached its target yet: not a candidate
                pass
            elif monitor < state["best"]:
                state["best"], state["best_epoch"], state["wait"] = float(monitor), epoch + 1, 0
                state["best_weights"] = self.model.get_weights()
            else:
                state["wait"] += 1
            state["epoch"] = epoch + 1
            if directory is not None:
                if state["best_epoch"] == epoch + 1:
                    _save_weights(self.model, directory / "best.weights.h5")
                tmp = directory / ".last.tmp.keras"
                self.model.save(tmp)
                os.replace(tmp, directory / "last.keras")
                _write_json(directory / "state.json", {k: v for k, v in state.items() if k != "best_weights"})
            if patience is not None and state["wait"] >= patience:
                state["stopped_early"] = True
                self.model.stop_training = True

    return _Checkpoint()


def _save_weights(model: Any, path: Path) -> None:
    tmp = path.with_name(".tmp." + path.name)
    model.save_weights(tmp)
    os.replace(tmp, path)


def fine_tune(model: Any, data: Dataset, options: TrainOptions, *, compiled_loss: str | None = None,
              callbacks: Sequence[Any] = (), monitor_from: int = 1) -> tuple[Any, TrainResult]:
    """Train ``model`` (in place) on ``data``; returns the model to keep (best weights) and the result.

    ``callbacks`` run before the checkpointing one (e.g. the pruning masks of
    :mod:`qconvert.train.prune`); epochs before ``monitor_from`` (from 1) are
    neither candidates for the best weights nor counted by early stopping.

    With ``options.resume`` and a checkpoint in ``options.checkpoint_dir``, the
    checkpointed model (with its optimizer state) continues from its last
    finished epoch; the returned model is then that one.
    """
    import keras

    if options.epochs < 1:
        raise DataError(f"--epochs must be at least 1, got {options.epochs}")
    keras.utils.set_random_seed(options.seed)
    loss = options.loss or infer_loss(model, data, compiled_loss)
    steps = math.ceil(len(data.x_train) / options.batch_size)
    state: dict[str, Any] = {"epoch": 0, "history": {}, "best": math.inf, "best_epoch": 0, "wait": 0, "stopped_early": False}
    directory = options.checkpoint_dir
    resumed_from = 0
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        state_file = directory / "state.json"
        if options.resume and state_file.exists() and (directory / "last.keras").exists():
            state.update(json.loads(state_file.read_text()))
            model = keras.saving.load_model(directory / "last.keras")  # compiled, optimizer state included
            resumed_from = state["epoch"]
            if (directory / "best.weights.h5").exists() and state["best_epoch"]:
                best = keras.models.clone_model(model)
                best.load_weights(directory / "best.weights.h5")
                state["best_weights"] = best.get_weights()
    if resumed_from == 0:
        _compile(model, options, loss, steps)
    callback = _make_checkpoint_callback(directory, options.patience, state, monitor_from)
    if resumed_from < options.epochs and not state["stopped_early"]:
        model.fit(
            data.x_train,
            data.y_train,
            validation_data=(data.x_val, data.y_val),
            epochs=options.epochs,
            initial_epoch=resumed_from,
            batch_size=options.batch_size,
            shuffle=True,
            callbacks=[*callbacks, callback],
            verbose=options.verbose,
        )
    if state.get("best_weights") is not None:
        model.set_weights(state["best_weights"])
    result = TrainResult(
        history=state["history"],
        epochs_run=state["epoch"],
        best_epoch=state["best_epoch"],
        resumed_from=resumed_from,
        loss=loss,
        stopped_early=bool(state["stopped_early"]),
    )
    return model, result


def evaluate(model: Any, data: Dataset, x: np.ndarray, y: np.ndarray, loss: str) -> Metrics:
    """Loss, accuracy, per-class accuracy and macro ROC AUC (one-vs-rest) of ``model`` on ``(x, y)``."""
    import keras

    pred = np.asarray(model.predict(x, batch_size=4096, verbose=0))
    loss_fn = keras.losses.get(loss)
    loss_value = float(np.mean(np.asarray(loss_fn(y, pred))))
    if not _is_classifier(loss):
        return Metrics(loss_value, None)
    truth = data.class_indices(y)
    if pred.shape[-1] == 1:
        guess = (pred.ravel() > 0.5).astype(int)
        scores = pred.ravel()
    else:
        guess = pred.argmax(axis=1)
        scores = pred
    per_class = [float(np.mean(guess[truth == c] == c)) if np.any(truth == c) else float("nan") for c in range(max(2, pred.shape[-1]))]
    auc = None
    try:
        from sklearn.metrics import roc_auc_score

        if pred.shape[-1] == 1:
            auc = float(roc_auc_score(truth, scores))
        else:
            auc = float(roc_auc_score(truth, scores, multi_class="ovr", average="macro", labels=list(range(pred.shape[-1]))))
    except ValueError:  # a class absent from the held-out set
        auc = None
    return Metrics(loss_value, float(np.mean(guess == truth)), per_class, auc)
