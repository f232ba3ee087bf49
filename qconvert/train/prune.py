"""Magnitude pruning during QAT, on Keras 3 APIs only (a callback that owns per-kernel masks).

The rule files' ``prune:`` key (:class:`qconvert.rules.PruneSpec`) gives, per
layer, a target sparsity ``s_f`` and the epochs over which it is reached. The
schedule is the polynomial one of Zhu & Gupta, "To prune, or not to prune"
(2017), eq. (1), with initial sparsity 0 and the masks updated once per epoch::

    s(e) = s_f * (1 - (1 - (e - start + 1) / (end - start + 1)) ** 3)   start <= e <= end

at the end of epoch ``e`` (counted from 1, as Keras prints it); ``s(end) = s_f``
and the masks stay fixed for the epochs after ``end`` (fine-tuning at the target
sparsity). Granularity is per weight: at each update the ``round(s * n)``
weights of smallest magnitude in each kernel (``kernel``, ``depthwise_kernel``,
``pointwise_kernel``; never the bias) are masked, and a weight once pruned
stays pruned. The masks are re-applied after every training batch, so pruned
weights are exactly zero in every checkpoint and in the saved model; a resumed
run rebuilds the masks from those zeros. Layers without a ``prune:`` setting are
never touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError
from ..rules import PruneSpec

__all__ = [
    "PruneTarget",
    "find_layer",
    "kernel_sparsity",
    "kernel_variables",
    "magnitude_mask",
    "make_pruning_callback",
    "prune_once",
    "prune_targets",
    "resolve_epochs",
    "scheduled_sparsity",
    "sparsity_report",
]

_KERNELS = ("kernel", "depthwise_kernel", "pointwise_kernel")


@dataclass(frozen=True)
class PruneTarget:
    """One layer to prune: its path in the model (nested models first) and its schedule in epochs."""

    path: tuple[str, ...]
    sparsity: float
    start_epoch: int
    end_epoch: int

    @property
    def name(self) -> str:
        return "/".join(self.path)


def resolve_epochs(spec: PruneSpec, epochs: int) -> tuple[int, int]:
    """``(start, end)`` of ``spec`` for a run of ``epochs`` epochs. Raises :class:`DataError` when they do not fit."""
    end = spec.end_epoch if spec.end_epoch is not None else max(spec.start_epoch, epochs // 2)
    if end > epochs:
        raise DataError(f"prune: end_epoch {end} is past --epochs {epochs}; give more epochs or an earlier end_epoch")
    return spec.start_epoch, end


def prune_targets(plan: Any, epochs: int) -> list[PruneTarget]:
    """The layers of ``plan`` (a :class:`~qconvert.model.plan.Plan`) whose rule sets ``prune:`` with sparsity > 0."""
    out = []
    for item in plan.layers:
        if item.prune is not None and item.action == "quantize":
            start, end = resolve_epochs(item.prune, epochs)
            out.append(PruneTarget(item.path, item.prune.sparsity, start, end))
    return out


def scheduled_sparsity(target: PruneTarget, epoch: int) -> float:
    """Sparsity after epoch ``epoch`` (from 1) along Zhu & Gupta's cubic schedule; 0 before ``start_epoch``."""
    if epoch < target.start_epoch:
        return 0.0
    span = target.end_epoch - target.start_epoch + 1
    progress = min(1.0, (epoch - target.start_epoch + 1) / span)
    return target.sparsity * (1.0 - (1.0 - progress) ** 3)


def find_layer(model: Any, path: tuple[str, ...]) -> Any:
    """The layer at ``path`` (names from the outer model in); ValueError where there is none."""
    for name in path:
        model = model.get_layer(name)
    return model


def kernel_variables(model: Any, path: tuple[str, ...]) -> list[Any]:
    """The prunable kernel variables of the layer at ``path`` (kernel, depthwise_kernel, pointwise_kernel)."""
    layer = find_layer(model, path)
    return [v for attr in _KERNELS if (v := getattr(layer, attr, None)) is not None]


