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
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, Interrupted
from ..io import atomic_path, write_text_atomic
from .compiled import compile_for_training, is_classifier, output_activation
from .data import Dataset

__all__ = [
    "Distill",
    "Metrics",
    "TrainOptions",
    "TrainResult",
    "assess_convergence",
    "evaluate",
    "fine_tune",
    "fit_verbosity",
    "infer_loss",
    "loss_from_file",
    "resolve_batch_size",
    "resolve_lr",
]

#: The seed's batch size (830,000 jets): the most an automatic batch size chooses.
MAX_AUTO_BATCH = 1024
#: Automatic batch size: the largest power of two that still gives this many optimizer steps per epoch.
AUTO_STEPS_PER_EPOCH = 32
MIN_AUTO_BATCH = 16
#: Fewer optimizer steps than this over a whole run cannot fine-tune a model: the report says so.
MIN_TOTAL_STEPS = 300


def resolve_batch_size(batch_size: int | None, n_train: int, *, steps: int = AUTO_STEPS_PER_EPOCH,
                       largest: int = MAX_AUTO_BATCH) -> int:
    """``batch_size`` when given; else the largest power of two ``b <= n_train / steps`` within [16, ``largest``].

    With the defaults an epoch has at least :data:`AUTO_STEPS_PER_EPOCH` optimizer steps on a
    small set (1,077 digits training rows → 32), and large sets keep the seed's 1024
    (the jets' ~500,000 training rows → 1024), so the seed's case is unchanged.
    """
    if batch_size is not None:
        return batch_size
    target = max(1, n_train // steps)
    return int(min(largest, max(MIN_AUTO_BATCH, 2 ** math.floor(math.log2(target)))))


#: The seed's QAT learning rate (Adam), at the seed's batch size 1024.
SEED_LR = 1e-4


def fit_verbosity(verbose: Any) -> Any:
    """Keras ``fit``'s ``verbose``: ``"auto"`` is a progress bar (1) on a terminal and one line per epoch (2)
    otherwise, so that logs (CI, Slurm, ``| tee``) get no carriage returns; anything else as given."""
    if verbose != "auto":
        return verbose
    import sys

    return 1 if sys.stdout.isatty() else 2


def resolve_lr(lr: float | None, batch_size: int) -> float:
    """``lr`` when given; else the seed's 1e-4 scaled by the square-root rule for Adam,
    ``1e-4 · sqrt(1024 / batch_size)`` (Malladi et al., "On the SDEs and Scaling Rules for Adaptive Gradient
    Algorithms", NeurIPS 2022). The seed's batch 1024 keeps 1e-4; digits' automatic batch 32 gets 5.7e-4
    (measured: benchmarks/bench_calibration.py)."""
    return lr if lr is not None else SEED_LR * math.sqrt(MAX_AUTO_BATCH / batch_size)


@dataclass(frozen=True)
class Distill:
    """Knowledge distillation from the FP32 model (Hinton et al., "Distilling the Knowledge in a Neural
    Network", 2015): loss = (1 - alpha) · CE(labels, student) + alpha · T² · KL(teacher_T ‖ student_T), where
    ``p_T = softmax(log p / T)`` softens a probability vector ``p`` by the temperature ``T``."""

    temperature: float = 2.0
    alpha: float = 0.5


@dataclass(frozen=True)
class TrainOptions:
    """QAT settings (``--epochs``, ``--lr``, ``--batch-size``, ``--patience``, ``--seed``, ``--loss``,
    ``--lr-schedule``, ``--resume``, ``--distill``). None picks the main job's default: lr 1e-4·sqrt(1024/batch),
    the batch that gives 32 steps per epoch within 16..1024, the loss of the model's compile config or output."""

    epochs: int
    lr: float | None = None  # None: the seed's 1e-4, scaled to the batch size (resolve_lr)
    batch_size: int | None = None  # None: from the number of training rows (resolve_batch_size)
    patience: int | None = None  # early stopping on val_loss; None: off
    seed: int = 0
    loss: str | None = None  # None: from the model's compile config or its output activation
    lr_schedule: str | None = None  # None | "cosine"
    checkpoint_dir: Path | None = None
    resume: bool = False
    verbose: Any = "auto"
    distill: Distill | None = None  # train against the FP32 model's soft outputs as well as the labels


@dataclass(frozen=True)
class TrainResult:
    """What QAT did: the per-epoch history, epochs run, the best epoch (whose weights are kept), the resume point,
    the loss, batch size and lr used, and a convergence verdict (:func:`assess_convergence`)."""

    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int
    resumed_from: int
    loss: str
    stopped_early: bool
    batch_size: int = 0
    lr: float = 0.0
    steps_per_epoch: int = 0
    convergence: dict[str, Any] = field(default_factory=dict)
    distill: dict[str, float] | None = None
    resume_note: str | None = None  # with --resume: where it continued from, or that there was nothing to resume

    def to_dict(self) -> dict[str, Any]:
        return {"epochs_run": self.epochs_run, "best_epoch": self.best_epoch, "resumed_from": self.resumed_from,
                "resume_note": self.resume_note,
                "stopped_early": self.stopped_early, "batch_size": self.batch_size, "lr": self.lr,
                "steps_per_epoch": self.steps_per_epoch, "optimizer_steps": self.steps_per_epoch * self.epochs_run,
                "convergence": self.convergence, "distill": self.distill, "history": self.history}


def assess_convergence(history: dict[str, list[float]], steps_per_epoch: int, stopped_early: bool) -> dict[str, Any]:
    """Does the run look converged? ``{"converged": bool | None, "reason": str, "advice": str}``.

    Not converged when the whole run took fewer than :data:`MIN_TOTAL_STEPS`
    optimizer steps, or when the best ``val_loss`` of the last ``k`` epochs
    (``k = max(3, epochs // 5)``) is still more than 1 % below the best before
    them. Early stopping means it stopped improving: converged.
    """
    val = history.get("val_loss") or history.get("loss") or []
    steps = steps_per_epoch * len(val)
    more = "train longer (--epochs), or take more optimizer steps per epoch (a smaller --batch-size) or larger ones (--lr)"
    if steps < MIN_TOTAL_STEPS:
        return {"converged": False, "reason": f"only {steps} optimizer steps ({steps_per_epoch} per epoch)", "advice": more}
    if stopped_early:
        return {"converged": True, "reason": "early stopping: val_loss stopped improving", "advice": ""}
    k = max(3, len(val) // 5)
    if len(val) < k + 1:
        return {"converged": None, "reason": f"too few epochs ({len(val)}) to tell", "advice": more}
    before, recent = min(val[:-k]), min(val[-k:])
    if recent < before - 0.01 * abs(before):
        return {"converged": False, "reason": f"val_loss still falling over the last {k} epochs ({before:.4g} → {recent:.4g})",
                "advice": more}
    return {"converged": True, "reason": f"val_loss no longer falling over the last {k} epochs (best before "
                                         f"{before:.4g}, since {recent:.4g})", "advice": ""}


@dataclass(frozen=True)
class Metrics:
    """A model's figures on one split: loss, accuracy (None for a regression), accuracy per class, ROC AUC."""

    loss: float
    accuracy: float | None
    per_class: list[float] = field(default_factory=list)
    auc: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    activation = output_activation(model)
    units = int(model.outputs[0].shape[-1])
    if activation == "softmax" or (units > 1 and data.label_kind in ("onehot", "integer")):
        return "sparse_categorical_crossentropy" if data.label_kind == "integer" else "categorical_crossentropy"
    if activation == "sigmoid":
        return "binary_crossentropy"
    return "mean_squared_error"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data))


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
                with atomic_path(directory / "last.keras", suffix=".keras") as tmp:
                    self.model.save(tmp)
                _write_json(directory / "state.json", {k: v for k, v in state.items() if k != "best_weights"})
            if patience is not None and state["wait"] >= patience:
                state["stopped_early"] = True
                self.model.stop_training = True

    return _Checkpoint()


