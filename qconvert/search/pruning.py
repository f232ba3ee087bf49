"""Stopping trials early (``--pruner``): which trials a search ends before their last epoch, and why.

Every trial reports its validation accuracy after each epoch to a Keras callback
made here; the callback may end the trial (Optuna state ``PRUNED``: it counts
towards ``--trials`` and is never on the front). The kinds (:data:`PRUNERS`):

* ``dominance`` (the default, :class:`DominanceStop`): after the warm-up, a trial
  stops when a finished trial that costs no more was more accurate at the same
  epoch by more than :func:`stop_margin`. The median-stopping rule of Golovin et
  al., "Google Vizier" (KDD 2017), §3.2.2, made Pareto-aware.
* ``halving``: Optuna's ``SuccessiveHalvingPruner`` (asynchronous successive
  halving, Li et al., "A System for Massively Parallel Hyperparameter Tuning",
  MLSys 2020), the epoch as the resource: at the rungs ``r, 3r, 9r, ...`` epochs
  (``r`` the warm-up) a trial goes on only when its validation accuracy is in the
  top third of the trials that reached that rung. A trial that prunes weights
  reports from the first epoch validated with its final masks (the epoch the
  main job's choice of the best weights starts at), so no rung compares a model
  still losing weights; such a trial meets its first rungs at once then.
* ``hyperband``: Optuna's ``HyperbandPruner`` (Li et al., JMLR 18, 2018): several
  such halvings (brackets) with first rungs from ``r`` to ``--epochs``, a trial
  assigned to one by its number, so some trials are never stopped early.
* ``none``: every trial runs to its last epoch.

**Pareto-aware halving.** Optuna's pruners compare one number, and Optuna refuses
intermediate values in a study with two objectives. A cheap trial must not be
stopped for losing to an expensive one, so each trial is compared only with
trials of about its cost: before training, its EBOPs are estimated (the converted
model at its target sparsities, capped at its ``target_ebops``) and it joins the
cost bucket ``[2^k, 2^(k+1))`` EBOPs that holds the estimate. Each bucket is a
single-objective Optuna study (maximize validation accuracy) in the same storage
as the search, holding one shadow trial per search trial, to which the epochs are
reported (``Trial.report``) and which the pruner judges (``Trial.should_prune``);
workers on other processes and machines share the buckets as they share the
study. A trial is never stopped at its last epoch: having run every epoch, it is
complete.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["BUCKET_BASE", "PRUNERS", "REDUCTION_FACTOR", "DominanceStop", "RungStop", "RungStudies",
           "TrialStop", "cost_bucket",
           "estimate_ebops", "stop_margin"]

#: The ``--pruner`` kinds.
PRUNERS = ("dominance", "halving", "hyperband", "none")
#: Trials compared by ``halving``/``hyperband`` cost within a factor of this of each other (bucket width).
BUCKET_BASE = 2.0
#: Successive halving keeps the top 1/η of a rung and multiplies the epochs by η from rung to rung (Optuna's default).
REDUCTION_FACTOR = 3


def stop_margin(accuracy: float, n: int) -> float:
    """Accuracy gap that counts as real: two standard errors of a binomial proportion on ``n`` samples,
    at least one percentage point."""
    return max(0.01, 2.0 * math.sqrt(max(accuracy * (1.0 - accuracy), 1e-6) / max(n, 1)))


def estimate_ebops(model: Any, sparsity: Mapping[str, float], target_ebops: float | None = None) -> float:
    """EBOPs of the converted, untrained ``model`` with each layer's weights pruned to its target sparsity
    (layer name → fraction), capped at ``target_ebops`` (cost-aware training ends at or below it).

    Magnitude pruning keeps the largest weights, which need more bits than the average one: a pruned layer
    costs its share of the kernel's value bits that the magnitude mask keeps (``model`` is not changed)."""
    from ..model.cost import model_cost

    estimate = sum(c.ebops * _kept_bits(model, name, sparsity.get(name, 0.0)) for name, c in model_cost(model).items())
    return min(estimate, float(target_ebops)) if target_ebops is not None else estimate


