"""Knowledge distillation for QAT: the quantized student learns the FP32 teacher's soft outputs too.

The targets the student trains on are the labels and the teacher's outputs side
by side, ``(rows, 2 · classes)``; :class:`DistillationLoss` splits them again.
Packing keeps ``model.fit`` (and so checkpoints, resume, early stopping and every
Keras backend) unchanged. Loss, as in Hinton et al., "Distilling the Knowledge
in a Neural Network" (2015), §2::

    (1 - alpha) · CE(labels, p_s) + alpha · T² · KL(softmax(z_t / T) ‖ softmax(z_s / T))

with logits ``z = log p`` when the model ends in a softmax (softmax is shift
invariant, so ``log p`` are its logits up to a constant), else its outputs.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from ..errors import DataError

__all__ = ["DistillationLoss", "distill_accuracy", "pack_targets"]

_EPS = 1e-7


def _logits(p: Any, from_logits: bool) -> Any:
    return p if from_logits else ops.log(ops.clip(p, _EPS, 1.0))


@keras.saving.register_keras_serializable(package="qconvert")
class DistillationLoss(keras.losses.Loss):
    """``y_true`` = labels (one-hot) ‖ teacher outputs, each ``classes`` wide; ``y_pred`` = student outputs."""

    def __init__(self, classes: int, temperature: float = 2.0, alpha: float = 0.5, from_logits: bool = False,
                 name: str = "distillation", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.classes, self.temperature, self.alpha, self.from_logits = classes, temperature, alpha, from_logits

    def call(self, y_true: Any, y_pred: Any) -> Any:
        labels, teacher = y_true[:, : self.classes], y_true[:, self.classes :]
        hard = keras.losses.categorical_crossentropy(labels, y_pred, from_logits=self.from_logits)
        t = self.temperature
        soft_t = ops.softmax(_logits(teacher, self.from_logits) / t, axis=-1)
        log_soft_s = ops.log_softmax(_logits(y_pred, self.from_logits) / t, axis=-1)
        kl = ops.sum(soft_t * (ops.log(ops.clip(soft_t, _EPS, 1.0)) - log_soft_s), axis=-1)
        return (1.0 - self.alpha) * hard + self.alpha * t * t * kl

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "classes": self.classes, "temperature": self.temperature,
                "alpha": self.alpha, "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="qconvert")
def distill_accuracy(y_true: Any, y_pred: Any) -> Any:
    """Accuracy against the labels half of packed targets."""
    classes = ops.shape(y_pred)[-1]
    return ops.cast(ops.equal(ops.argmax(y_true[:, :classes], axis=-1), ops.argmax(y_pred, axis=-1)), "float32")


def pack_targets(labels: np.ndarray, label_kind: str, teacher_outputs: np.ndarray) -> np.ndarray:
    """``labels`` (one-hot or class indices) and the teacher's outputs side by side, ``(rows, 2 · classes)``."""
    classes = teacher_outputs.shape[-1]
    if label_kind == "integer":
        labels = np.eye(classes, dtype="float32")[labels.astype(int).ravel()]
    elif label_kind != "onehot":
        raise DataError("--distill needs class labels (one-hot or class indices), not regression targets")
    if classes < 2 or labels.shape[-1] != classes:
        raise DataError(f"--distill needs a classifier with one output per class; the model outputs {classes}")
    return np.concatenate([labels.astype("float32"), teacher_outputs.astype("float32")], axis=-1)
