"""Pass 2 of the codemod: what the rules make of each construction found.

The rule semantics are :mod:`qconvert.model.plan`'s: the winning rule comes
from :meth:`RuleSet.select` (``name`` > ``regex`` > ``glob`` > ``type``); keys it
leaves out come from ``defaults``; ``keep: true`` leaves the layer float; a
split-out activation is named ``relu1, relu2, ...`` (``softmax`` when alone) and
gets its quantizer from :func:`~qconvert.model.rewriters.activation.choose_quantizer`.
Source code differs from a built model in one way: only a literal ``name=`` is
known. A layer without one is matched by type (Keras would invent its name at
run time); a layer whose ``name=`` is an expression is left alone when a rule
selects by name, since the codemod cannot tell whether it matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import libcst as cst

from ..model.plan import split_activation_names
from ..model.rewriters.activation import activation_of, choose_quantizer
from ..quantizers import QuantizerSpec
from ..rules import LayerView, Rule, RuleDecision, RuleSet, Settings, decide, decide_split
from . import names as N
from .collect import SKIP_MARKER, Collector, Site, mark_repeated
from .findings import Finding

__all__ = ["NOT_LITERAL", "Args", "Decision", "Planner", "Split", "literal"]

NOT_LITERAL = object()


def literal(node: cst.BaseExpression) -> Any:
    """The value of a literal (numbers, strings, True/False/None, tuples), read, never evaluated."""
    if isinstance(node, (cst.Integer, cst.Float, cst.SimpleString)):
        return node.evaluated_value
    if isinstance(node, cst.ConcatenatedString):
        value = node.evaluated_value
        return value if value is not None else NOT_LITERAL
    if isinstance(node, cst.Name) and node.value in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[node.value]
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, (cst.Minus, cst.Plus)):
        inner = literal(node.expression)
        if isinstance(inner, (int, float)) and not isinstance(inner, bool):
            return -inner if isinstance(node.operator, cst.Minus) else inner
    if isinstance(node, cst.Tuple):
        items = [literal(el.value) for el in node.elements]
        return NOT_LITERAL if any(i is NOT_LITERAL for i in items) else tuple(items)
    return NOT_LITERAL


@dataclass(frozen=True)
class Split:
    """The activation split out of ``activation=``: a QActivation, or a float Activation (spec None)."""

    name: str
    function: str
    spec: QuantizerSpec | None
    status: str  # quantize | keep | float | unquantizable | uncovered
    note: str


@dataclass(frozen=True)
class Decision:
    """What the transform does to one site."""

    site: Site
    target: str | None = None  # the Q-class; None keeps the class
    quantizers: tuple[tuple[str, QuantizerSpec], ...] = ()
    drop: frozenset[str] = frozenset()  # arguments (by Keras name) removed
    activation_arg: QuantizerSpec | None = None  # QActivation(activation=...) in place of the activation arguments
    split: Split | None = None
    quote: str = '"'


@dataclass
class Args:
    """A call's arguments by Keras parameter name."""

    by_name: dict[str, cst.Arg] = field(default_factory=dict)
    starred: bool = False
    too_many: bool = False

    @classmethod
    def read(cls, call: cst.Call, class_name: str) -> Args:
        """The arguments of ``call`` to the Keras class ``class_name``, positional ones named by its signature."""
        out = cls()
        order = N.KERAS_POSITIONAL.get(class_name, ())
        positional = 0
        for arg in call.args:
            if arg.star:
                out.starred = True
            elif arg.keyword is None:
                if positional >= len(order):
                    out.too_many = True
                    continue
                out.by_name[order[positional]] = arg
                positional += 1
            else:
                out.by_name[arg.keyword.value] = arg
        return out


def _named(name: str | None) -> str:
    return f" {name!r}" if name else ""


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def _quote_of(args: Args) -> str:
    for key in ("name", "activation"):
        arg = args.by_name.get(key)
        if arg is not None and isinstance(arg.value, cst.SimpleString) and arg.value.quote in ("'", '"'):
            return arg.value.quote
    return '"'


