"""The frozen data classes a rule file is validated into, and the vocabularies it is checked against.

Nothing here parses YAML (see :mod:`.builder`) or imports Keras: these are the
values the planners (:mod:`qconvert.model.plan`, :mod:`qconvert.source.plan`)
read, through :func:`qconvert.rules.decide`.

Precedence (:meth:`RuleSet.select`): among the rules whose ``match`` selects a
layer, the most specific wins — ``name`` (4) over ``regex`` (3) over ``glob`` (2)
over ``type`` and ``activation`` (1); with equal rank, the rule with more
selectors; with a full tie, the rule listed first. Keys the winning rule leaves
out come from ``defaults``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace

from ..errors import RuleError
from ..quantizers import QuantizerSpec

__all__ = [
    "BATCHNORM_MODES",
    "BN_ROLES",
    "KERNEL_FALLBACK_ROLES",
    "KNOWN_ACTIVATIONS",
    "SELECTOR_RANK",
    "WEIGHT_ROLES",
    "ActivationPolicy",
    "LayerView",
    "PruneSpec",
    "Rule",
    "RuleSet",
    "Selector",
    "Settings",
]

#: Keras 3 activation names a rule may name (``match: {activation: ...}`` or
#: per-function activation settings).
KNOWN_ACTIVATIONS = frozenset(
    {
        "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish",
        "hard_silu", "hard_swish", "mish", "tanh", "hard_tanh", "sigmoid",
        "hard_sigmoid", "softmax", "log_softmax", "softplus", "softsign",
        "exponential", "linear", "celu", "glu", "squareplus", "sparse_plus",
        "soft_shrink", "hard_shrink", "tanh_shrink", "threshold", "sparsemax",
    }
)  # fmt: skip
#: The values of ``batchnorm:``: fold into the layer before, QBatchNormalization, or leave float.
BATCHNORM_MODES = ("fold", "quantize", "float")
#: BatchNormalization's quantizer roles, in the order of its weights.
BN_ROLES = ("gamma", "beta", "mean", "variance")
#: Every weight quantizer role a rule can set: the rule-file keys, and the fields of :class:`Settings` that
#: hold a :class:`QuantizerSpec` (``activation`` aside). ``state`` is an RNN's hidden state.
WEIGHT_ROLES = ("kernel", "bias", "depthwise", "pointwise", "recurrent", "state", *BN_ROLES)
#: Roles that take ``kernel``'s quantizer when no rule sets them (see :meth:`Settings.weight`).
KERNEL_FALLBACK_ROLES = ("depthwise", "pointwise", "recurrent")
#: The rank of each selector in the precedence (higher wins).
SELECTOR_RANK = {"name": 4, "regex": 3, "glob": 2, "type": 1, "activation": 1}


@dataclass(frozen=True)
class LayerView:
    """What a selector can see of a layer.

    ``name``: the layer's name (``""`` when unknown, e.g. source code without a
    literal ``name=``); ``type``: the Keras class name (``Dense``);
    ``activation``: the function it computes, for activation layers.
    """

    name: str
    type: str
    activation: str | None = None


@dataclass(frozen=True)
class Selector:
    """``match:`` of a rule: every selector given must hold (``type`` and ``activation``: any of the names).

    ``name`` is compared exactly, ``glob`` with :func:`fnmatch.fnmatchcase`,
    ``regex`` with :func:`re.fullmatch`; unset selectors are None or ``()``.
    """

    type: tuple[str, ...] = ()
    name: str | None = None
    glob: str | None = None
    regex: str | None = None
    activation: tuple[str, ...] = ()

    def matches(self, layer: LayerView) -> bool:
        """Whether every selector given holds for ``layer``."""
        if self.type and layer.type not in self.type:
            return False
        if self.name is not None and layer.name != self.name:
            return False
        if self.glob is not None and not fnmatch.fnmatchcase(layer.name, self.glob):
            return False
        if self.regex is not None and not re.fullmatch(self.regex, layer.name):
            return False
        return not (self.activation and layer.activation not in self.activation)

    @property
    def by_name(self) -> bool:
        """Selects by the layer's name (``name``, ``glob`` or ``regex``): it cannot hold for an unknown name."""
        return self.name is not None or self.glob is not None or self.regex is not None

    @property
    def specificity(self) -> tuple[int, int]:
        """``(highest rank of the selectors used, number used)``: the first two keys of the precedence."""
        used = [k for k in SELECTOR_RANK if getattr(self, k) not in (None, ())]
        return (max(SELECTOR_RANK[k] for k in used), len(used))

    def __str__(self) -> str:
        parts = []
        for key in SELECTOR_RANK:
            value = getattr(self, key)
            if value in (None, ()):
                continue
            value = "|".join(value) if isinstance(value, tuple) else value
            parts.append(f"{key}={value}")
        return ", ".join(parts)


