"""YAML with line numbers: the containers every rule-file and space-file error points into.

:func:`parse_yaml` composes the YAML node tree (PyYAML's safe loader, scalars
only) into :class:`LinedMap` and :class:`LinedSeq`, plain ``dict`` and ``list``
subclasses that remember the 1-based line of the container and of each key or
item. Duplicate keys and non-string keys are errors here, where PyYAML would
keep the last value silently.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import RuleError

__all__ = ["LinedMap", "LinedSeq", "parse_yaml", "plain"]


class LinedMap(dict):
    """A mapping that remembers its own line (``line``) and the line of each key (``lines[key]``), 1-based."""

    line: int = 0
    lines: dict[str, int]


class LinedSeq(list):
    """A list that remembers its own line (``line``) and the line of each item (``lines[i]``), 1-based."""

    line: int = 0
    lines: list[int]


def _from_node(node: yaml.Node, source: str) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = LinedMap()
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
        seq = LinedSeq(_from_node(n, source) for n in node.value)
        seq.line, seq.lines = line, [n.start_mark.line + 1 for n in node.value]
        return seq
    return yaml.SafeLoader("").construct_object(node)  # scalars only: safe


def parse_yaml(text: str, source: str) -> Any:
    """``text`` as :class:`LinedMap` / :class:`LinedSeq` / scalars; ``source`` names the file in errors.

    Raises :class:`RuleError` (with the line) for malformed YAML, an empty
    document, a duplicate key or a key that is not a plain string.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RuleError(f"malformed YAML: {problem}", source=source, line=mark.line + 1 if mark else None) from None
    if node is None:
        raise RuleError("the rule file is empty", source=source)
    return _from_node(node, source)


def plain(value: Any) -> Any:
    """Parsed YAML (with line-number containers) as plain dicts and lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