class Planner:
    """Decides every site of one file (all its units together: notebook cells share split names)."""

    def __init__(self, rules: RuleSet, collectors: Sequence[Collector]) -> None:
        self.rules = rules
        self.collectors = collectors
        mark_repeated(collectors)
        self.taken: set[str] = set().union(*(c.names for c in collectors))
        self.findings: dict[int, list[Finding]] = {i: [] for i in range(len(collectors))}
        self.used: set[int] = set()  # indices of the rules that match a layer, as the model planner counts them

    def note(self, site: Site, code: str, message: str) -> None:
        """Record a finding (``code``: QC1xx a change, QC2xx left as it is) at ``site``."""
        self.findings[site.unit].append(Finding(site.line, site.col, code, message))

    def decide(self, view: LayerView, named: bool) -> tuple[Rule | None, Settings, bool]:
        """:func:`qconvert.rules.decide`, as the model planner decides; a layer without a literal name
        (``named=False``) cannot match name/glob/regex rules."""
        return self._count(decide(self.rules, view, named=named))

    def _count(self, decision: RuleDecision) -> tuple[Rule | None, Settings, bool]:
        self.used.update(decision.matched)
        return decision.rule, decision.settings, decision.keep

    @staticmethod
    def label(rule: Rule | None) -> str:
        """How a finding names the deciding rule: its label, else ``defaults``."""
        return rule.label if rule is not None else "defaults"

    # -- reading a site --
    def layer_name(self, site: Site, args: Args) -> tuple[str | None, bool]:
        """(the literal name, or None; False when a name rule cannot be checked: the site is refused)."""
        arg = args.by_name.get("name")
        if arg is None:
            return None, True
        value = literal(arg.value)
        if isinstance(value, str):
            return value, True
        if any(r.match.by_name for r in self.rules.rules):
            self.note(site, "QC205", f"{site.class_name}: name={_code(arg.value)} is not a literal, and rules select "
                      "layers by name; left unconverted")
            return None, False
        return None, True

    def function_of(self, value: cst.BaseExpression, site: Site) -> str | None:
        """``'relu'``, ``tf.nn.relu``, ``None`` (linear) → the activation's name; None when unknown."""
        value_literal = literal(value)
        if value_literal is None:
            return "linear"
        if isinstance(value_literal, str):
            return N.normalize_activation(value_literal)
        for q in sorted(site.arg_quals.get(id(value), ())):
            fn = N.activation_from_qualname(q)
            if fn:
                return fn
        return None

    def refused(self, site: Site, args: Args) -> bool:
        """Whether the site cannot be followed (inside a Keras subclass, ``*args``, too many arguments); noted."""
        if site.inside is not None:
            self.note(site, "QC208", f"{site.class_name}: inside class {site.inside}, a Keras subclass; left alone")
            return True
        if args.starred:
            self.note(site, "QC206", f"{site.class_name}: *args/**kwargs in the call cannot be followed; left unconverted")
            return True
        if args.too_many:
            self.note(site, "QC205", f"{site.class_name}: more positional arguments than Keras takes; left unconverted")
            return True
        return False

    # -- the plan --
    def run(self) -> dict[int, Decision]:
        """id(original Call node) → its decision, for the sites that change."""
        weighted: list[tuple[Site, Args, str | None, str | None]] = []
        decisions: dict[int, Decision] = {}
        for site in (s for c in self.collectors for s in c.sites):
            if site.skipped:
                self.note(site, "QC209", f"{site.class_name}: excluded by '# {SKIP_MARKER}'")
                continue
            args = Args.read(site.node, site.class_name)
            if self.refused(site, args):
                continue
            if site.class_name in N.WEIGHTED:
                ready = self.prepare_weighted(site, args)
                if ready is not None:
                    weighted.append(ready)
                continue
            if site.class_name in N.ACTIVATION_LAYERS:
                decision = self.plan_activation_layer(site, args)
            elif site.class_name == "BatchNormalization":
                decision = self.plan_batchnorm(site, args)
            else:
                decision = self.plan_other(site, args)
            if decision is not None:
                decisions[id(site.node)] = decision
        names = self.split_names([(s, fn) for s, _, _, fn in weighted if fn != "linear" and not s.repeated])
        for site, args, name, fn in weighted:
            if fn is None:  # an activation the codemod cannot read: left alone, reported
                continue
            split_name = (fn if fn != "linear" else None) if site.repeated else names.get(id(site.node))
            decision = self.plan_weighted(site, args, name, fn, split_name)
            if decision is not None:
                decisions[id(site.node)] = decision
        return decisions

    def split_names(self, fused: list[tuple[Site, str | None]]) -> dict[int, str]:
        """relu1, relu2, ... (``softmax`` when alone), as :mod:`qconvert.model.plan` names them."""
        return split_activation_names([(id(site.node), fn) for site, fn in fused], set(self.taken))

    def _open(self, site: Site, args: Args) -> tuple[str | None, bool]:
        """The layer's literal name, and False when it is settled already (name unreadable, or kept float)."""
        name, ok = self.layer_name(site, args)
        if not ok:
            return name, False
        rule, _, keep = self.decide(LayerView(name or "", site.class_name), name is not None)
        if keep and rule is not None:
            self.note(site, "QC200", f"{site.class_name}{_named(name)}: kept float by {rule.label}")
            return name, False
        return name, True

    def plan_other(self, site: Site, args: Args) -> None:
        """A layer class without a rewriter: noted (QC202) unless a rule keeps it float."""
        name, open_ = self._open(site, args)
        if open_:
            self.note(site, "QC202", f"{site.class_name}{_named(name)}: qconvert has no QKeras rewriter for it; left float")
        return None

    def prepare_weighted(self, site: Site, args: Args) -> tuple[Site, Args, str | None, str | None] | None:
        """The checks that do not depend on split naming; None when the layer is left as it is (a function of
        None: left as it is, but its activation, which the codemod cannot read, counts in the split naming)."""
        name, open_ = self._open(site, args)
        if not open_:
            return None
        fn = "linear"
        if "activation" in args.by_name:
            value = args.by_name["activation"].value
            known = self.function_of(value, site)
            if known is None:
                self.note(site, "QC205", f"{site.class_name}{_named(name)}: activation={_code(value)} is not an "
                          "activation the codemod knows; left unconverted (split names after it count it)")
                return site, args, name, None
            fn = known
        if fn != "linear" and site.context == "other":
            self.note(site, "QC204", f"{site.class_name}{_named(name)}: activation={fn!r} cannot be split out here (the "
                      "layer is not in model.add(...), a Sequential list, or called in place); left unconverted")
            return None
        q_class = N.WEIGHTED[site.class_name][0]
        refused = []
        for key, arg in args.by_name.items():
            if key in N.Q_ACCEPTS[q_class] or key == "activation":
                continue
            if key in N.INERT_KWARGS and literal(arg.value) == N.INERT_KWARGS[key]:
                continue
            refused.append(key)
        if refused:
            self.note(site, "QC203", f"{site.class_name}{_named(name)}: {q_class} does not accept "
                      f"{', '.join(sorted(refused))}; left unconverted")
            return None
        return site, args, name, fn

    def plan_weighted(self, site: Site, args: Args, name: str | None, fn: str, split_name: str | None) -> Decision | None:
        """Dense/Conv: the Q-class with its quantizers and the activation split out as ``split_name``; None when
        nothing changes."""
        view = LayerView(name or "", site.class_name)
        rule, settings, _ = self.decide(view, name is not None)
        q_class, roles = N.WEIGHTED[site.class_name]
        use_bias = literal(args.by_name["use_bias"].value) if "use_bias" in args.by_name else True
        specs: dict[str, QuantizerSpec] = {}
        for role in roles:
            if role == "bias" and use_bias is False:
                continue
            spec = settings.weight(role)
            if spec is not None:
                specs[role] = spec
        inert = frozenset(k for k in args.by_name if k in N.INERT_KWARGS and k not in N.Q_ACCEPTS[q_class])
        target, quantizers = None, ()
        if specs:
            target, quantizers = q_class, tuple(specs.items())
            given = ", ".join(f"{role}={spec}" for role, spec in specs.items())
            self.note(site, "QC100", f"{site.class_name}{_named(name)} -> {q_class} ({self.label(rule)}: {given})")
        else:
            self.note(site, "QC201", f"{site.class_name}{_named(name)}: no rule gives it quantizers; left float")
        split = None
        if split_name is not None:
            split = self.plan_split(split_name, fn, view, name is not None)
            what = f"QActivation({split.spec})" if split.spec is not None else f"a float Activation('{fn}')"
            named = ("without a name (this line builds a layer each time it runs; Keras names each)" if site.repeated
                     else f"named {split.name!r}")
            self.note(site, "QC101", f"activation={fn!r} split out as {what} {named}" + (f" ({split.note})" if split.note else ""))
            if split.status == "uncovered":
                self.note(site, "QC201", f"activation {split.name!r}: {split.note}; left float")
        drop = inert | ({"activation"} if split is not None else frozenset())
        if target is None and not drop:
            return None
        return Decision(site, target, quantizers, frozenset(drop), split=split, quote=_quote_of(args))

    def plan_split(self, name: str, fn: str, parent: LayerView, named: bool) -> Split:
        """The activation ``fn`` split out of ``parent`` as ``name`` (``named``: the parent's name is known)."""
        rule, settings, keep = self._count(decide_split(self.rules, name, fn, parent, parent_named=named))
        if keep and rule is not None:
            return Split(name, fn, None, "keep", f"kept float by {rule.label}")
        choice = choose_quantizer(fn, {}, settings.activation)
        return Split(name, fn, choice.spec if choice.status == "quantize" else None, choice.status, choice.note)

    def plan_activation_layer(self, site: Site, args: Args) -> Decision | None:
        """Activation/ReLU/LeakyReLU → ``QActivation`` when the rules give its function a quantizer."""
        name, ok = self.layer_name(site, args)
        if not ok:
            return None
        params = set(N.KERAS_POSITIONAL[site.class_name]) | ({"alpha"} if site.class_name == "LeakyReLU" else set())
        refused = sorted(k for k in args.by_name if k not in params and k not in N.BASE_KWARGS)
        if refused:
            self.note(site, "QC203", f"{site.class_name}{_named(name)}: QActivation does not accept "
                      f"{', '.join(refused)}; left unconverted")
            return None
        config: dict[str, Any] = {}
        for key in sorted(params & set(args.by_name)):
            value = args.by_name[key].value
            if key == "activation":
                fn = self.function_of(value, site)
                if fn is None:
                    self.note(site, "QC205", f"Activation{_named(name)}: {_code(value)} is not an activation the "
                              "codemod knows; left unconverted")
                    return None
                config["activation"] = fn
                continue
            value_literal = literal(value)
            if value_literal is NOT_LITERAL:
                self.note(site, "QC205", f"{site.class_name}{_named(name)}: {key} is not a literal; left unconverted")
                return None
            config["negative_slope" if key == "alpha" else key] = value_literal
        described = activation_of(site.class_name, config)
        fn = described[0] if described else None
        rule, settings, keep = self.decide(LayerView(name or "", site.class_name, fn), name is not None)
        if keep and rule is not None:
            self.note(site, "QC200", f"{site.class_name}{_named(name)}: kept float by {rule.label}")
            return None
        if described is None:
            self.note(site, "QC211", f"{site.class_name}{_named(name)} with these arguments has no QKeras quantizer; stays float")
            return None
        choice = choose_quantizer(described[0], described[1], settings.activation)
        if choice.status == "quantize":
            self.note(site, "QC102", f"{site.class_name}{_named(name)} -> QActivation({choice.spec}) ({self.label(rule)})")
            return Decision(site, target="QActivation", drop=frozenset(params), activation_arg=choice.spec,
                            quote=_quote_of(args))
        code = "QC201" if choice.status == "uncovered" else "QC211"
        self.note(site, code, f"{site.class_name}{_named(name)} ({described[0]}): {choice.note}")
        return None

    def plan_batchnorm(self, site: Site, args: Args) -> Decision | None:
        """BatchNormalization → ``QBatchNormalization`` under ``batchnorm: quantize`` (folding needs weights)."""
        name, ok = self.layer_name(site, args)
        if not ok:
            return None
        rule, settings, keep = self.decide(LayerView(name or "", "BatchNormalization"), name is not None)
        what = f"BatchNormalization{_named(name)}"
        if keep and rule is not None:
            self.note(site, "QC200", f"{what}: kept float by {rule.label}")
            return None
        mode = settings.batchnorm
        if mode == "fold":
            self.note(site, "QC210", f"{what}: 'batchnorm: fold' needs trained weights; left for the model "
                      "conversion (qconvert MODEL --rules ...) to fold")
            return None
        if mode == "float":
            self.note(site, "QC211", f"{what}: kept float as the rules ask")
            return None
        if mode is None:
            self.note(site, "QC201", f"{what}: no rule sets 'batchnorm'; left float")
            return None
        refused = sorted(k for k in args.by_name if k not in N.Q_ACCEPTS["QBatchNormalization"])
        if refused:
            self.note(site, "QC203", f"{what}: QBatchNormalization does not accept {', '.join(refused)}; left unconverted")
            return None
        specs = tuple((role, getattr(settings, role)) for role in N.BN_ROLES if getattr(settings, role) is not None)
        given = ", ".join(f"{role}={spec}" for role, spec in specs) or "QKeras's default quantizers"
        self.note(site, "QC100", f"{what} -> QBatchNormalization ({self.label(rule)}: {given})")
        return Decision(site, target="QBatchNormalization", quantizers=specs, quote=_quote_of(args))
