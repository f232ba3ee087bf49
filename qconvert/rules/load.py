"""Rule files from text, a path, a preset name or a mapping: the entry points of the rule language."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..errors import RuleError
from .builder import Builder
from .parse import parse_yaml
from .presets import read_rules_text
from .space import is_space
from .types import RuleSet

__all__ = ["as_ruleset", "load_rules", "loads_rules"]


def loads_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Parse and validate rule-file text (``source`` names it in errors). Raises :class:`RuleError`."""
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Builder(source).ruleset(parse_yaml(text, source), sha)


def load_rules(path: str | Path) -> RuleSet:
    """Read and validate a rule file (or a shipped preset by name: ``6bit``).

    Raises :class:`RuleError`: unreadable, invalid, or a search space (a file with
    choices or ranges, which ``qconvert search`` takes) instead of one rule file.
    """
    path, text = read_rules_text(path)
    try:
        return loads_rules(text, str(path))
    except RuleError:
        if is_space(text, str(path)):
            raise RuleError("is a search space (it has choices or ranges), not one rule file: run `qconvert search` "
                            "with it, or use one of the front/NN.yaml files a search writes", source=str(path)) from None
        raise


def as_ruleset(rules: RuleSet | str | Path | Mapping[str, Any]) -> RuleSet:
    """A RuleSet as given, from a path or preset name, or from an already-parsed mapping (API convenience).

    Raises :class:`RuleError` as :func:`load_rules` does.
    """
    if isinstance(rules, RuleSet):
        return rules
    if isinstance(rules, Mapping):
        return loads_rules(yaml.safe_dump(dict(rules), sort_keys=False), "<mapping>")
    return load_rules(rules)
