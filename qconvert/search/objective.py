"""One trial of a search: the main job's stages with one concrete rule file, scored.

A trial is :func:`qconvert.pipeline.train_rules` (convert, calibrate, QAT with
pruning) on the FP32 model and data of the search, then the validation
accuracy (the objective; trials are chosen on it), the test accuracy (reported,
never used for choosing) and the cost of the trained model. It composes the
pipeline and re-implements no stage, so ``qconvert MODEL --rules front/NN.yaml
--data D --epochs E --seed S`` reproduces it.

Early stopping across trials (``--pruner``, :mod:`.pruning`): Pareto-aware
dominance stopping by default, or Optuna's successive halving or Hyperband within
cost buckets. A space's ``training`` mapping (``target_ebops``) reaches the trial
through :func:`target_trainer`, the one call point of cost-aware training.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import DataError
from ..rules import Space
from .pruning import PRUNERS, DominanceStop, TrialStop, stop_margin

__all__ = ["COSTS", "PRUNERS", "DominanceStop", "SearchSettings", "TrialOutcome", "Workbench", "stop_margin",
           "target_trainer"]

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
    warmup_epochs: int | None = None  # None: see warmup
    pruner: str = "dominance"  # one of PRUNERS (search.pruning)
    retrain_epochs: int | None = None  # re-train the front (and the references) for this many epochs; None: not

    @property
    def warmup(self) -> int:
        """Epochs before any trial is stopped: ``warmup_epochs``, else for ``dominance`` a third of the epochs (at
        least 2), for ``halving``/``hyperband`` (their first rung) a ninth (at least 1)."""
        if self.warmup_epochs is not None:
            return self.warmup_epochs
        if self.pruner in ("halving", "hyperband"):
            return max(1, self.epochs // 9)
        return max(2, math.ceil(self.epochs / 3))

    @property
    def early_stop(self) -> bool:
        """Are trials stopped early at all (``pruner`` not ``none``)?"""
        return self.pruner != "none"


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


class Workbench:
    """The loaded model, data and space of a search: one per worker process, reused by every trial.

    Raises :class:`~qconvert.errors.QConvertError` subclasses for bad inputs (the CLI's exit 2).
    """

    def __init__(self, settings: SearchSettings, space: Space) -> None:
        from ..pipeline import LoadOptions, load_inputs
        from ..train.compiled import is_classifier
        from ..train.qat import evaluate

        self.settings, self.space = settings, space
        inputs = load_inputs(settings.model, settings.data, seed=settings.seed,
                             load=LoadOptions(settings.weights, tuple(settings.custom_objects), settings.safe_mode))
        self.model, self.dataset, self.loss = inputs.model, inputs.dataset, inputs.loss
        if not is_classifier(self.loss):
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

    def train_options(self, epochs: int | None = None) -> Any:
        """The main job's training options for a trial (``epochs`` None: the search's ``--epochs``)."""
        from ..train.qat import TrainOptions

        s = self.settings
        return TrainOptions(epochs=epochs or s.epochs, lr=s.lr, batch_size=s.batch_size, seed=s.seed, loss=self.loss,
                            lr_schedule=s.lr_schedule, verbose=0)

    def run(self, ruleset: Any, callbacks: Sequence[Any] = (), *, epochs: int | None = None,
            training: Mapping[str, Any] | None = None) -> TrialOutcome:
        """Convert, calibrate, fine-tune and score one rule set (a trial, a reference preset, or a front point
        re-trained for ``epochs``). ``training`` holds the space's training options (``target_ebops``)."""
        from ..pipeline import train_rules

        start = time.perf_counter()
        target = (training or {}).get("target_ebops")
        train = self.train_options(epochs)
        if target is None:
            qmodel, report, trained = train_rules(self.model, ruleset, self.dataset, train,
                                                  calibration_rows=self.settings.calibration_rows,
                                                  callbacks=tuple(callbacks))
        else:
            qmodel, report, trained = target_trainer()(
                self.model, ruleset, self.dataset, train, target_ebops=float(target),
                calibration_rows=self.settings.calibration_rows, callbacks=tuple(callbacks))
        val, test = self.accuracies(qmodel)
        rtl = None
        if self.settings.cost in ("lut", "lut_yosys"):
            from ..export.rtl import synth_figures

            rtl = synth_figures(qmodel, x=self.dataset.x_val, synth=self.settings.cost == "lut_yosys").to_dict()
        totals = report.totals
        pruning = report.sections.get("pruning", {})
        estimate = next((c.estimate for c in callbacks if isinstance(c, TrialStop)), math.nan)
        return TrialOutcome(
            val_accuracy=val, test_accuracy=test, ebops=float(totals.ebops or 0.0), dsp=int(totals.dsp or 0),
            multiplies=int(totals.multiplies or 0), cost_estimate=float(estimate), epochs_run=trained.epochs_run,
            seconds=time.perf_counter() - start, curve=tuple(trained.history.get("val_accuracy", ())),
            sparsity={k: v["sparsity"] for k, v in pruning.get("layers", {}).items()}, rtl=rtl)

    def target_sparsity(self, ruleset: Any) -> dict[str, float]:
        """Layer name → the sparsity its rule prunes to (for the cost estimate before training)."""
        from ..model.plan import plan_model

        return {item.qualified_name: item.prune.sparsity for item in plan_model(self.model, ruleset).layers
                if item.prune is not None}

    def masks_final(self, ruleset: Any) -> int:
        """The first epoch (from 1) validated with the final pruning masks of ``ruleset`` (1: nothing pruned), as
        the main job's best-weights choice counts it: masks grow at an epoch's end, after Keras validated it.
        Raises :class:`~qconvert.errors.DataError` for a schedule past ``--epochs``."""
        from ..model.plan import plan_model
        from ..train.prune import prune_targets

        targets = prune_targets(plan_model(self.model, ruleset), self.settings.epochs)
        return max((t.end_epoch for t in targets), default=0) + 1