@dataclass(frozen=True)
class ActivationPolicy:
    """How activations are quantized.

    ``default`` (the shorthand ``activation: quantized_relu(6)``) applies to the
    functions its quantizer family fits (see :mod:`qconvert.model.rewriters.activation`);
    ``by_function`` (``activation: {relu: ..., tanh: ...}``) names the quantizer
    for each function explicitly and wins over the shorthand.
    """

    default: QuantizerSpec | None = None
    by_function: tuple[tuple[str, QuantizerSpec], ...] = ()

    def explicit(self, function: str) -> QuantizerSpec | None:
        """The quantizer ``by_function`` names for ``function``, else None."""
        return dict(self.by_function).get(function)

    def specs(self) -> list[QuantizerSpec]:
        """Every quantizer the policy holds (the shorthand first)."""
        return ([self.default] if self.default is not None else []) + [s for _, s in self.by_function]

    def __str__(self) -> str:
        if self.default is not None:
            return str(self.default)
        return ", ".join(f"{fn}: {spec}" for fn, spec in self.by_function)


@dataclass(frozen=True)
class PruneSpec:
    """``prune:`` — magnitude pruning of a layer's kernels during QAT (``--epochs``).

    ``sparsity``: the fraction of each kernel's weights that end exactly zero
    (0 ≤ sparsity < 1; 0 prunes nothing, so a rule can switch off a default).
    Epochs count as Keras prints them, from 1: the masks grow at the end of
    each epoch ``start_epoch`` … ``end_epoch`` along the polynomial schedule of
    Zhu & Gupta (2017), and stay fixed afterwards (see
    :mod:`qconvert.train.prune`). ``end_epoch`` None: half of ``--epochs``.
    """

    sparsity: float
    start_epoch: int = 1
    end_epoch: int | None = None

    def __str__(self) -> str:
        if not self.sparsity:
            return "no pruning"
        end = self.end_epoch if self.end_epoch is not None else "epochs/2"
        return f"prune {100 * self.sparsity:g}% (epochs {self.start_epoch}-{end})"


@dataclass(frozen=True)
class Settings:
    """The keys shared by ``defaults`` and rules; None means: not set here.

    One :class:`QuantizerSpec` field per weight role (:data:`WEIGHT_ROLES`;
    ``recurrent``: an RNN's recurrent kernel, defaults to ``kernel``; ``state``:
    an RNN's state, float unless set), ``activation`` (an
    :class:`ActivationPolicy`), ``batchnorm`` (one of :data:`BATCHNORM_MODES`)
    and ``prune`` (a :class:`PruneSpec`).
    """

    kernel: QuantizerSpec | None = None
    bias: QuantizerSpec | None = None
    depthwise: QuantizerSpec | None = None
    pointwise: QuantizerSpec | None = None
    recurrent: QuantizerSpec | None = None
    state: QuantizerSpec | None = None
    activation: ActivationPolicy | None = None
    batchnorm: str | None = None
    gamma: QuantizerSpec | None = None
    beta: QuantizerSpec | None = None
    mean: QuantizerSpec | None = None
    variance: QuantizerSpec | None = None
    prune: PruneSpec | None = None

    def over(self, base: Settings) -> Settings:
        """These settings, with the unset ones taken from ``base``."""
        return replace(base, **{f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None})

    def weight(self, role: str) -> QuantizerSpec | None:
        """The quantizer of weight ``role``: its own key, else (for :data:`KERNEL_FALLBACK_ROLES`) ``kernel``'s."""
        spec = getattr(self, role)
        if spec is None and role in KERNEL_FALLBACK_ROLES:
            return self.kernel
        return spec

    def specs(self) -> list[QuantizerSpec]:
        """Every quantizer these settings hold: the weight roles', then the activation policy's."""
        out = [v for v in (getattr(self, role) for role in WEIGHT_ROLES) if v is not None]
        return out + (self.activation.specs() if self.activation is not None else [])


