"""The one rule decision: what the rules make of one layer. Both planners call it.

:mod:`qconvert.model.plan` (a built model) and :mod:`qconvert.source.plan`
(Keras source code, where only a literal ``name=`` is known) decide every layer
here, so a rule file means the same thing to ``qconvert MODEL`` and to
``qconvert migrate``. The precedence among matching rules is
:meth:`RuleSet.select`'s; this module adds what follows from the winner: keys it
leaves out come from ``defaults``, ``keep: true`` sets nothing, and an
activation split out of a layer's ``activation=`` inherits the rules of that
layer that set ``activation``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .types import LayerView, Rule, RuleSet, Settings

__all__ = ["RuleDecision", "decide", "decide_split", "inherited"]


@dataclass(frozen=True)
class RuleDecision:
    """The rules' decision for one layer.

    ``rule``: the winning rule (None: no rule matches, ``defaults`` apply);
    ``settings``: what applies to the layer (the winner's keys over
    ``defaults``; empty when kept); ``keep``: the winner says ``keep: true``
    (the layer stays float); ``matched``: the indices of every rule that
    matches the layer, winner or not (a rule that matches no layer of a model
    is an error, see :func:`qconvert.model.plan.plan_model`).
    """

    rule: Rule | None
    settings: Settings
    keep: bool
    matched: frozenset[int]


def decide(rules: RuleSet, view: LayerView, extra: Iterable[Rule] = (), *, named: bool = True) -> RuleDecision:
    """What ``rules`` make of the layer ``view``.

    ``extra``: rules that match the layer another way (see :func:`inherited`).
    ``named=False``: the layer's name is unknown (source code without a literal
    ``name=``), so rules that select by name cannot match it.
    """
    extra = tuple(extra)
    matched = {r.index for r in rules.rules if (named or not r.match.by_name) and r.match.matches(view)}
    matched.update(r.index for r in extra)
    rule = rules.select(view, extra, named=named)
    if rule is None:
        return RuleDecision(None, rules.defaults, False, frozenset(matched))
    if rule.keep:
        return RuleDecision(rule, Settings(), True, frozenset(matched))
    return RuleDecision(rule, rule.settings.over(rules.defaults), False, frozenset(matched))


def inherited(rules: RuleSet, parent: LayerView, *, named: bool = True) -> tuple[Rule, ...]:
    """The rules an activation split out of ``parent`` inherits: those matching ``parent`` that set ``activation``."""
    return tuple(r for r in rules.rules if (named or not r.match.by_name) and r.match.matches(parent)
                 and r.settings.activation is not None)


def decide_split(rules: RuleSet, name: str, function: str, parent: LayerView, *,
                 parent_named: bool = True) -> RuleDecision:
    """What ``rules`` make of the activation ``function`` split out of ``parent`` as a layer named ``name``.

    The split layer is matched as ``Activation(function)`` by its own name and
    inherits ``parent``'s activation rules (``parent_named=False``: the parent's
    name is unknown).
    """
    return decide(rules, LayerView(name, "Activation", function), inherited(rules, parent, named=parent_named))