def magnitude_mask(weights: np.ndarray, sparsity: float, previous: np.ndarray | None) -> np.ndarray:
    """Keep all but the ``round(sparsity * n)`` smallest |w| (ties broken by position); pruned stays pruned."""
    n_prune = round(sparsity * weights.size)
    flat = np.abs(weights).ravel()
    if previous is not None:
        flat = np.where(previous.ravel(), flat, -1.0)  # already pruned: first in line
    mask = np.ones(weights.size, dtype=bool)
    mask[np.argsort(flat, kind="stable")[:n_prune]] = False
    if previous is not None:
        mask &= previous.ravel()
    return mask.reshape(weights.shape)


def make_pruning_callback(targets: Iterable[PruneTarget]) -> Any:
    """A ``keras.callbacks.Callback`` that prunes ``targets`` of the model being trained.

    The model is looked up when training starts (a resumed run trains a model
    loaded from its checkpoint). Masks start from the zeros the kernels already
    have; list this callback before any that saves the model at epoch end.
    """
    import keras

    targets = list(targets)

    class _Pruning(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.masks: dict[tuple[str, int], np.ndarray] = {}
            self.variables: dict[tuple[str, int], Any] = {}

        def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
            for t in targets:
                for i, var in enumerate(kernel_variables(self.model, t.path)):
                    self.variables[(t.name, i)] = var
                    self.masks[(t.name, i)] = np.asarray(keras.ops.convert_to_numpy(var)) != 0

        def _apply(self) -> None:
            pending = [(var, self.masks[key]) for key, var in self.variables.items() if not self.masks[key].all()]
            if pending:
                self.model  # noqa: B018 -- on JAX, reading the property syncs the training state into the variables
                for var, mask in pending:
                    var.assign(keras.ops.convert_to_numpy(var) * mask)

        def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
            self._apply()

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            for t in targets:
                level = scheduled_sparsity(t, epoch + 1)
                if level <= 0:
                    continue
                for i, var in enumerate(kernel_variables(self.model, t.path)):
                    key = (t.name, i)
                    self.masks[key] = magnitude_mask(np.asarray(keras.ops.convert_to_numpy(var)), level, self.masks[key])
            self._apply()
            if logs is not None:  # into the history (and the training figure), checkpointed with it
                for t in targets:
                    masks = [m for (name, _), m in self.masks.items() if name == t.name]
                    total = sum(m.size for m in masks)
                    logs[f"sparsity_{t.name}"] = float(sum(m.size - int(m.sum()) for m in masks) / total) if total else 0.0

    return _Pruning()


def kernel_sparsity(model: Any, path: tuple[str, ...]) -> float:
    """Fraction of exact zeros over the prunable kernels of the layer at ``path`` (0 … 1)."""
    import keras

    arrays = [np.asarray(keras.ops.convert_to_numpy(v)) for v in kernel_variables(model, path)]
    total = sum(a.size for a in arrays)
    return float(sum(int(np.sum(a == 0)) for a in arrays) / total) if total else 0.0


def sparsity_report(model: Any, targets: Iterable[PruneTarget]) -> dict[str, dict[str, Any]]:
    """Per pruned layer: target and measured sparsity and the schedule (the JSON report's ``pruning.layers``)."""
    return {t.name: {"target": t.sparsity, "sparsity": kernel_sparsity(model, t.path),
                     "start_epoch": t.start_epoch, "end_epoch": t.end_epoch} for t in targets}


def prune_once(model: Any, targets: Iterable[tuple[tuple[str, ...], float]]) -> None:
    """Set the smallest-magnitude weights of each ``(path, sparsity)`` kernel to zero, in place (no training).

    What ``qconvert rules show`` costs as the pruned estimate before any QAT.
    """
    import keras

    for path, sparsity in targets:
        for var in kernel_variables(model, path):
            weights = np.asarray(keras.ops.convert_to_numpy(var))
            var.assign(weights * magnitude_mask(weights, sparsity, None))
