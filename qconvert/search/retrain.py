"""Full-length re-training of the front (``--retrain-epochs E``): a front point's accuracy is a trained model's.

A search ranks many short trials; their accuracies are those of models trained
for ``--epochs`` epochs (often far from converged), and a stopped trial's even
less. With ``--retrain-epochs E``, once the study has its trials, every point of
its front (the candidates) and every reference preset is trained again through
the main job's stages (:func:`qconvert.pipeline.train_rules`: convert, calibrate,
QAT with pruning) for ``E`` epochs with the search's seed, learning rate and
batch size, from the FP32 model: exactly what ``qconvert MODEL --rules
front/NN.yaml --data D --epochs E --seed S`` does, so the rule file's command
reproduces the re-trained model.

Each result is kept in the study (a study user attribute ``retrained:E:N`` for
trial ``N``, ``retrained:E:reference:NAME`` for a reference), written as soon as
it is measured: an interrupted re-training continues with ``--resume`` and
re-trains only what is missing; with ``-j N`` the candidates are shared among N
processes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import QConvertError
from ..rules import Space
from .objective import SearchSettings, Workbench

__all__ = ["Task", "attach", "pending", "retrain", "retrain_key"]

#: One re-training: ``("trial", "12")`` or ``("reference", "6bit")`` (the reference's name as given).
Task = tuple[str, str]


def retrain_key(epochs: int, task: Task) -> str:
    """The study user attribute holding a re-trained result."""
    from .study import reference_label

    kind, name = task
    return f"retrained:{epochs}:{name}" if kind == "trial" else f"retrained:{epochs}:reference:{reference_label(name)}"


def pending(study: Any, candidates: Sequence[int], references: Sequence[str], epochs: int) -> list[Task]:
    """The re-trainings not yet in the study: the candidate trials (by number), then the references."""
    tasks: list[Task] = [("trial", str(n)) for n in candidates] + [("reference", name) for name in references]
    held = study.user_attrs
    return [task for task in tasks if retrain_key(epochs, task) not in held]


def retrain(study: Any, settings: SearchSettings, space: Space, tasks: Sequence[Task], bench: Workbench,
            on_event: Callable[[str], None] | None = None) -> None:
    """Re-train each of ``tasks`` for ``settings.retrain_epochs`` epochs in this process; each result (the trial's
    figures, :meth:`TrialOutcome.to_dict`, or ``{"error": ...}``) is stored in the study as soon as it is measured."""
    from ..rules import load_rules
    from .study import params_of

    epochs = settings.retrain_epochs
    if not epochs:
        raise QConvertError("search: nothing to re-train without --retrain-epochs")
    trials = {str(t.number): t for t in study.get_trials(deepcopy=False)}
    for i, task in enumerate(tasks):
        kind, name = task
        if on_event is not None:
            on_event(f"re-training {'trial ' if kind == 'trial' else ''}{name} for {epochs} epochs "
                     f"({i + 1} of {len(tasks)})")
        try:
            if kind == "trial":
                params = params_of(trials[name], space)
                ruleset = space.ruleset(params, source=f"{space.source} (trial {name}, re-trained)")
                outcome = bench.run(ruleset, epochs=epochs, training=space.training(params)).to_dict()
            else:
                outcome = bench.run(load_rules(name), epochs=epochs).to_dict()
        except (QConvertError, ValueError, ArithmeticError) as exc:  # as a trial's: the others go on
            outcome = {"error": " ".join(str(exc).split())[:500]}
        study.set_user_attr(retrain_key(epochs, task), outcome)


def attach(study: Any, result: Any) -> None:
    """Put the study's re-trained figures into ``result`` (a :class:`~.front.SearchResult`): ``retrained`` in each
    re-trained trial's row and in each reference (``{"error": ...}`` when its re-training failed)."""
    from .study import reference_label

    epochs = result.retrain_epochs
    held = study.user_attrs
    for row in result.trials:
        key = retrain_key(epochs, ("trial", str(row["number"])))
        if key in held:
            row["retrained"] = held[key]
    for label, reference in result.references.items():
        key = f"retrained:{epochs}:reference:{reference_label(label)}"
        if key in held:
            reference["retrained"] = held[key]
