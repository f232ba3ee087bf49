"""One trial of a search: the main job's stages with one concrete rule file, scored.

A trial is :func:`qconvert.pipeline.train_rules` (convert, calibrate, QAT with
pruning) on the FP32 model and data of the search, then the validation
accuracy (the objective; trials are chosen on it), the test accuracy (reported,
never used for choosing) and the cost of the trained model. It composes the
pipeline and re-implements no stage, so ``qconvert MODEL --rules front/NN.yaml
--data D --epochs E --seed S`` reproduces it.

Early stopping across trials (:class:`DominanceStop`): at the end of an epoch
after the warm-up, a trial stops when a finished trial that costs no more (its
estimate before training, computed the same way) was more accurate at the same
epoch by more than ``margin``. This is the median-stopping idea of Golovin et al.,
"Google Vizier" (KDD 2017), §3.2.2, made Pareto-aware: a cheap trial is never
stopped for being less accurate than an expensive one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import DataError
from ..rules import Space

__all__ = ["COSTS", "DominanceStop", "SearchSettings", "TrialOutcome", "Workbench", "stop_margin"]

#: Costs a search can minimize: report totals of the trained model (EBOPs, DSPs, multiplies), da4ml's LUT
#: estimate of its RTL (``lut``: seconds per trial, no tool) or yosys's LUT count (``lut_yosys``: minutes).
COSTS = ("ebops", "dsp", "multiplies", "lut", "lut_yosys")


@dataclass(frozen=True)
class SearchSettings:
    """What every trial of one search shares (picklable: worker processes get a copy)."""

    model: str
    space: str
    data: str
    epochs: int
    seed: int = 0
    cost: str = "ebops"
    max_drop: float | None = None  # percentage points below FP32 validation accuracy; None: Pareto front
    batch_size: int | None = None
    lr: float | None = None
    lr_schedule: str | None = None
    calibration_rows: int | None = None
    safe_mode: bool = True
    weights: str | None = None
    custom_objects: tuple[str, ...] = ()
    warmup_epochs: int | None = None  # None: a third of the epochs (at least 2)
    early_stop: bool = True

    @property
    def warmup(self) -> int:
        return self.warmup_epochs if self.warmup_epochs is not None else max(2, math.ceil(self.epochs / 3))


@dataclass(frozen=True)
class TrialOutcome:
    """What one finished trial measured. Accuracies are fractions; ``seconds`` wall time of the trial."""

    val_accuracy: float
    test_accuracy: float | None
    ebops: float
    dsp: int
    multiplies: int
    cost_estimate: float
    epochs_run: int
    seconds: float
    curve: tuple[float, ...] = ()  # validation accuracy after each epoch
    sparsity: dict[str, float] = field(default_factory=dict)
    rtl: dict[str, Any] | None = None  # da4ml/yosys figures (RtlFigures.to_dict()) when the cost is a LUT count

    def cost(self, name: str) -> float:
        if name in ("lut", "lut_yosys"):
            return float(self.rtl["lut"]) if self.rtl else math.nan
        return float(getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        out = {"val_accuracy": self.val_accuracy, "test_accuracy": self.test_accuracy, "ebops": self.ebops,
               "dsp": self.dsp, "multiplies": self.multiplies, "cost_estimate": self.cost_estimate,
               "epochs_run": self.epochs_run, "seconds": round(self.seconds, 2), "curve": list(self.curve),
               "sparsity": self.sparsity}
        if self.rtl is not None:
            out.update(rtl=self.rtl, lut=self.rtl["lut"], lut_yosys=self.rtl["lut"] if self.rtl.get("synth") else None)
        return out


def stop_margin(accuracy: float, n: int) -> float:
    """Accuracy gap that counts as real: two standard errors of a binomial proportion on ``n`` samples,
    at least one percentage point."""
    return max(0.01, 2.0 * math.sqrt(max(accuracy * (1.0 - accuracy), 1e-6) / max(n, 1)))


class Workbench:
    """The loaded model, data and space of a search: one per worker process, reused by every trial.

    Raises :class:`~qconvert.errors.QConvertError` subclasses for bad inputs (the CLI's exit 2).
    """

    def __init__(self, settings: SearchSettings, space: Space) -> None:
        from ..pipeline import LoadOptions, load_inputs
        from ..train.qat import _is_classifier, evaluate

        self.settings, self.space = settings, space
        inputs = load_inputs(settings.model, settings.data, seed=settings.seed,
                             load=LoadOptions(settings.weights, tuple(settings.custom_objects), settings.safe_mode))
        self.model, self.dataset, self.loss = inputs.model, inputs.dataset, inputs.loss
        if not _is_classifier(self.loss):
            raise DataError(f"{settings.data}: search maximizes accuracy, so it needs a classifier; "
                            f"the loss is {self.loss}")
        self._evaluate = evaluate
        self.fp32 = self.accuracies(self.model)

    def accuracies(self, model: Any) -> tuple[float, float | None]:
        """``(validation, test)`` accuracy of ``model`` (test None when the data has no test split)."""
        d = self.dataset
        val = self._evaluate(model, d, d.x_val, d.y_val, self.loss).accuracy
        test = self._evaluate(model, d, d.x_test, d.y_test, self.loss).accuracy if d.x_test is not None else None
        return float(val), None if test is None else float(test)

    def train_options(self) -> Any:
        from ..train.qat import TrainOptions

        s = self.settings
        return TrainOptions(epochs=s.epochs, lr=s.lr, batch_size=s.batch_size, seed=s.seed, loss=self.loss,
                            lr_schedule=s.lr_schedule, verbose=0)

    def run(self, ruleset: Any, callbacks: Sequence[Any] = ()) -> TrialOutcome:
        """Convert, calibrate, fine-tune and score one rule set (a trial, or a reference preset)."""
        from ..pipeline import train_rules

        start = time.perf_counter()
        qmodel, report, training = train_rules(self.model, ruleset, self.dataset, self.train_options(),
                                               calibration_rows=self.settings.calibration_rows,
                                               callbacks=tuple(callbacks))
        val, test = self.accuracies(qmodel)
        rtl = None
        if self.settings.cost in ("lut", "lut_yosys"):
            from ..export.rtl import synth_figures

            rtl = synth_figures(qmodel, x=self.dataset.x_val, synth=self.settings.cost == "lut_yosys").to_dict()
        totals = report.totals
        pruning = report.sections.get("pruning", {})
        estimate = next((c.estimate for c in callbacks if isinstance(c, DominanceStop)), math.nan)
        return TrialOutcome(
            val_accuracy=val, test_accuracy=test, ebops=float(totals.ebops or 0.0), dsp=int(totals.dsp or 0),
            multiplies=int(totals.multiplies or 0), cost_estimate=float(estimate), epochs_run=training.epochs_run,
            seconds=time.perf_counter() - start, curve=tuple(training.history.get("val_accuracy", ())),
            sparsity={k: v["sparsity"] for k, v in pruning.get("layers", {}).items()}, rtl=rtl)

    def target_sparsity(self, ruleset: Any) -> dict[str, float]:
        """Layer name → the sparsity its rule prunes to (for the cost estimate before training)."""
        from ..model.plan import plan_model

        return {item.qualified_name: item.prune.sparsity for item in plan_model(self.model, ruleset).layers
                if item.prune is not None}


class DominanceStop:
    """Namespace for the Keras callback (built lazily: this module is imported without Keras)."""

    estimate: float

    @staticmethod
    def create(finished: Sequence[Mapping[str, Any]], sparsity: Mapping[str, float], warmup: int, n_val: int,
               on_epoch: Callable[[int, float], None] | None = None) -> DominanceStop:
        import keras

        class _DominanceStop(keras.callbacks.Callback, DominanceStop):
            def __init__(self) -> None:
                super().__init__()
                self.estimate = math.nan
                self.stopped_at: int | None = None
                self.reason = ""

            def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
                from ..model.cost import model_cost

                costs = model_cost(self.model)
                self.estimate = sum(c.ebops * (1.0 - sparsity.get(name, 0.0)) for name, c in costs.items())

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


def rules_header(number: int, settings: SearchSettings, outcome: Mapping[str, Any], fp32: float | None,
                 path: str) -> str:
    """The comment block of ``front/NN.yaml``: what was measured and the command that reproduces it."""
    drop = f" ({100 * (outcome['val_accuracy'] - fp32):+.2f} pp vs FP32)" if fp32 is not None else ""
    test = outcome.get("test_accuracy")
    lines = [
        f"qconvert search, trial {number}: validation accuracy {outcome['val_accuracy']:.4f}{drop}"
        + (f", test {test:.4f}" if test is not None else ""),
        f"EBOPs {outcome['ebops']:,.0f}, DSP {outcome['dsp']}, multiplies {outcome['multiplies']:,}",
        "Reproduce (same data, epochs and seed):",
        f"  {reproduce_command(settings, path)}",
    ]
    return "\n".join(lines)


def reproduce_command(settings: SearchSettings, rules: str) -> str:
    """The main-job command that reproduces a trial with rule file ``rules``."""
    parts = ["qconvert", _q(settings.model), "--rules", _q(rules), "--data", _q(settings.data), "--epochs",
             str(settings.epochs), "--seed", str(settings.seed)]
    for flag, value in (("--batch-size", settings.batch_size), ("--lr", settings.lr),
                        ("--lr-schedule", settings.lr_schedule), ("--calibration-rows", settings.calibration_rows),
                        ("--weights", settings.weights)):
        if value is not None:
            parts += [flag, _q(str(value))]
    for spec in settings.custom_objects:
        parts += ["--custom-objects", _q(spec)]
    if not settings.safe_mode:
        parts.append("--unsafe")
    return " ".join(parts)


def _q(text: str) -> str:
    import shlex

    return shlex.quote(str(text))
