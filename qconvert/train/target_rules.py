"""The rule file that reproduces the precisions ``--target-ebops`` learned.

It is the starting rule file with the learned formats put first as per-layer
``name`` rules (rank 4, listed first: they win every tie), the ``input:``
quantizer replaced, and every ``prune:`` removed (the pruned weights are zero in
the saved model itself). Converting the FP32 model with it gives the layers,
quantizers and graph the trained model has; :func:`check_reproduced` checks that.
"""

from __future__ import annotations

import hashlib
from typing import Any

import yaml

from ..errors import ConversionError, RuleError
from ..rules import RuleSet, read_rules_text
from .learned import Width

__all__ = ["check_reproduced", "derive_rules_text"]


def _base(rules: RuleSet) -> dict[str, Any]:
    """The starting rule file as plain data (its text when it is a file with the same hash)."""
    try:
        _, text = read_rules_text(rules.source)
    except RuleError:  # not a file (a mapping, or gone): rebuilt from the parsed rules below
        text = ""
    if text and hashlib.sha256(text.encode("utf-8")).hexdigest() == rules.sha256:
        data = yaml.safe_load(text)
        if isinstance(data, dict):
            return data
    defaults = {"batchnorm": rules.defaults.batchnorm} if rules.defaults.batchnorm else {}
    return {"version": 1, "description": rules.description, "defaults": defaults,
            "rules": [{"match": {"name": r.match.name}, "keep": True} for r in rules.rules if r.keep and r.match.name]}


def _strip_prune(settings: Any) -> Any:
    if isinstance(settings, dict):
        settings.pop("prune", None)
    return settings


def derive_rules_text(rules: RuleSet, widths: dict[str, dict[str, Width]], input_quantizers: set[str], *,
                      target: float, header: str = "") -> str:
    """YAML text of the derived rule file (module docstring).

    ``widths``: ``{layer: {"kernel": Width, "bias": Width}}`` for multiply layers and
    ``{layer: {"activation": Width}}`` for activation quantizers; those named in ``input_quantizers``
    are the QActivation the rewrite puts after each model input (the rule file's ``input:``).
    """
    data = _base(rules)
    data["version"] = 1
    data["description"] = f"{data.get('description') or 'learned precisions'} -- learned by --target-ebops {target:g}"
    _strip_prune(data.get("defaults"))
    old_rules = [_strip_prune(dict(r)) for r in (data.get("rules") or []) if isinstance(r, dict)]
    old_rules = [r for r in old_rules if set(r) - {"match", "note"}]  # a rule that only pruned sets nothing now
    learned: list[dict[str, Any]] = []
    inputs = {w["activation"].spec() for name, w in widths.items() if name in input_quantizers}
    if len(inputs) > 1:
        raise ConversionError(f"--target-ebops: the model's inputs learned different formats ({', '.join(sorted(inputs))}); "
                              "a rule file has one input quantizer")
    if inputs:
        data["input"] = inputs.pop()
    for name, roles in widths.items():
        if name in input_quantizers:
            continue
        rule: dict[str, Any] = {"match": {"name": name}}
        rule.update({role: w.spec() for role, w in roles.items()})
        rule["note"] = "learned by --target-ebops"
        learned.append(rule)
    data["rules"] = learned + old_rules
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)


def check_reproduced(qmodel: Any, widths: dict[str, dict[str, Width]]) -> None:
    """Raise :class:`ConversionError` unless every layer of ``qmodel`` named in ``widths`` has those formats."""
    for name, roles in widths.items():
        layer = qmodel.get_layer(name)
        for role, want in roles.items():
            q = layer.activation if role == "activation" else getattr(layer, f"{role}_quantizer_internal", None)
            got = (int(getattr(q, "bits", -1)), int(getattr(q, "integer", -1)))
            if got != (want.bits, want.integer):
                raise ConversionError(f"--target-ebops: the derived rule file gives {name} {role} {q}, not {want.spec()}; "
                                      "a rule of the starting file is more specific than a name rule")