@dataclass(frozen=True)
class Rule:
    """One entry of ``rules:``.

    ``index``: its place in the list (0-based; ``rules[index]`` in error keys);
    ``line``: where it starts in the file; ``match``: its :class:`Selector`;
    ``settings``: what it sets (unset keys come from ``defaults``); ``keep``:
    ``keep: true`` leaves the layer float (and sets nothing); ``note``: free
    text shown in plans.
    """

    index: int
    line: int
    match: Selector
    settings: Settings = field(default_factory=Settings)
    keep: bool = False
    note: str | None = None

    @property
    def label(self) -> str:
        """``rule 2 (line 14)``: how plans and reports name the rule (1-based)."""
        return f"rule {self.index + 1} (line {self.line})"


@dataclass(frozen=True)
class RuleSet:
    """A validated rule file.

    ``source``: the file (or ``<rules>``) errors name; ``sha256``: of its text
    (provenance); ``version``: 1; ``input``: the quantizer put after each model
    input (None: none); ``defaults``: the settings of every layer no rule
    overrides; ``rules``: in file order. Built by
    :func:`qconvert.rules.loads_rules`, never by hand in user code.
    """

    source: str
    sha256: str
    version: int
    description: str = ""
    input: QuantizerSpec | None = None
    defaults: Settings = field(default_factory=Settings)
    rules: tuple[Rule, ...] = ()

    def select(self, layer: LayerView, extra: Iterable[Rule] = (), *, named: bool = True) -> Rule | None:
        """The winning rule for ``layer`` by the precedence (module docstring), None when no rule matches.

        ``extra``: rules that match it another way (a split activation inherits
        its parent layer's rules). ``named=False``: the layer's name is unknown,
        so rules that select by name (:attr:`Selector.by_name`) are not candidates.
        """
        candidates = [r for r in self.rules if (named or not r.match.by_name) and r.match.matches(layer)]
        candidates += [r for r in extra if r not in candidates]
        if not candidates:
            return None
        return max(candidates, key=lambda r: (r.match.specificity, -r.index))

    @property
    def uses_auto(self) -> bool:
        """Some quantizer has ``integer: auto`` (resolved by calibration, from a model and data)."""
        every = self.defaults.specs() + [s for r in self.rules for s in r.settings.specs()]
        return any(s.is_auto for s in every + ([self.input] if self.input is not None else []))

    @property
    def needs_data(self) -> bool:
        """Some activation or input quantizer has ``integer: auto``: calibration needs rows of data (weights'
        ``auto`` resolve from the weights alone)."""
        policies = [self.defaults.activation] + [r.settings.activation for r in self.rules]
        every = [s for p in policies if p is not None for s in p.specs()]
        return any(s.is_auto for s in every + ([self.input] if self.input is not None else []))

    def error(self, message: str, rule: Rule | None = None, key: str | None = None) -> RuleError:
        """A :class:`RuleError` located in this file (at ``rule``'s line when given)."""
        return RuleError(message, source=self.source, line=rule.line if rule else None, key=key)