def _kept_bits(model: Any, name: str, sparsity: float) -> float:
    """The fraction of the value bits of layer ``name``'s quantized kernel left after pruning its smallest
    weights to ``sparsity`` (``1 - sparsity`` where the layer or its quantizer is not found)."""
    if not sparsity:
        return 1.0
    import keras
    import numpy as np

    from ..model.cost import value_bits
    from ..train.prune import find_layer, magnitude_mask

    try:
        layer = find_layer(model, tuple(name.split("/")))
    except ValueError:
        return 1.0 - sparsity
    quantizer, kernel = getattr(layer, "kernel_quantizer_internal", None), getattr(layer, "kernel", None)
    if quantizer is None or kernel is None:
        return 1.0 - sparsity
    weights = np.asarray(keras.ops.convert_to_numpy(kernel))
    bits = value_bits(np.asarray(keras.ops.convert_to_numpy(quantizer(weights))), np.inf)
    total = float(bits.sum())
    return float((bits * magnitude_mask(weights, sparsity, None)).sum()) / total if total else 1.0 - sparsity


def cost_bucket(ebops: float) -> int:
    """The bucket ``k`` of a cost: ``BUCKET_BASE**k <= ebops < BUCKET_BASE**(k+1)`` (costs below 1 in bucket 0)."""
    if not math.isfinite(ebops) or ebops < 1.0:
        return 0
    return math.floor(math.log(ebops, BUCKET_BASE) + 1e-12)


class TrialStop:
    """What every early-stop callback of a trial says: the cost estimate before training (EBOPs, set when
    training begins), the epoch it stopped the trial at (None: it did not) and why. :meth:`close` is called
    once when the trial has ended."""

    estimate: float = math.nan
    stopped_at: int | None = None
    reason: str = ""

    def close(self, value: float | None) -> None:
        """The trial ended with validation accuracy ``value`` (None: it failed)."""


class DominanceStop(TrialStop):
    """Namespace for the ``dominance`` Keras callback (built lazily: this module is imported without Keras)."""

    @staticmethod
    def create(finished: Sequence[Mapping[str, Any]], sparsity: Mapping[str, float], warmup: int, n_val: int,
               on_epoch: Callable[[int, float], None] | None = None,
               target_ebops: float | None = None) -> DominanceStop:
        """``finished``: the study's complete trials (``number``, ``cost_estimate``, ``curve``); empty: it never
        stops a trial (``--pruner none``), only estimates its cost. ``on_epoch(epoch, accuracy)`` after each epoch."""
        import keras

        class _DominanceStop(keras.callbacks.Callback, DominanceStop):
            def __init__(self) -> None:
                super().__init__()
                self.estimate, self.stopped_at, self.reason = math.nan, None, ""

            def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
                self.estimate = estimate_ebops(self.model, sparsity, target_ebops)

            def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
                accuracy = float((logs or {}).get("val_accuracy", math.nan))
                if on_epoch is not None:
                    on_epoch(epoch + 1, accuracy)
                last = epoch + 1 >= int(self.params.get("epochs", 0) or 0)  # a trial that ran to the end is complete
                if epoch + 1 < warmup or last or self.stopped_at is not None or math.isnan(accuracy):
                    return
                margin = stop_margin(accuracy, n_val)
                for other in finished:
                    curve = other.get("curve") or ()
                    if (other.get("cost_estimate", math.inf) <= self.estimate and len(curve) > epoch
                            and curve[epoch] >= accuracy + margin):
                        self.stopped_at = epoch + 1
                        self.reason = (f"epoch {epoch + 1}: validation accuracy {accuracy:.4f}, trial "
                                       f"{other.get('number')} costing no more had {curve[epoch]:.4f}")
                        self.model.stop_training = True
                        return

        return _DominanceStop()