def _save_weights(model: Any, path: Path) -> None:
    with atomic_path(path, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)


def _check_resume(directory: Path, saved: dict[str, Any], now: dict[str, Any]) -> None:
    """A resumed run continues the checkpoint's optimization: the settings that shape it must be the same."""
    for key, flag in (("distill", "--distill"), ("lr", "--lr"), ("lr_schedule", "--lr-schedule"), ("batch_size", "--batch-size")):
        if key in saved and saved[key] != now[key]:
            raise DataError(f"{directory}: the interrupted run used {flag} {_setting(saved[key])}, this one "
                            f"{_setting(now[key])}; resume with the same settings, or delete {directory} to start over")


def _setting(value: Any) -> str:
    if isinstance(value, dict):
        return "with T=" + ", alpha=".join(f"{v:g}" for v in value.values())
    return "off" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def fine_tune(model: Any, data: Dataset, options: TrainOptions, *, compiled_loss: str | None = None,
              teacher: Any = None, callbacks: Sequence[Any] = (), monitor_from: int = 1) -> tuple[Any, TrainResult]:
    """Train ``model`` (in place) on ``data``; returns the model to keep (best weights) and the result.

    ``callbacks`` run before the checkpointing one (e.g. the pruning masks of
    :mod:`qconvert.train.prune`); epochs before ``monitor_from`` (from 1) are
    neither candidates for the best weights nor counted by early stopping.

    With ``options.resume`` and a checkpoint in ``options.checkpoint_dir``, the
    checkpointed model (with its optimizer state) continues from its last
    finished epoch; the returned model is then that one. With
    ``options.distill``, ``teacher`` (the FP32 model) gives the soft targets.
    """
    import keras

    if options.epochs < 1:
        raise DataError(f"--epochs must be at least 1, got {options.epochs}")
    keras.utils.set_random_seed(options.seed)
    loss = options.loss or infer_loss(model, data, compiled_loss)
    batch_size = resolve_batch_size(options.batch_size, len(data.x_train))
    options = replace(options, batch_size=batch_size, lr=resolve_lr(options.lr, batch_size))
    steps = math.ceil(len(data.x_train) / batch_size)
    y_train, y_val = data.y_train, data.y_val
    if options.distill is not None:
        from .distill import pack_targets

        if teacher is None or not is_classifier(loss):
            raise DataError("--distill needs a classifier and its FP32 model as the teacher")
        y_train = pack_targets(y_train, data.label_kind, np.asarray(teacher.predict(data.x_train, batch_size=4096, verbose=0)))
        y_val = pack_targets(y_val, data.label_kind, np.asarray(teacher.predict(data.x_val, batch_size=4096, verbose=0)))
    settings = {"batch_size": batch_size, "lr": options.lr, "lr_schedule": options.lr_schedule,
                "distill": asdict(options.distill) if options.distill is not None else None}
    state: dict[str, Any] = {"epoch": 0, "history": {}, "best": math.inf, "best_epoch": 0, "wait": 0, "stopped_early": False,
                             "settings": settings}
    directory = options.checkpoint_dir
    resumed_from = 0
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        state_file = directory / "state.json"
        if options.resume and state_file.exists() and (directory / "last.keras").exists():
            state.update(json.loads(state_file.read_text()))
            _check_resume(directory, state.get("settings") or {}, settings)
            from . import distill as _registers_the_distillation_loss  # noqa: F401 - the checkpoint may use it

            model = keras.saving.load_model(directory / "last.keras")  # compiled, optimizer state included
            resumed_from = state["epoch"]
            if (directory / "best.weights.h5").exists() and state["best_epoch"]:
                best = keras.models.clone_model(model)
                best.load_weights(directory / "best.weights.h5")
                state["best_weights"] = best.get_weights()
    resume_note = None if not options.resume else (f"resumed from epoch {resumed_from} of the checkpoint in {directory}"
                                                    if resumed_from else f"--resume: no checkpoint in {directory}; "
                                                    "trained from the start")
    if resumed_from == 0:
        compile_for_training(model, options, loss, steps, (data.x_train, y_train))
    callback = _make_checkpoint_callback(directory, options.patience, state, monitor_from)
    if resumed_from < options.epochs and not state["stopped_early"]:
        try:
            model.fit(data.x_train, y_train, validation_data=(data.x_val, y_val), epochs=options.epochs,
                      initial_epoch=resumed_from, batch_size=batch_size, shuffle=True, callbacks=[*callbacks, callback],
                      verbose=fit_verbosity(options.verbose))
        except KeyboardInterrupt:
            where = (f"the checkpoint in {directory} holds epoch {state['epoch']}: run the same command with --resume "
                     f"to continue" if directory is not None and state["epoch"] else "no finished epoch to resume from")
            raise Interrupted(f"QAT interrupted during epoch {state['epoch'] + 1} of {options.epochs}; {where}") from None
    if state.get("best_weights") is not None:
        model.set_weights(state["best_weights"])
    result = TrainResult(
        history=state["history"],
        epochs_run=state["epoch"],
        best_epoch=state["best_epoch"],
        resumed_from=resumed_from,
        loss=loss,
        stopped_early=bool(state["stopped_early"]),
        batch_size=batch_size,
        lr=float(options.lr),
        steps_per_epoch=steps,
        convergence=assess_convergence(state["history"], steps, bool(state["stopped_early"])),
        distill=asdict(options.distill) if options.distill is not None else None,
        resume_note=resume_note,
    )
    return model, result


def evaluate(model: Any, data: Dataset, x: np.ndarray, y: np.ndarray, loss: str) -> Metrics:
    """Loss, accuracy, per-class accuracy and macro ROC AUC (one-vs-rest) of ``model`` on ``(x, y)``."""
    import keras

    pred = np.asarray(model.predict(x, batch_size=4096, verbose=0))
    loss_fn = keras.losses.get(loss)
    y_loss = y.reshape(pred.shape) if y.ndim == 1 and pred.ndim == 2 and pred.shape[-1] == 1 else y  # 0/1 labels, one sigmoid
    loss_value = float(np.mean(np.asarray(loss_fn(y_loss, pred))))
    if not is_classifier(loss):
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