def target_trainer() -> Callable[..., Any]:
    """The cost-aware trainer a trial whose space sets ``training: {target_ebops: N}`` runs instead of plain
    QAT: :func:`qconvert.pipeline.train_rules` with ``target_ebops``, the same training as the main job's
    ``--target-ebops N``, so that ``front/NN.yaml`` reproduces. Returns ``(qmodel, report, training)``."""
    from ..pipeline import train_rules

    return train_rules


def rules_header(trial: Mapping[str, Any], settings: SearchSettings, fp32: float | None, path: str) -> str:
    """The comment block of ``front/NN.yaml``: what was measured and the command that reproduces it.

    ``trial`` is a row of ``search.json``; with ``retrained`` in it (``--retrain-epochs``), the figures are the
    re-trained model's, the search's short trial is named below them, and the command reproduces the re-trained
    model.
    """
    retrained = trial.get("retrained")
    shown = retrained if retrained else trial
    drop = f" ({100 * (shown['val_accuracy'] - fp32):+.2f} pp vs FP32)" if fp32 is not None else ""
    test = shown.get("test_accuracy")
    how = f", re-trained for {settings.retrain_epochs} epochs through the main job" if retrained else ""
    target = (trial.get("training") or {}).get("target_ebops")
    lines = [
        f"qconvert search, trial {trial['number']}{how}: validation accuracy {shown['val_accuracy']:.4f}{drop}"
        + (f", test {test:.4f}" if test is not None else ""),
        f"EBOPs {shown['ebops']:,.0f}, DSP {shown['dsp']}, multiplies {shown['multiplies']:,}"
        + (f" (cost-aware training to <= {target:,.0f} EBOPs)" if target is not None else ""),
    ]
    if retrained:
        short = trial.get("test_accuracy")
        lines.append(f"In the search ({settings.epochs} epochs): validation accuracy {trial['val_accuracy']:.4f}"
                     + (f", test {short:.4f}" if short is not None else "") + f", EBOPs {trial['ebops']:,.0f}")
    lines += [
        f"Reproduce{' the re-trained model' if retrained else ''} (same data, epochs and seed):",
        f"  {reproduce_command(settings, path, retrained=bool(retrained), target_ebops=target)}",
    ]
    return "\n".join(lines)


def reproduce_command(settings: SearchSettings, rules: str, *, retrained: bool = False,
                      target_ebops: float | None = None) -> str:
    """The main-job command that reproduces a trial with rule file ``rules`` (``retrained``: its re-training for
    ``settings.retrain_epochs`` epochs; ``target_ebops``: the trial's cost-aware training target)."""
    epochs = settings.retrain_epochs if retrained and settings.retrain_epochs else settings.epochs
    parts = ["qconvert", _q(settings.model), "--rules", _q(rules), "--data", _q(settings.data), "--epochs",
             str(epochs), "--seed", str(settings.seed)]
    for flag, value in (("--batch-size", settings.batch_size), ("--lr", settings.lr),
                        ("--lr-schedule", settings.lr_schedule), ("--calibration-rows", settings.calibration_rows),
                        ("--weights", settings.weights), ("--target-ebops", _number(target_ebops))):
        if value is not None:
            parts += [flag, _q(str(value))]
    for spec in settings.custom_objects:
        parts += ["--custom-objects", _q(spec)]
    if not settings.safe_mode:
        parts.append("--unsafe")
    return " ".join(parts)


def _number(value: float | None) -> str | None:
    """A number as the command line takes it: ``5000`` rather than ``5000.0``."""
    if value is None:
        return None
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _q(text: str) -> str:
    import shlex

    return shlex.quote(str(text))


_QUANTIZED = ("quantize", "fold")  # plan actions that leave a layer quantized (a folded BN lives in its producer)


def float_gaps(model: Any, space: Space, references: Sequence[str]) -> list[str]:
    """Warnings, one per reference: the layers every trial leaves float (the space's rules keep them, or no key
    quantizes them, e.g. no ``batchnorm:``) that the reference quantizes, so that trial and reference costs are
    not compared like for like (a float BatchNormalization costs DSPs in every trial). Plans only: no training.
    """
    from ..model.plan import plan_model
    from ..rules import load_rules

    trial = plan_model(model, space.ruleset({d.name: d.first for d in space.dimensions}))
    left = {p.qualified_name for p in trial.layers if p.action not in _QUANTIZED and p.action != "nested"}
    out = []
    for name in references:
        reference = plan_model(model, load_rules(name))
        gap = [p.qualified_name for p in reference.layers if p.action in _QUANTIZED and p.qualified_name in left]
        if gap:
            out.append(f"every trial leaves {len(gap)} layer(s) float that the reference {name} quantizes "
                       f"({', '.join(gap)}): their costs are not compared like for like; give them quantizers "
                       f"in the space (e.g. 'batchnorm: fold')")
    return out