class RungStop(TrialStop):
    """Namespace for the ``halving``/``hyperband`` Keras callback: Optuna's pruner within the trial's cost bucket."""

    @staticmethod
    def create(buckets: RungStudies, trial_number: int, sparsity: Mapping[str, float],
               on_epoch: Callable[[int, float], None] | None = None,
               target_ebops: float | None = None, judged_from: int = 1) -> RungStop:
        """A callback reporting each epoch's validation accuracy from epoch ``judged_from`` (from 1) on to a shadow
        trial of ``trial_number`` in the bucket study of its cost estimate (``buckets``); it stops training when
        Optuna's pruner says so."""
        import keras

        class _RungStop(keras.callbacks.Callback, RungStop):
            def __init__(self) -> None:
                super().__init__()
                self.estimate, self.stopped_at, self.reason = math.nan, None, ""
                self.shadow: Any = None
                self.study: Any = None

            def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
                self.estimate = estimate_ebops(self.model, sparsity, target_ebops)
                self.study = buckets.study(cost_bucket(self.estimate))
                self.shadow = self.study.ask()
                self.shadow.set_user_attr("search_trial", trial_number)

            def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
                accuracy = float((logs or {}).get("val_accuracy", math.nan))
                if on_epoch is not None:
                    on_epoch(epoch + 1, accuracy)
                if math.isnan(accuracy) or self.stopped_at is not None or epoch + 1 < judged_from:
                    return
                self.shadow.report(accuracy, epoch + 1)  # the resource: epochs trained
                if epoch + 1 >= int(self.params.get("epochs", 0) or 0):
                    return  # a trial that ran to the end is complete
                if self.shadow.should_prune():
                    k = cost_bucket(self.estimate)
                    self.stopped_at = epoch + 1
                    self.reason = (f"epoch {epoch + 1}: validation accuracy {accuracy:.4f}, not in the top 1/"
                                   f"{REDUCTION_FACTOR} at this rung of the trials costing "
                                   f"{_ebops(BUCKET_BASE ** k)}–{_ebops(BUCKET_BASE ** (k + 1))} EBOPs ({buckets.kind})")
                    self.model.stop_training = True

            def close(self, value: float | None) -> None:
                if self.shadow is None:
                    return
                from optuna.trial import TrialState

                if value is None:
                    self.study.tell(self.shadow, state=TrialState.FAIL, skip_if_finished=True)
                elif self.stopped_at is not None:
                    self.study.tell(self.shadow, state=TrialState.PRUNED, skip_if_finished=True)
                else:
                    self.study.tell(self.shadow, value, skip_if_finished=True)

        return _RungStop()


def _ebops(value: float) -> str:
    return f"{value:,.0f}"


class RungStudies:
    """The bucket studies of one search and pruner kind, opened on demand in ``storage`` (one per process).

    Their names, ``STUDY/rungs/KIND/DIGEST/ebops-2^K``, carry a digest of the search's identity (model, space,
    data, epochs, seed...), so a search made afresh in the same storage never meets an older one's rungs.
    """

    def __init__(self, storage: Any, study_name: str, identity: Mapping[str, Any], kind: str, epochs: int,
                 first_rung: int, seed: int = 0) -> None:
        if kind not in ("halving", "hyperband"):
            raise ValueError(f"not a rung pruner: {kind!r}")
        self.storage, self.kind, self.epochs, self.first_rung, self.seed = storage, kind, epochs, first_rung, seed
        digest = hashlib.sha256(json.dumps(dict(identity), sort_keys=True, default=str).encode()).hexdigest()[:12]
        self.prefix = f"{study_name}/rungs/{kind}/{digest}"
        self._studies: dict[int, Any] = {}

    def pruner(self) -> Any:
        """A new Optuna pruner of this kind (its state lives in the storage; its brackets follow from the epochs)."""
        import optuna

        if self.kind == "halving":
            return optuna.pruners.SuccessiveHalvingPruner(min_resource=self.first_rung,
                                                          reduction_factor=REDUCTION_FACTOR)
        return optuna.pruners.HyperbandPruner(min_resource=self.first_rung, max_resource=self.epochs,
                                              reduction_factor=REDUCTION_FACTOR)

    def study(self, bucket: int) -> Any:
        """The bucket's study (maximize validation accuracy), created or joined."""
        if bucket not in self._studies:
            import optuna

            self._studies[bucket] = optuna.create_study(
                storage=self.storage, study_name=f"{self.prefix}/ebops-2^{bucket}", direction="maximize",
                pruner=self.pruner(), sampler=optuna.samplers.RandomSampler(seed=self.seed), load_if_exists=True)
        return self._studies[bucket]
