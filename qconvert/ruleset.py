"""Rule files: YAML in, frozen data classes out, every error with file, line and key.

Shape (``rules/schema.json`` is the JSON Schema for editors)::

    version: 1
    description: free text
    input: quantized_bits(8, 3)           # optional: QActivation after each Input
    defaults:                             # settings for every layer no rule overrides
      kernel: quantized_bits(6, 0, alpha=1)
      bias: quantized_bits(6, 0, alpha=1)
      activation: quantized_relu(6)
      batchnorm: fold                     # fold | quantize | float
      prune: {sparsity: 0.75, start_epoch: 1, end_epoch: 10}   # or prune: 0.75; false: none
    rules:
      - match: {type: Activation, activation: softmax}
        keep: true
      - match: {name: output}
        kernel: {quantizer: quantized_bits, bits: 8, integer: 0, alpha: 1}

Precedence: among the rules whose ``match`` selects a layer, the most specific
wins — ``name`` (4) over ``regex`` (3) over ``glob`` (2) over ``type`` and
``activation`` (1); with equal rank, the rule with more selectors; with a full
tie, the rule listed first. Keys the winning rule leaves out come from
``defaults``. This module imports neither Keras nor QKeras.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from .errors import RuleError
from .quantizers import (
    QuantizerSpec,
    QuantizerSyntaxError,
    parse_quantizer,
    spec_from_mapping,
)

__all__ = [
    "KNOWN_ACTIVATIONS",
    "ActivationPolicy",
    "LayerView",
    "PruneSpec",
    "Rule",
    "RuleSet",
    "Selector",
    "Settings",
    "load_rules",
    "loads_rules",
    "preset_names",
    "presets_dir",
    "resolve_rules_path",
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
BATCHNORM_MODES = ("fold", "quantize", "float")
_WEIGHT_KEYS = ("kernel", "bias", "depthwise", "pointwise", "recurrent", "state", "gamma", "beta", "mean", "variance")
_SELECTOR_RANK = {"name": 4, "regex": 3, "glob": 2, "type": 1, "activation": 1}


# --- YAML with line numbers ----------------------------------------------------
class _Map(dict):
    """A mapping that remembers the line of each key (1-based)."""

    line: int = 0
    lines: dict[str, int]


class _Seq(list):
    line: int = 0
    lines: list[int]


def _from_node(node: yaml.Node, source: str) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = _Map()
        out.line, out.lines = line, {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise RuleError("keys must be plain strings", source=source, line=key_node.start_mark.line + 1)
            key = key_node.value
            if key in out:
                raise RuleError("duplicate key", source=source, line=key_node.start_mark.line + 1, key=key)
            out[key] = _from_node(value_node, source)
            out.lines[key] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = _Seq(_from_node(n, source) for n in node.value)
        seq.line, seq.lines = line, [n.start_mark.line + 1 for n in node.value]
        return seq
    return yaml.SafeLoader("").construct_object(node)  # scalars only: safe


def _parse_yaml(text: str, source: str) -> Any:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RuleError(f"malformed YAML: {problem}", source=source, line=mark.line + 1 if mark else None) from None
    if node is None:
        raise RuleError("the rule file is empty", source=source)
    return _from_node(node, source)


# --- data classes --------------------------------------------------------------
@dataclass(frozen=True)
class LayerView:
    """What a selector can see of a layer: name, Keras class, activation function."""

    name: str
    type: str
    activation: str | None = None


@dataclass(frozen=True)
class Selector:
    """``match:`` of a rule. Every selector given must hold."""

    type: tuple[str, ...] = ()
    name: str | None = None
    glob: str | None = None
    regex: str | None = None
    activation: tuple[str, ...] = ()

    def matches(self, layer: LayerView) -> bool:
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
    def specificity(self) -> tuple[int, int]:
        used = [k for k in _SELECTOR_RANK if getattr(self, k) not in (None, ())]
        return (max(_SELECTOR_RANK[k] for k in used), len(used))

    def __str__(self) -> str:
        parts = []
        for key in _SELECTOR_RANK:
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
        return dict(self.by_function).get(function)

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
    """The keys shared by ``defaults`` and rules. None means: not set here."""

    kernel: QuantizerSpec | None = None
    bias: QuantizerSpec | None = None
    depthwise: QuantizerSpec | None = None
    pointwise: QuantizerSpec | None = None
    recurrent: QuantizerSpec | None = None  # an RNN's recurrent kernel (default: kernel)
    state: QuantizerSpec | None = None  # an RNN's state (default: none, float)
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


@dataclass(frozen=True)
class Rule:
    index: int
    line: int
    match: Selector
    settings: Settings = field(default_factory=Settings)
    keep: bool = False
    note: str | None = None

    @property
    def label(self) -> str:
        return f"rule {self.index + 1} (line {self.line})"


@dataclass(frozen=True)
class RuleSet:
    source: str
    sha256: str
    version: int
    description: str = ""
    input: QuantizerSpec | None = None
    defaults: Settings = field(default_factory=Settings)
    rules: tuple[Rule, ...] = ()

    def select(self, layer: LayerView, extra: Iterable[Rule] = ()) -> Rule | None:
        """The winning rule for ``layer`` (``extra``: rules that match it another way)."""
        candidates = [r for r in self.rules if r.match.matches(layer)]
        candidates += [r for r in extra if r not in candidates]
        if not candidates:
            return None
        return max(candidates, key=lambda r: (r.match.specificity, -r.index))

    @property
    def uses_auto(self) -> bool:
        """Some quantizer has ``integer: auto`` (resolved by calibration, from a model and data)."""
        def specs(settings: Settings) -> list[QuantizerSpec]:
            out = [v for f in fields(settings) if isinstance(v := getattr(settings, f.name), QuantizerSpec)]
            policy = settings.activation
            if policy is not None:
                out += ([policy.default] if policy.default is not None else []) + [s for _, s in policy.by_function]
            return out

        every = specs(self.defaults) + [s for r in self.rules for s in specs(r.settings)]
        return any(s.is_auto for s in every + ([self.input] if self.input is not None else []))

    def error(self, message: str, rule: Rule | None = None, key: str | None = None) -> RuleError:
        return RuleError(message, source=self.source, line=rule.line if rule else None, key=key)


# --- building from parsed YAML --------------------------------------------------
class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, message: str, line: int | None, key: str | None = None) -> RuleError:
        return RuleError(message, source=self.source, line=line, key=key)

    def mapping(self, value: Any, line: int, key: str, allowed: Iterable[str]) -> _Map:
        if not isinstance(value, _Map):
            raise self.fail(f"expected a mapping, got {type(value).__name__}", line, key)
        allowed = tuple(allowed)
        for k in value:
            if k not in allowed:
                raise self.fail(f"unknown key; expected one of {', '.join(allowed)}", value.lines[k], f"{key}.{k}" if key else k)
        return value

    def quantizer(self, value: Any, line: int, key: str, role: str) -> QuantizerSpec:
        try:
            if isinstance(value, str):
                return parse_quantizer(value, role)
            if isinstance(value, _Map):
                return spec_from_mapping(value, role)
        except QuantizerSyntaxError as exc:
            raise self.fail(str(exc), line, key) from None
        raise self.fail(f"expected a quantizer string or mapping, got {value!r}", line, key)

    def activation(self, value: Any, line: int, key: str) -> ActivationPolicy:
        if isinstance(value, _Map) and "quantizer" not in value:
            if not value:
                raise self.fail("needs a quantizer, or a mapping of activation functions to quantizers", line, key)
            by_fn = []
            for fn, spec in value.items():
                if fn not in KNOWN_ACTIVATIONS:
                    raise self.fail(f"unknown activation function {fn!r}", value.lines[fn], f"{key}.{fn}")
                by_fn.append((fn, self.quantizer(spec, value.lines[fn], f"{key}.{fn}", "activation")))
            return ActivationPolicy(by_function=tuple(by_fn))
        return ActivationPolicy(default=self.quantizer(value, line, key, "activation"))

    def prune(self, value: Any, line: int, key: str) -> PruneSpec:
        if value is False or value is None:
            return PruneSpec(0.0)
        raw = value if isinstance(value, _Map) else None
        if raw is not None:
            self.mapping(raw, line, key, ("sparsity", "start_epoch", "end_epoch"))
            if "sparsity" not in raw:
                raise self.fail("missing 'sparsity'", line, key)
            value = raw["sparsity"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            where = raw.lines["sparsity"] if raw is not None else line
            raise self.fail(f"sparsity must be a number in [0, 1), got {value!r}", where, f"{key}.sparsity" if raw is not None else key)
        epochs: dict[str, int] = {}
        for name in ("start_epoch", "end_epoch"):
            if raw is not None and raw.get(name) is not None:
                epoch = raw[name]
                if type(epoch) is not int or epoch < 1:
                    raise self.fail(f"must be an epoch number (from 1), got {epoch!r}", raw.lines[name], f"{key}.{name}")
                epochs[name] = epoch
        if epochs.get("end_epoch", epochs.get("start_epoch", 1)) < epochs.get("start_epoch", 1):
            raise self.fail("end_epoch is before start_epoch", raw.lines["end_epoch"], f"{key}.end_epoch")
        return PruneSpec(float(value), **epochs)

    def settings(self, data: _Map, prefix: str) -> Settings:
        values: dict[str, Any] = {}
        for key in _WEIGHT_KEYS:
            if key in data:
                values[key] = self.quantizer(data[key], data.lines[key], prefix + key, "weight")
        if "activation" in data:
            values["activation"] = self.activation(data["activation"], data.lines["activation"], prefix + "activation")
        if "batchnorm" in data:
            mode = data["batchnorm"]
            if mode not in BATCHNORM_MODES:
                raise self.fail(f"must be one of {', '.join(BATCHNORM_MODES)}, got {mode!r}", data.lines["batchnorm"], prefix + "batchnorm")
            values["batchnorm"] = mode
        if "prune" in data:
            values["prune"] = self.prune(data["prune"], data.lines["prune"], prefix + "prune")
        return Settings(**values)

    def selector(self, data: Any, line: int, key: str) -> Selector:
        data = self.mapping(data, line, key, _SELECTOR_RANK)
        if not data:
            raise self.fail("needs at least one of type, name, glob, regex, activation", line, key)
        values: dict[str, Any] = {}
        for sel in ("type", "activation"):
            if sel in data:
                raw = data[sel]
                items = list(raw) if isinstance(raw, list) else [raw]
                if not items or not all(isinstance(i, str) and i for i in items):
                    raise self.fail("expected a name or a list of names", data.lines[sel], f"{key}.{sel}")
                if sel == "activation":
                    for fn in items:
                        if fn not in KNOWN_ACTIVATIONS:
                            raise self.fail(f"unknown activation function {fn!r}", data.lines[sel], f"{key}.{sel}")
                values[sel] = tuple(items)
        for sel in ("name", "glob", "regex"):
            if sel in data:
                if not isinstance(data[sel], str) or not data[sel]:
                    raise self.fail("expected a non-empty string", data.lines[sel], f"{key}.{sel}")
                values[sel] = data[sel]
        if "regex" in values:
            try:
                re.compile(values["regex"])
            except re.error as exc:
                raise self.fail(f"invalid regular expression: {exc}", data.lines["regex"], f"{key}.regex") from None
        return Selector(**values)

    def rule(self, index: int, data: Any, line: int) -> Rule:
        key = f"rules[{index}]"
        allowed = ("match", "keep", "note", "activation", "batchnorm", "prune", *_WEIGHT_KEYS)
        data = self.mapping(data, line, key, allowed)
        if "match" not in data:
            raise self.fail("missing 'match'", line, key)
        match = self.selector(data["match"], data.lines["match"], f"{key}.match")
        keep = data.get("keep", False)
        if not isinstance(keep, bool):
            raise self.fail(f"expected true or false, got {keep!r}", data.lines["keep"], f"{key}.keep")
        settings = self.settings(data, f"{key}.")
        if keep and settings != Settings():
            raise self.fail("'keep: true' leaves the layer float; it cannot also set quantizers", line, key)
        if not keep and settings == Settings():
            raise self.fail("sets nothing: give quantizers, 'batchnorm', or 'keep: true'", line, key)
        note = data.get("note")
        if note is not None and not isinstance(note, str):
            raise self.fail("expected a string", data.lines["note"], f"{key}.note")
        return Rule(index=index, line=line, match=match, settings=settings, keep=keep, note=note)

    def ruleset(self, data: Any, sha256: str) -> RuleSet:
        if not isinstance(data, _Map):
            raise self.fail("a rule file is a mapping with 'version', 'defaults' and 'rules'", getattr(data, "line", 1))
        data = self.mapping(data, data.line, "", ("version", "description", "input", "defaults", "rules"))
        if type(data.get("version")) is not int or data.get("version") != 1:
            raise self.fail(f"must be 1, got {data.get('version')!r}", data.lines.get("version", data.line), "version")
        description = data.get("description", "")
        if not isinstance(description, str):
            raise self.fail("expected a string", data.lines["description"], "description")
        input_spec = None
        if data.get("input") is not None:
            input_spec = self.quantizer(data["input"], data.lines["input"], "input", "weight")
        defaults = Settings()
        if data.get("defaults") is not None:
            raw = self.mapping(data["defaults"], data.lines["defaults"], "defaults", ("activation", "batchnorm", "prune", *_WEIGHT_KEYS))
            defaults = self.settings(raw, "defaults.")
        rules: list[Rule] = []
        raw_rules = data.get("rules")
        if raw_rules is None:
            raw_rules = _Seq()
            raw_rules.lines = []
        if not isinstance(raw_rules, list):
            raise self.fail("expected a list of rules", data.lines["rules"], "rules")
        for i, item in enumerate(raw_rules):
            rules.append(self.rule(i, item, raw_rules.lines[i]))
        return RuleSet(
            source=self.source,
            sha256=sha256,
            version=1,
            description=description,
            input=input_spec,
            defaults=defaults,
            rules=tuple(rules),
        )


def loads_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Parse and validate rule-file text. Raises :class:`RuleError`."""
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return _Builder(source).ruleset(_parse_yaml(text, source), sha)


