"""Rules × layers → a :class:`Plan`: what happens to every layer, and why.

Planning reads the model and never changes it. ``qconvert rules show`` prints a
plan; the rewriter applies one. Nested models are recursed into: their layers
are planned with the same rules (matched by their own names) and keep their
place inside the nested model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import RuleError, did_you_mean
from ..quantizers import QuantizerSpec
from ..rules import BN_ROLES, LayerView, PruneSpec, Rule, RuleDecision, RuleSet, Settings, decide, decide_split
from .fold import Fold, find_folds
from .graph import Graph, graph_of
from .rewriters.activation import ACTIVATION_LAYERS, activation_of, choose_quantizer
from .rewriters.recurrent import RECURRENT
from .rewriters.weighted import WEIGHTED

if TYPE_CHECKING:
    from .snapshot import Snapshot

Key = TypeVar("Key", bound=Hashable)

__all__ = ["NESTED_CLASSES", "ActivationStep", "LayerPlan", "Plan", "plan_model", "split_activation_names"]

NESTED_CLASSES = ("Functional", "Sequential", "Model")
FOLDABLE = tuple(WEIGHTED)

#: Actions. quantize: becomes a Q-layer; keep: a rule keeps it float; float:
#: stays float, the note says why; fold: a BatchNormalization folded into the
#: layer before it; uncovered: no rule gives it quantizers; unsupported: has
#: weights but qconvert has no rewriter; unchanged: nothing to quantize
#: (Flatten, Add, pooling, ...); nested: a model inside the model.
LEFTOVER_ACTIONS = frozenset({"uncovered", "unsupported"})
#: Why a layer family with weights stays float, where there is more to say than "no rewriter".
_UNSUPPORTED_NOTES = {
    "Bidirectional": "Bidirectional is not rewritten (qkeras-v3's QBidirectional is not bridged to hls4ml); kept float",
    "Embedding": "QKeras has no quantized Embedding; kept float",
}



def split_activation_names(fused: list[tuple[Key, str | None]], taken: set[str]) -> dict[Key, str]:
    """Names for activations split out of layers, in order: ``relu1, relu2, ...``, or ``softmax`` when a
    function occurs once (the seed's naming). ``fused`` pairs a key with the function name; names in
    ``taken`` are avoided. Shared by the graph rewriter and the source codemod.

    A function of None (the codemod cannot read it, e.g. ``activation=act``) gets no name but holds a
    place in every function's numbering: whatever the saved model says it is, the names of the others
    are then those the model route gives them (``relu2`` after it, never ``relu``).
    """
    wild = sum(fn is None for _, fn in fused)
    counts = Counter(fn for _, fn in fused if fn is not None)
    taken = set(taken)
    seen: Counter[str] = Counter()
    names: dict[Key, str] = {}
    for key, fn in fused:
        if fn is None:
            seen.update(counts.keys())
            continue
        seen[fn] += 1
        k, n = seen[fn], counts[fn] + wild
        candidate = fn if n == 1 else f"{fn}{k}"
        while candidate in taken:
            k += n
            candidate = f"{fn}{k}" if n > 1 else f"{fn}_{k}"
        taken.add(candidate)
        names[key] = candidate
    return names


@dataclass(frozen=True)
class ActivationStep:
    """The activation split out of a layer's ``activation=`` argument, as its own layer.

    ``name``: the new layer's name (``relu1``, ``softmax``); ``function``: the
    Keras activation (``custom`` when not a name); ``status``: quantize | keep |
    float | unquantizable | uncovered; ``spec``: its quantizer (None unless
    quantized or a pass-through); ``rule``: the label of the deciding rule
    (``defaults``, None when none); ``note``: why it stays float, if it does.
    """

    name: str
    function: str
    status: str  # quantize | keep | float | unquantizable | uncovered
    spec: QuantizerSpec | None
    rule: str | None
    note: str = ""

    @property
    def target(self) -> str:
        """The class of the split layer: ``QActivation`` when quantized, else ``Activation``."""
        return "QActivation" if self.status == "quantize" else "Activation"


@dataclass(frozen=True)
class LayerPlan:
    """What happens to one layer of the model, and why.

    ``path``: the enclosing nested models, then the layer's name; ``class_name``:
    its Keras class; ``action``: quantize | keep | float | fold | uncovered |
    unsupported | unchanged | nested (see :data:`LEFTOVER_ACTIONS` for the two
    that ``--strict`` refuses); ``target``: its class after conversion (``""``
    when folded away); ``rule``: the label of the deciding rule (``defaults``;
    None when no rule decided); ``quantizers``: ``(role, spec)`` pairs in the
    layer's role order; ``split``: the activation split out of ``activation=``;
    ``fold_into``/``folded_bn``: the two ends of a BatchNormalization fold (``input_bn`` for one before
    the layer, folded forward);
    ``note``: a one-line reason shown in plans; ``prune``: the pruning of its
    kernels during QAT (only with sparsity > 0).
    """

    path: tuple[str, ...]  # enclosing nested models, then the layer's name
    class_name: str
    action: str
    target: str  # class after conversion ("" when folded away)
    rule: str | None = None
    quantizers: tuple[tuple[str, QuantizerSpec], ...] = ()
    split: ActivationStep | None = None
    fold_into: str | None = None  # BatchNormalization: the layer it folds into
    folded_bn: str | None = None  # Dense/Conv: the BatchNormalization after it, folded into it
    input_bn: str | None = None  # Dense/Conv1D/Conv2D: the BatchNormalization before it, folded forward into it
    note: str = ""
    prune: PruneSpec | None = None  # magnitude pruning of its kernels during QAT (sparsity > 0)

    @property
    def name(self) -> str:
        """The layer's own name (the last element of ``path``)."""
        return self.path[-1]

    @property
    def qualified_name(self) -> str:
        """``outer/inner/layer``: the path joined with slashes (unique within the model)."""
        return "/".join(self.path)

    @property
    def specs(self) -> dict[str, QuantizerSpec]:
        """``quantizers`` as a mapping, role → spec."""
        return dict(self.quantizers)

    @property
    def leftover(self) -> bool:
        """Left float where the rules did not decide it (``--strict`` refuses)."""
        return self.action in LEFTOVER_ACTIONS or (self.split is not None and self.split.status == "uncovered")


@dataclass(frozen=True)
class Plan:
    """Rules × layers: what the rewriter will do to every layer of one model (made by :func:`plan_model`).

    ``ruleset``: the rules it was planned with; ``model_name``; ``layers``: one
    :class:`LayerPlan` per layer in model order, nested models followed by their
    layers; ``input_quantizer``: the QActivation put after each input (None: none,
    or the inputs are quantized already); ``input_names``: the model's input layers.
    """

    ruleset: RuleSet
    model_name: str
    layers: tuple[LayerPlan, ...]
    input_quantizer: QuantizerSpec | None = None
    input_names: tuple[str, ...] = field(default=())

    def get(self, *path: str) -> LayerPlan:
        """The plan of the layer at ``path`` (``get("dense")``, ``get("block", "dense")``). Raises :class:`KeyError`."""
        for item in self.layers:
            if item.path == path:
                return item
        raise KeyError("/".join(path))

    def leftovers(self) -> list[LayerPlan]:
        """The layers left float where the rules did not decide them (see :attr:`LayerPlan.leftover`)."""
        return [p for p in self.layers if p.leftover]


class _Planner:
    def __init__(self, ruleset: RuleSet, snapshot: Snapshot) -> None:
        self.rules = ruleset
        self.snapshot = snapshot
        self.used: set[int] = set()

    def decide(self, view: LayerView) -> tuple[Rule | None, Settings, bool]:
        """:func:`qconvert.rules.decide`, counting the rules that match (each must match some layer)."""
        return self._count(decide(self.rules, view))

    def _count(self, decision: RuleDecision) -> tuple[Rule | None, Settings, bool]:
        self.used.update(decision.matched)
        return decision.rule, decision.settings, decision.keep

    def label(self, rule: Rule | None, used_defaults: bool) -> str | None:
        if rule is not None:
            return rule.label
        return "defaults" if used_defaults else None

    # -- one scope (a model, or a model nested in it) --
    def plan_scope(self, model: Any, prefix: tuple[str, ...]) -> list[LayerPlan]:
        graph = graph_of(model)
        folds = {f.bn: f for f in find_folds(model, graph, self.snapshot.config, FOLDABLE)}
        after = {f.into: f.bn for f in folds.values() if not f.forward}
        before = {f.into: f.bn for f in folds.values() if f.forward}
        layers = {layer.name: layer for layer in model.layers}
        split_names = self.split_names(model, layers)
        out: list[LayerPlan] = []
        for layer in model.layers:
            path = prefix + (layer.name,)
            class_name = type(layer).__name__
            if class_name == "InputLayer":
                continue
            config = self.snapshot.config(layer)
            if type(layer).__module__.startswith("qkeras"):
                out.append(LayerPlan(path, class_name, "unchanged", class_name, note="already a QKeras layer"))
            elif class_name in NESTED_CLASSES or (hasattr(layer, "layers") and hasattr(layer, "get_layer")):
                out.append(LayerPlan(path, class_name, "nested", class_name))
                out += self.plan_scope(layer, path)
            elif class_name in WEIGHTED or class_name in RECURRENT:
                out.append(self.plan_weighted(path, class_name, config, after.get(layer.name), split_names.get(layer.name),
                                              before.get(layer.name)))
            elif class_name in ACTIVATION_LAYERS:
                out.append(self.plan_activation_layer(path, class_name, config))
            elif class_name == "BatchNormalization":
                out.append(self.plan_batchnorm(path, config, folds))
            else:
                view = LayerView(layer.name, class_name)
                rule, _, _ = self.decide(view)
                if layer.weights:
                    out.append(LayerPlan(path, class_name, "unsupported", class_name, self.label(rule, False),
                                         note=_UNSUPPORTED_NOTES.get(class_name, f"qconvert has no QKeras rewriter for {class_name}; kept float")))
                else:
                    out.append(LayerPlan(path, class_name, "unchanged", class_name))
        return out

    def split_names(self, model: Any, layers: dict[str, Any]) -> dict[str, str]:
        """Names for activations split out of ``activation=``: relu1, relu2, ... (``softmax`` when alone)."""
        fused: list[tuple[str, str]] = []
        for layer in model.layers:
            class_name = type(layer).__name__
            if class_name not in WEIGHTED:
                continue
            fn = self.snapshot.config(layer).get("activation", "linear")
            if fn != "linear" and not self.kept(layer.name, class_name):
                fused.append((layer.name, fn if isinstance(fn, str) else "custom"))
        return split_activation_names(fused, set(layers))

    def kept(self, name: str, class_name: str) -> bool:
        return decide(self.rules, LayerView(name, class_name)).keep

    def plan_weighted(self, path: tuple[str, ...], class_name: str, config: dict[str, Any],
                      folded_bn: str | None, split_name: str | None, input_bn: str | None = None) -> LayerPlan:
        view = LayerView(path[-1], class_name)
        rule, settings, keep = self.decide(view)
        q_class, roles = {**WEIGHTED, **RECURRENT}[class_name]
        if keep:
            return LayerPlan(path, class_name, "keep", class_name, rule.label if rule else None, folded_bn=folded_bn,
                             input_bn=input_bn,
                             note=rule.note or "" if rule else "")
        specs: dict[str, QuantizerSpec] = {}
        no_bias = not config.get("use_bias", True) and folded_bn is None and input_bn is None  # a fold gives a bias
        for role in roles:
            if role == "bias" and no_bias:
                continue
            spec = settings.weight(role)
            if spec is not None:
                specs[role] = spec
        split = None
        fn = config.get("activation", "linear")
        if split_name is not None:
            split = self.plan_split(split_name, fn, view)
        used_defaults = rule is None and bool(specs)
        if not specs:
            return LayerPlan(path, class_name, "uncovered", class_name, None, split=split, folded_bn=folded_bn,
                             input_bn=input_bn,
                             note="no rule gives it quantizers; kept float")
        missing = [r for r in roles if r not in specs and not (r == "bias" and no_bias)]
        note = f"float {', '.join(missing)}: no rule sets it" if missing else (rule.note or "" if rule else "")
        prune = settings.prune if settings.prune is not None and settings.prune.sparsity > 0 else None
        if config.get("padding") == "causal":
            note = "; ".join(filter(None, [note, f"causal: {path[-1]}_causal_pad (left zeros) + valid"]))
        return LayerPlan(path, class_name, "quantize", q_class, self.label(rule, used_defaults),
                         tuple(specs.items()), split=split, folded_bn=folded_bn, input_bn=input_bn, note=note,
                         prune=prune)

    def plan_split(self, name: str, fn: Any, parent: LayerView) -> ActivationStep:
        if not isinstance(fn, str):
            return ActivationStep(name, "custom", "unquantizable", None, None, "custom activation function; kept float")
        rule, settings, keep = self._count(decide_split(self.rules, name, fn, parent))
        if keep:
            return ActivationStep(name, fn, "keep", None, rule.label if rule else None, rule.note or "" if rule else "")
        choice = choose_quantizer(fn, {}, settings.activation)
        label = self.label(rule, settings.activation is not None)
        return ActivationStep(name, fn, choice.status, choice.spec, label, choice.note)

    def plan_activation_layer(self, path: tuple[str, ...], class_name: str, config: dict[str, Any]) -> LayerPlan:
        described = activation_of(class_name, config)
        fn = described[0] if described else None
        rule, settings, keep = self.decide(LayerView(path[-1], class_name, fn))
        if keep:
            return LayerPlan(path, class_name, "keep", class_name, rule.label if rule else None)
        if described is None:
            return LayerPlan(path, class_name, "float", class_name, None,
                             note=f"{class_name} with these arguments has no QKeras quantizer; kept float")
        choice = choose_quantizer(described[0], described[1], settings.activation)
        label = self.label(rule, settings.activation is not None)
        if choice.status == "quantize":
            return LayerPlan(path, class_name, "quantize", "QActivation", label, (("activation", choice.spec),))
        action = "uncovered" if choice.status == "uncovered" else "float"
        return LayerPlan(path, class_name, action, class_name, label, note=choice.note)

    def plan_batchnorm(self, path: tuple[str, ...], config: dict[str, Any], folds: dict[str, Fold]) -> LayerPlan:
        rule, settings, keep = self.decide(LayerView(path[-1], "BatchNormalization"))
        label = self.label(rule, settings.batchnorm is not None)
        if keep:
            return LayerPlan(path, "BatchNormalization", "keep", "BatchNormalization", label)
        mode = settings.batchnorm
        if mode == "fold":
            fold = folds.get(path[-1])
            if fold is not None:
                how = "folded forward into" if fold.forward else "folded into"
                return LayerPlan(path, "BatchNormalization", "fold", "", label, fold_into=fold.into,
                                 note=f"{how} {fold.into}")
            return LayerPlan(path, "BatchNormalization", "uncovered", "BatchNormalization", label,
                             note="cannot fold: it must follow a linear Dense/Conv used only by it, or feed only a "
                             "Dense/valid Conv1D/Conv2D; kept float")
        if mode == "quantize":
            specs = tuple((role, getattr(settings, role)) for role in BN_ROLES if getattr(settings, role) is not None)
            return LayerPlan(path, "BatchNormalization", "quantize", "QBatchNormalization", label, specs)
        if mode == "float":
            return LayerPlan(path, "BatchNormalization", "float", "BatchNormalization", label, note="kept float as the rules ask")
        return LayerPlan(path, "BatchNormalization", "uncovered", "BatchNormalization", None,
                         note="no rule sets 'batchnorm'; kept float")


def plan_model(model: Any, ruleset: RuleSet, *, require_all_rules_used: bool = True,
               snapshot: Snapshot | None = None) -> Plan:
    """Decide, for every layer of ``model``, what ``ruleset`` makes of it.

    ``snapshot``: the conversion's :class:`~qconvert.model.snapshot.Snapshot` (layer configs read once across
    plan, calibration and rewrite); None: a fresh one. Raises :class:`RuleError` for a rule that matches no
    layer of the model.
    """
    from .snapshot import Snapshot

    planner = _Planner(ruleset, snapshot if snapshot is not None else Snapshot())
    layers = planner.plan_scope(model, ())
    if require_all_rules_used:
        for rule in ruleset.rules:
            if rule.index not in planner.used:
                raise RuleError(f"matches no layer of model {model.name!r}{_nearest(rule, layers, model)}",
                                source=ruleset.source, line=rule.line, key=f"rules[{rule.index}].match")
    graph = graph_of(model)
    input_quantizer = None if _inputs_quantized(model, graph) else ruleset.input
    return Plan(ruleset, model.name, tuple(layers), input_quantizer, tuple(ref.layer for ref in graph.inputs))


def _nearest(rule: Rule, layers: list[LayerPlan], model: Any) -> str:
    """What a rule matching nothing may have meant: the closest layer name (or type), else the model's layers
    (every layer of the model, also those no rule can touch, such as an InputLayer or an Activation)."""
    names = list(dict.fromkeys([*(layer.name for layer in model.layers), *(layer.path[-1] for layer in layers)]))
    types = list(dict.fromkeys([*(layer.class_name for layer in layers), *(type(x).__name__ for x in model.layers)]))
    hints = [did_you_mean(t, types) for t in rule.match.type if t not in types]
    if rule.match.name is not None and rule.match.name not in names:
        hints.insert(0, did_you_mean(rule.match.name, names))
    hint = next((h for h in hints if h), "")
    if hint:
        return hint
    shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
    return f"; its layers: {shown}"


def _inputs_quantized(model: Any, graph: Graph) -> bool:
    """Every input already goes straight into a QActivation (a converted model): none is inserted again."""
    classes = {layer.name: type(layer).__name__ for layer in model.layers}
    for ref in graph.inputs:
        users = [c.layer for c in graph.calls if any(r.layer == ref.layer for r in c.inputs())]
        if not users or any(classes.get(u) != "QActivation" for u in users):
            return False
    return True
