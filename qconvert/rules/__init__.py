"""The rule language: YAML rule files in, frozen data classes out, every error with file, line and key.

Shape (``rules/schema.json`` at the top of the project is the JSON Schema for editors)::

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
``defaults`` (:func:`decide`, the one decision both planners use).

A search space is a rule file whose values may be choices or ranges
(:func:`load_space`; each trial of ``qconvert search`` is one concrete rule file).

The private modules, bottom to top: :mod:`.parse` (YAML with line numbers),
:mod:`.types` (the data classes), :mod:`.builder` (validation),
:mod:`.presets` (shipped presets, reading files), :mod:`.space` (the search
form), :mod:`.load` (entry points), :mod:`.decision` (the decision). This package
imports neither Keras nor QKeras.
"""

from __future__ import annotations

from .decision import RuleDecision, decide, decide_split, inherited
from .load import as_ruleset, load_rules, loads_rules
from .presets import preset_names, presets_dir, read_rules_text, resolve_rules_path
from .space import Dimension, Space, is_space, load_space, loads_space
from .types import (
    BATCHNORM_MODES,
    BN_ROLES,
    KERNEL_FALLBACK_ROLES,
    KNOWN_ACTIVATIONS,
    WEIGHT_ROLES,
    ActivationPolicy,
    LayerView,
    PruneSpec,
    Rule,
    RuleSet,
    Selector,
    Settings,
)

__all__ = [
    "BATCHNORM_MODES",
    "BN_ROLES",
    "KERNEL_FALLBACK_ROLES",
    "KNOWN_ACTIVATIONS",
    "WEIGHT_ROLES",
    "ActivationPolicy",
    "Dimension",
    "LayerView",
    "PruneSpec",
    "Rule",
    "RuleDecision",
    "RuleSet",
    "Selector",
    "Settings",
    "Space",
    "as_ruleset",
    "decide",
    "decide_split",
    "inherited",
    "is_space",
    "load_rules",
    "load_space",
    "loads_rules",
    "loads_space",
    "preset_names",
    "presets_dir",
    "read_rules_text",
    "resolve_rules_path",
]