def presets_dir() -> Path:
    """The shipped presets: ``rules/`` of a source checkout, else the installed ``qconvert/presets``."""
    checkout = Path(__file__).resolve().parent.parent / "rules"
    return checkout if (checkout / "6bit.yaml").is_file() else Path(__file__).resolve().parent / "presets"


def preset_names() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.yaml"))


def resolve_rules_path(path: str | Path) -> Path:
    """``path`` itself when it exists; a bare preset name (``6bit``) when no such file does."""
    given = Path(path)
    if not given.exists() and given.suffix == "" and given.name == str(path):
        preset = presets_dir() / f"{given.name}.yaml"
        if preset.is_file():
            return preset
    return given


def read_rules_text(path: str | Path) -> tuple[Path, str]:
    """The resolved path (a preset name → its file) and the UTF-8 text of a rule or space file.
    Raises :class:`RuleError` when it cannot be read."""
    path = resolve_rules_path(path)
    try:
        return path, path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise RuleError("is a directory, not a rule file", source=str(path)) from None
    except FileNotFoundError:
        raise RuleError(f"no such rule file (shipped presets: {', '.join(preset_names())})", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"cannot read: {exc}", source=str(path)) from None


def load_rules(path: str | Path) -> RuleSet:
    """Read and validate a rule file (or a shipped preset by name: ``6bit``). Raises :class:`RuleError`."""
    path, text = read_rules_text(path)
    try:
        return loads_rules(text, str(path))
    except RuleError:
        from .search.space import is_space

        if is_space(text, str(path)):
            raise RuleError("is a search space (it has choices or ranges), not one rule file: run `qconvert search` "
                            "with it, or use one of the front/NN.yaml files a search writes", source=str(path)) from None
        raise


def as_ruleset(rules: RuleSet | str | Path | Mapping[str, Any]) -> RuleSet:
    """Accept a RuleSet, a path, or an already-parsed mapping (API convenience)."""
    if isinstance(rules, RuleSet):
        return rules
    if isinstance(rules, Mapping):
        return loads_rules(yaml.safe_dump(dict(rules), sort_keys=False), "<mapping>")
    return load_rules(rules)
