"""The β controller of the search phase, and the fixed masks of the fine-tuning phase.

β weighs the EBOPs term against the task loss. After each search epoch the
controller reads the exact EBOPs of the model as it would be saved
(:meth:`~qconvert.train.learned.SearchModel.exact_ebops`) and sets, with
``e = ln(EBOPs / target)``, a PI controller on ``ln β`` (the form of HGQ2's
``BetaPID``, which works on ``log10``)::

    ln β = I + k_p * e,    I += k_i * e

so β follows the ratio at once (proportional part) and keeps creeping while the
count stays off target (integral part). It aims a little below the target; epochs
whose exact count is at most the target are candidates, and the one with the best
validation accuracy (task loss for a regression) is the state the search hands on
(none: the epoch of the lowest count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..model.cost import value_bits

__all__ = ["ControllerState", "cost_of", "greedy_prune", "make_beta_controller", "make_mask_callback", "quantized_arrays"]


@dataclass
class ControllerState:
    """What the controller saw: per epoch β (the value trained with), exact EBOPs, and the best candidate."""

    beta: list[float] = field(default_factory=list)
    ebops: list[float] = field(default_factory=list)
    score: list[float] = field(default_factory=list)  # validation accuracy (or -loss) per epoch
    best_epoch: int = 0  # from 1; 0: no epoch reached the target
    best_score: float = -math.inf
    best_weights: list[np.ndarray] | None = None
    metric: str = ""  # what best_score is: val_accuracy, or -val_loss
    lowest_epoch: int = 0  # the epoch of the lowest count (the fallback when none reached the target)
    lowest_weights: list[np.ndarray] | None = None


def _score(logs: dict[str, float]) -> tuple[str, float]:
    if "val_accuracy" in logs:
        return "val_accuracy", float(logs["val_accuracy"])
    return "-val_loss", -float(logs.get("val_loss", logs.get("loss", math.inf)))


def make_beta_controller(search: Any, target: float, beta0: float, k_p: float, k_i: float, state: ControllerState,
                         aim: float | None = None, freeze_at: int | None = None, start: float | None = None,
                         ramp: int = 0) -> Any:
    """The search's callback: sets β on ``search`` (a :class:`~qconvert.train.learned.SearchModel`) before training and
    after each epoch (module docstring), recording into ``state``. The controller steers to ``aim`` (default
    ``target``; a little below it leaves more epochs at the target), reached gradually: from ``start`` over the
    first ``ramp`` epochs along the cubic schedule of Zhu & Gupta's gradual pruning, in log EBOPs, so the network
    has time to adapt. Candidates are the epochs at ``<= target``.
    From epoch ``freeze_at`` (from 0) on the widths are frozen (:meth:`SearchModel.freeze_widths`): a width
    flipping between two roundings moves the count by a whole layer's share, so the last epochs steer by
    the zeros alone."""
    aim = target if aim is None else aim

    def aim_at(epoch: int) -> float:
        """The count to steer to after ``epoch`` (from 0): from ``start`` down to ``aim`` over ``ramp`` epochs along
        Zhu & Gupta's cubic (in log EBOPs), then ``aim``."""
        if not ramp or start is None or start <= aim:
            return aim
        left = max(0.0, 1.0 - (epoch + 1) / ramp)
        return math.exp(math.log(aim) + (math.log(start) - math.log(aim)) * left**3)

    import keras

    class _Controller(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.integral = math.log(beta0)
            self.beta = beta0

        def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
            search.set_beta(self.beta)

        def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            if freeze_at is not None and epoch == freeze_at:
                self.model  # noqa: B018 -- on JAX, reading the property syncs the training state into the variables
                search.freeze_widths()

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs if logs is not None else {}
            self.model  # noqa: B018 -- on JAX, reading the property syncs the training state into the variables
            ebops = float(sum(search.exact_ebops().values()))
            state.beta.append(self.beta)
            state.ebops.append(ebops)
            logs["ebops"], logs["beta"] = ebops, self.beta
            metric, score = _score(logs)
            state.score.append(score)
            if ebops <= target and score > state.best_score:
                state.best_score, state.best_epoch, state.metric = score, epoch + 1, metric
                state.best_weights = search.model.get_weights()
            if not state.ebops[:-1] or ebops < min(state.ebops[:-1]):
                state.lowest_epoch, state.lowest_weights = epoch + 1, search.model.get_weights()
            error = math.log(max(ebops, 1.0) / aim_at(epoch))
            self.integral += k_i * error
            self.beta = math.exp(min(self.integral + k_p * error, 50.0))
            search.set_beta(self.beta)

    return _Controller()



def greedy_prune(arrays: dict[tuple[str, str], np.ndarray], unit_cost: dict[tuple[str, str], float], excess: float) -> dict[tuple[str, str], np.ndarray]:
    """Masks that remove at least ``excess`` EBOPs: non-zero values in order of ``|v| / mean|v| / cost``, smallest first.

    ``arrays``: quantized kernels and biases by ``(layer, role)``; ``unit_cost``: the EBOPs one magnitude bit of
    one of their values costs (a value costs that times its bits, :func:`~qconvert.model.cost.value_bits`).
    Returns a boolean mask (True: kept) per array; values already zero stay masked.
    """
    masks = {key: a != 0 for key, a in arrays.items()}
    if excess <= 0:
        return masks
    keys, scores, costs, index = [], [], [], []
    for key, a in arrays.items():
        nz = np.flatnonzero(a)
        if not nz.size or unit_cost[key] <= 0:
            continue
        mags = np.abs(a.ravel()[nz])
        cost = unit_cost[key] * value_bits(mags, np.inf)
        scores.append(mags / mags.mean() / cost)
        costs.append(cost)
        keys += [key] * nz.size
        index.append(nz)
    if not scores:
        return masks
    order = np.argsort(np.concatenate(scores), kind="stable")
    saved = np.cumsum(np.concatenate(costs)[order])
    cut = int(np.searchsorted(saved, excess - 1e-9)) + 1
    flat_index = np.concatenate(index)
    for j in order[:cut]:
        key = keys[j]
        masks[key].reshape(-1)[flat_index[j]] = False
    return masks


def quantized_arrays(model: Any, keys: Any) -> dict[tuple[str, str], np.ndarray]:
    """The values of ``(layer, "kernel" | "bias")`` of a QKeras ``model`` after their quantizers (numpy)."""
    import keras

    out = {}
    for name, role in keys:
        layer = model.get_layer(name)
        q = getattr(layer, f"{role}_quantizer_internal")(getattr(layer, role))
        out[(name, role)] = np.asarray(keras.ops.convert_to_numpy(q))
    return out


def cost_of(arrays: dict[tuple[str, str], np.ndarray], unit_cost: dict[tuple[str, str], float]) -> float:
    """EBOPs of the multiply layers these arrays belong to: each value's magnitude bits times its unit cost."""
    return float(sum(value_bits(a, np.inf).sum() * unit_cost[key] for key, a in arrays.items()))


def make_mask_callback(model: Any, masks: dict[tuple[str, str], np.ndarray], *, unit_cost: Any = None,
                       target: float = math.inf, end_epoch: int = 0) -> Any:
    """A callback that keeps the values ``masks`` (by ``(layer, "kernel" | "bias")``, False: zero) at zero
    after every training batch, so no pruned value comes back while fine-tuning (a kept value may still move
    to one that needs more bits).

    When the count (each value's magnitude bits times ``unit_cost``) starts above ``target``, the masks also
    grow at the end of each epoch up to ``end_epoch`` (from 1), by :func:`greedy_prune` on the current values,
    so that the count falls from where it started to ``target`` along Zhu & Gupta's cubic schedule.
    """
    import keras

    keys = list(masks)
    start = cost_of(quantized_arrays(model, keys), unit_cost) if unit_cost is not None else 0.0

    class _Masks(keras.callbacks.Callback):
        def _apply(self) -> None:
            self.model  # noqa: B018 -- on JAX, reading the property syncs the training state into the variables
            for (name, role), mask in masks.items():
                if mask.all():
                    continue
                var = getattr(model.get_layer(name), role)
                var.assign(keras.ops.convert_to_numpy(var) * mask)

        def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
            self._apply()

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            if unit_cost is None or start <= target or epoch + 1 > end_epoch:
                return
            self.model  # noqa: B018 -- on JAX, reading the property syncs the training state into the variables
            goal = target + (start - target) * (1.0 - (epoch + 1) / end_epoch) ** 3
            arrays = quantized_arrays(model, keys)
            for key, mask in greedy_prune(arrays, unit_cost, cost_of(arrays, unit_cost) - goal).items():
                masks[key] &= mask
            self._apply()

    return _Masks()
