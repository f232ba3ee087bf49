"""Parsed YAML (:mod:`.parse`) → the frozen data classes of :mod:`.types`, every error with file, line and key.

:class:`Builder` validates one tree: unknown keys, wrong types, quantizers that
do not parse, impossible sparsities and epochs, rules that set nothing. The
search-space form (:mod:`.space`) builds each concrete choice through it too, so
both report the same errors at the same lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ..errors import RuleError, did_you_mean
from ..quantizers import QuantizerSpec, QuantizerSyntaxError, parse_quantizer, spec_from_mapping
from .parse import LinedMap, LinedSeq
from .types import (
    BATCHNORM_MODES,
    KNOWN_ACTIVATIONS,
    SELECTOR_RANK,
    WEIGHT_ROLES,
    ActivationPolicy,
    PruneSpec,
    Rule,
    RuleSet,
    Selector,
    Settings,
)

__all__ = ["Builder"]

_SETTING_KEYS = ("activation", "batchnorm", "prune", *WEIGHT_ROLES)


class Builder:
    """Builds the data classes of one rule file; ``source`` names the file in every :class:`RuleError`."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, message: str, line: int | None, key: str | None = None) -> RuleError:
        """The error to raise at ``line`` (``key``: the dotted key path, ``rules[2].kernel``)."""
        return RuleError(message, source=self.source, line=line, key=key)

    def mapping(self, value: Any, line: int, key: str, allowed: Iterable[str]) -> LinedMap:
        """``value`` itself when it is a mapping with only ``allowed`` keys."""
        if not isinstance(value, LinedMap):
            raise self.fail(f"expected a mapping, got {type(value).__name__}", line, key)
        allowed = tuple(allowed)
        for k in value:
            if k not in allowed:
                raise self.fail(f"unknown key{did_you_mean(str(k), allowed) or ';'} expected one of {', '.join(allowed)}",
                                value.lines[k], f"{key}.{k}" if key else k)
        return value

    def quantizer(self, value: Any, line: int, key: str, role: str) -> QuantizerSpec:
        """A quantizer in string (``quantized_bits(6, 0)``) or mapping form; ``role``: weight | activation."""
        try:
            if isinstance(value, str):
                return parse_quantizer(value, role)
            if isinstance(value, LinedMap):
                return spec_from_mapping(value, role)
        except QuantizerSyntaxError as exc:
            raise self.fail(str(exc), line, key) from None
        raise self.fail(f"expected a quantizer string or mapping, got {value!r}", line, key)

    def activation(self, value: Any, line: int, key: str) -> ActivationPolicy:
        """``activation:``: one quantizer (the shorthand) or a mapping of function names to quantizers."""
        if isinstance(value, LinedMap) and "quantizer" not in value:
            if not value:
                raise self.fail("needs a quantizer, or a mapping of activation functions to quantizers", line, key)
            by_fn = []
            for fn, spec in value.items():
                if fn not in KNOWN_ACTIVATIONS:
                    raise self.fail(f"unknown activation function {fn!r}{did_you_mean(fn, KNOWN_ACTIVATIONS)}",
                                    value.lines[fn], f"{key}.{fn}")
                by_fn.append((fn, self.quantizer(spec, value.lines[fn], f"{key}.{fn}", "activation")))
            return ActivationPolicy(by_function=tuple(by_fn))
        return ActivationPolicy(default=self.quantizer(value, line, key, "activation"))

    def prune(self, value: Any, line: int, key: str) -> PruneSpec:
        """``prune:``: a sparsity, a mapping with ``sparsity``/``start_epoch``/``end_epoch``, or false."""
        if value is False or value is None:
            return PruneSpec(0.0)
        raw = value if isinstance(value, LinedMap) else None
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

    def settings(self, data: LinedMap, prefix: str) -> Settings:
        """The setting keys of ``defaults`` or a rule (``prefix``: its key path, ``defaults.``)."""
        values: dict[str, Any] = {}
        for key in WEIGHT_ROLES:
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
        """``match:``: at least one selector; names non-empty, activations known, regexes compiled."""
        data = self.mapping(data, line, key, SELECTOR_RANK)
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
                            raise self.fail(f"unknown activation function {fn!r}{did_you_mean(fn, KNOWN_ACTIVATIONS)}",
                                            data.lines[sel], f"{key}.{sel}")
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
        """One entry of ``rules:``: a ``match``, then either ``keep: true`` or settings."""
        key = f"rules[{index}]"
        data = self.mapping(data, line, key, ("match", "keep", "note", *_SETTING_KEYS))
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
        """The whole file (``sha256``: of its text, recorded for provenance)."""
        if not isinstance(data, LinedMap):
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
            raw = self.mapping(data["defaults"], data.lines["defaults"], "defaults", _SETTING_KEYS)
            defaults = self.settings(raw, "defaults.")
        raw_rules = data.get("rules")
        if raw_rules is None:
            raw_rules = LinedSeq()
            raw_rules.lines = []
        if not isinstance(raw_rules, list):
            raise self.fail("expected a list of rules", data.lines["rules"], "rules")
        rules = tuple(self.rule(i, item, raw_rules.lines[i]) for i, item in enumerate(raw_rules))
        return RuleSet(source=self.source, sha256=sha256, version=1, description=description, input=input_spec,
                       defaults=defaults, rules=rules)
