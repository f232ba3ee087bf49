"""Cost-aware training to a target: QAT that ends at ``<= target`` EBOPs with the best accuracy it can reach.

``qconvert MODEL --rules R --data D --epochs N --target-ebops T``. Three phases:

1. **Search** (``search_fraction`` of the epochs): the converted model is rebuilt with
   learnable widths (:mod:`qconvert.train.learned`): per layer the kernel's and
   bias's bits and integer bits, per activation quantizer (the input's included)
   its bits and integer bits. The loss is ``task + β · EBOPs`` with the
   differentiable term of :mod:`qconvert.train.ebops`: widths get HGQ's surrogate
   gradient through the rounding, weights are pushed toward zero in proportion to
   the EBOPs they cost. β is set each epoch from the exact count by
   :mod:`qconvert.train.beta`; the best epoch at ``<= T`` is kept.
2. **Fix**: the widths are rounded and written as per-layer rules
   (:mod:`qconvert.train.target_rules`); the FP32 model is converted with them
   (qconvert's own rewrite: an ordinary QKeras model), the searched weights loaded,
   and each value that quantizes to zero masked.
3. **Fine-tune** (the other epochs): plain QAT (:func:`~qconvert.train.qat.fine_tune`)
   at the fixed widths with the masks held: no zero comes back, but a value may move
   to one that needs more bits, so the count can rise (on the jets by up to 16 %).
   Should the count exceed T when fine-tuning starts (no search epoch reached it), the
   values that cost the most EBOPs for their magnitude are pruned over the first half
   of the fine-tuning (:func:`~qconvert.train.beta.greedy_prune`, Zhu & Gupta's
   schedule); whatever is above T after the last epoch (the best epoch's weights) is
   pruned the same way at once, so the saved model is always at ``<= T``.

Method after HGQ (Sun et al., arXiv:2405.00645): surrogate gradients for bit widths,
EBOPs as the cost, β adapted to the target; here with per-layer formats a QKeras
model can hold, instead of per-weight ones.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import DataError
from ..rules import RuleSet, loads_rules
from .compiled import compile_for_training
from .data import Dataset
from .qat import TrainOptions, TrainResult, fine_tune, fit_verbosity, infer_loss, resolve_batch_size

__all__ = ["TARGET_LR", "TargetResult", "TargetSettings", "render_target", "target_batch_size", "train_to_target"]

#: Bits a width may have to travel during the search (sets the step size of the width variables).
WIDTH_RANGE = 12.0
#: The learning rate when ``--lr`` is not given. The widths and the zeros travel far from the FP32 start, so the
#: main job's fine-tuning rate (1e-4 at batch 1024) is far too small: on the simulated jets at 4,655 EBOPs, 200
#: epochs, the main job's 2e-4 at batch 256 gave 0.6675 test accuracy (earlier controller gains); seed 0 at batch
#: 256: 2e-3 0.6768, 3e-3 0.6735; at batch 512 with 3e-3: 0.6810 and 0.6795 (two aims). HGQ2's example uses 5e-3.
TARGET_LR = 3e-3
#: The batch size when ``--batch-size`` is not given: the largest power of two giving at least this many optimizer
#: steps per epoch, within 16..:data:`TARGET_MAX_BATCH` (the jets' 12,000 training rows: 512; digits' 1,077: 64).
TARGET_STEPS_PER_EPOCH = 16
TARGET_MAX_BATCH = 512
#: The starting β is this over the target: β·EBOPs near the target then weighs about as much as a
#: classifier's loss; the jet tagger settled at β·T = 0.04-0.08, the digits MLP at 0.2-0.4.
BETA_TIMES_TARGET = 0.1


@dataclass(frozen=True)
class TargetSettings:
    """How the search runs (defaults measured on the jet tagger and the digits MLP).

    ``search_fraction``: of ``--epochs``, the search's share (the rest fine-tunes). ``beta0`` None:
    :data:`BETA_TIMES_TARGET` ``/ target``. ``k_p``, ``k_i``: the controller's gains on ``ln β``
    (:mod:`qconvert.train.beta`); it aims at ``(1 - margin) * target``, reached over the first ``ramp_fraction``
    of the search epochs. ``width_epochs``: a width can cross :data:`WIDTH_RANGE` bits in about this fraction of
    the search epochs (the widths' step size against the weights'). The last ``freeze_fraction`` of the search
    epochs run at frozen widths (only the zeros move the count). Fine-tuning runs at ``finetune_lr_factor``
    times the search's learning rate, with a cosine decay unless the options name a schedule.
    """

    search_fraction: float = 0.75
    beta0: float | None = None
    k_p: float = 0.25  # 0.5 / 0.2 let the count swing 1.5k-8k around a 4.7k target on the jets (one epoch per step)
    k_i: float = 0.1
    width_epochs: float = 0.25
    finetune_lr_factor: float = 0.3
    margin: float = 0.05  # the controller aims at (1 - margin) * target
    freeze_fraction: float = 0.2  # the last part of the search runs at frozen widths
    ramp_fraction: float = 0.3  # the first part of the search steers from the start down to the target


@dataclass(frozen=True)
class TargetResult:
    """The outcome of :func:`train_to_target`. ``model`` is the trained QKeras model (not in :meth:`to_dict`).

    EBOPs: ``start`` (the starting rule file's conversion), ``search`` (the chosen search epoch, exact count),
    ``fixed`` (after rounding and masking, by :func:`~qconvert.model.cost.model_cost`), ``final`` (after
    fine-tuning, the same count). ``precisions``: per layer and role, the QKeras quantizer learned.
    ``beta``/``ebops``/``score``: per search epoch (score: validation accuracy, or minus the task loss). ``seconds``: wall time of each phase.
    """

    model: Any
    target: float
    minimum: float
    ebops: dict[str, float]
    precisions: dict[str, dict[str, str]]
    sparsity: dict[str, float]
    beta: list[float]
    ebops_history: list[float]
    score_history: list[float]
    search_epochs: int
    finetune_epochs: int
    chosen_epoch: int  # 0: no search epoch reached the target; pruned greedily
    val_accuracy: dict[str, float | None]
    seconds: dict[str, float]
    rules_text: str
    finetune: TrainResult | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "minimum": self.minimum, "ebops": self.ebops, "precisions": self.precisions,
                "sparsity": self.sparsity, "search_epochs": self.search_epochs, "finetune_epochs": self.finetune_epochs,
                "chosen_epoch": self.chosen_epoch, "val_accuracy": self.val_accuracy, "seconds": self.seconds,
                "settings": self.settings,
                "history": {"beta": self.beta, "ebops": self.ebops_history, "validation": self.score_history},
                "finetune": self.finetune.to_dict() if self.finetune is not None else None}


def render_target(section: dict[str, Any], console: Any) -> None:
    """Print a ``training.target_ebops`` section (:meth:`TargetResult.to_dict`) as a rich table."""
    from rich.table import Table

    e = section["ebops"]
    console.print(f"target EBOPs {section['target']:,.0f}: start {e['start']:,.0f} → search {e['search']:,.0f} "
                  f"({_chosen(section['chosen_epoch'])}) → fixed {e['fixed']:,.0f} → final {e['final']:,.0f}"
                  f"; {section['search_epochs']} + {section['finetune_epochs']} epochs, "
                  f"{sum(section['seconds'].values()):.0f} s")
    table = Table("layer", "learned precision", "sparsity", title="learned precisions")
    for name, roles in section["precisions"].items():
        text = ", ".join(f"{role} {spec}" for role, spec in roles.items())
        s = section["sparsity"].get(name)
        table.add_row(name, text, f"{100 * s:.1f} %" if s is not None else "")
    console.print(table)


def _chosen(epoch: int) -> str:
    return f"epoch {epoch}" if epoch else "no search epoch reached the target: pruned down to it"


def _sparsity(masks: dict[tuple[str, str], np.ndarray]) -> dict[str, float]:
    return {name: float(1 - m.mean()) for (name, role), m in masks.items() if role == "kernel"}


def train_to_target(model: Any, qmodel: Any, dataset: Dataset, target_ebops: float, options: TrainOptions, *,
                    rules: RuleSet, settings: TargetSettings | None = None, calibration: Any = None,
                    compiled_loss: str | None = None) -> TargetResult:
    """Train ``qmodel`` (``model``, the FP32 Keras model, converted by ``rules``) to ``<= target_ebops`` EBOPs.

    ``options``: epochs (search + fine-tune), lr, batch size, seed, loss, patience (fine-tuning only).
    ``calibration``: the rows ``rules`` were calibrated on (its ``integer: auto`` outside the learned layers).
    Returns a :class:`TargetResult`; its model's EBOPs by :func:`~qconvert.model.cost.model_cost` are
    ``<= target_ebops``. Raises :class:`DataError` for a target below :meth:`SearchModel.minimum_ebops` or
    fewer than 2 epochs, :class:`~qconvert.errors.ConversionError` for a model it cannot learn.
    """
    import keras

    from ..model.calibrate import PERCENTILE, calibrate
    from ..model.cost import model_cost
    from ..model.plan import plan_model
    from ..model.rewrite import apply_plan
    from .beta import ControllerState, cost_of, greedy_prune, make_beta_controller, make_mask_callback, quantized_arrays
    from .learned import build_search_model
    from .target_rules import check_reproduced, derive_rules_text

    settings = settings or TargetSettings()
    if options.epochs < 2:
        raise DataError(f"--target-ebops needs --epochs of at least 2 (search, then fine-tuning), got {options.epochs}")
    keras.utils.set_random_seed(options.seed)
    loss = options.loss or infer_loss(model, dataset, compiled_loss)
    batch_size = options.batch_size or target_batch_size(len(dataset.x_train))
    lr = options.lr if options.lr is not None else TARGET_LR
    steps = math.ceil(len(dataset.x_train) / batch_size)
    n_search = min(options.epochs - 1, max(1, round(settings.search_fraction * options.epochs)))
    n_finetune = options.epochs - n_search
    scale = max(1.0, WIDTH_RANGE / (settings.width_epochs * n_search * steps * lr))
    search = build_search_model(qmodel, scale)
    start = float(sum(search.exact_ebops().values()))
    minimum = search.minimum_ebops()
    if target_ebops < minimum:
        raise DataError(f"--target-ebops {target_ebops:g} is below {minimum:g}, the least this model can cost "
                        "(every unit keeping one weight, every width at one magnitude bit)")

    t0 = time.perf_counter()
    state = ControllerState()
    beta0 = settings.beta0 if settings.beta0 is not None else BETA_TIMES_TARGET / target_ebops
    controller = make_beta_controller(search, target_ebops, beta0, settings.k_p, settings.k_i, state,
                                      aim=(1 - settings.margin) * target_ebops,
                                      freeze_at=n_search - round(settings.freeze_fraction * n_search),
                                      start=start, ramp=round(settings.ramp_fraction * n_search))
    compile_for_training(search.model, replace(options, lr=lr, epochs=n_search), loss, steps,
                         (dataset.x_train, dataset.y_train))
    search.model.fit(dataset.x_train, dataset.y_train, validation_data=(dataset.x_val, dataset.y_val), epochs=n_search,
                     batch_size=batch_size, shuffle=True, callbacks=[controller], verbose=fit_verbosity(options.verbose))
    chosen = state.best_weights if state.best_weights is not None else state.lowest_weights
    if chosen is not None:
        search.model.set_weights(chosen)
    t_search = time.perf_counter() - t0

    widths = search.widths()
    arrays, unit_cost, floats = {}, {}, {}
    for name, layer in search.multiplies.items():
        # EBOPs per magnitude bit of a value: its input's bits times its uses (none for a format of no magnitude
        # bit, a 1-bit signed one: its values cost nothing, as model_cost counts them)
        k, b = layer.exact_quantized()
        has_bits = {role: float(w.magnitude > 0) for role, w in widths[name].items()}
        arrays[(name, "kernel")], unit_cost[(name, "kernel")] = k, layer.uses * layer.inputs.exact() * has_bits["kernel"]
        floats[(name, "kernel")] = np.asarray(keras.ops.convert_to_numpy(layer.kernel))
        if b is not None:
            arrays[(name, "bias")], unit_cost[(name, "bias")] = b, layer.uses * has_bits["bias"]
            floats[(name, "bias")] = np.asarray(keras.ops.convert_to_numpy(layer.bias))
    searched = float(sum(search.exact_ebops().values()))
    masks = {key: a != 0 for key, a in arrays.items()}

    inputs = {name for name in search.quantizers if name.endswith("_quant") and name[: -len("_quant")] in _input_names(qmodel)}
    header = (f"Learned by qconvert --target-ebops {target_ebops:g} (seed {options.seed}) from {rules.source}.\n"
              "Convert the FP32 model with it to get this model's layers and precisions; the trained weights "
              "(pruned values exactly zero) are in the saved model.")
    text = derive_rules_text(rules, widths, inputs, target=target_ebops, header=header)
    derived = loads_rules(text, f"{rules.source} (learned)")
    derived_plan, _ = calibrate(model, plan_model(model, derived), calibration, percentile=PERCENTILE)
    final = apply_plan(model, derived_plan)
    check_reproduced(final, widths)
    for (name, role), mask in masks.items():
        getattr(final.get_layer(name), role).assign(floats[(name, role)] * mask)
    fixed = float(sum(c.ebops for c in model_cost(final).values()))

    t1 = time.perf_counter()
    ft_result = None
    if n_finetune:
        ft_options = replace(options, epochs=n_finetune, lr=lr * settings.finetune_lr_factor, batch_size=batch_size,
                             checkpoint_dir=None, resume=False, loss=loss, lr_schedule=options.lr_schedule or "cosine")
        end = max(1, n_finetune // 2) if fixed > target_ebops else 0  # still above: prune down to it first
        callback = make_mask_callback(final, masks, unit_cost=unit_cost, target=target_ebops, end_epoch=end)
        final, ft_result = fine_tune(final, dataset, ft_options, callbacks=[callback], monitor_from=end + 1)
    arrays = quantized_arrays(final, masks)
    for key, mask in greedy_prune(arrays, unit_cost, cost_of(arrays, unit_cost) - target_ebops).items():
        masks[key] &= mask  # the best weights were restored: zero where masked (and at the target, whatever happened)
        var = getattr(final.get_layer(key[0]), key[1])
        var.assign(keras.ops.convert_to_numpy(var) * masks[key])
    t_finetune = time.perf_counter() - t1
    final_ebops = float(sum(c.ebops for c in model_cost(final).values()))
    val = {"search": state.best_score if state.best_epoch and state.metric == "val_accuracy" else None,
           "final": _val_accuracy(final, dataset, loss)}
    return TargetResult(
        model=final, target=float(target_ebops), minimum=float(minimum),
        ebops={"start": start, "search": searched, "fixed": fixed, "final": final_ebops},
        precisions={name: {role: w.spec() for role, w in roles.items()} for name, roles in widths.items()},
        sparsity=_sparsity(masks), beta=state.beta, ebops_history=state.ebops, score_history=state.score,
        search_epochs=n_search,
        finetune_epochs=n_finetune, chosen_epoch=state.best_epoch, val_accuracy=val,
        seconds={"search": t_search, "finetune": t_finetune}, rules_text=text, finetune=ft_result,
        settings={"lr": lr, "batch_size": batch_size, "beta0": beta0, "width_scale": scale, "k_p": settings.k_p,
                  "k_i": settings.k_i},
    )


def target_batch_size(n_train: int) -> int:
    """``--target-ebops``'s batch size for ``n_train`` training rows when none is given (see
    :data:`TARGET_STEPS_PER_EPOCH`)."""
    return resolve_batch_size(None, n_train, steps=TARGET_STEPS_PER_EPOCH, largest=TARGET_MAX_BATCH)


def _input_names(qmodel: Any) -> set[str]:
    from ..model.graph import graph_of

    return {ref.layer for ref in graph_of(qmodel).inputs}


def _val_accuracy(model: Any, dataset: Dataset, loss: str) -> float | None:
    if "crossentropy" not in loss:
        return None
    from .qat import evaluate

    return evaluate(model, dataset, dataset.x_val, dataset.y_val, loss).accuracy
