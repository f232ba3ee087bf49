"""Which rule a layer gets: precedence by selector rank and count, defaults for omitted keys, decide().

Pure (qconvert.rules): nothing here imports Keras, TensorFlow or QKeras.
"""

from __future__ import annotations

import pytest
from kit import act, doc, qb

from qconvert.rules import LayerView, Settings, decide, decide_split, inherited, loads_rules


def winner(ruleset, name: str, type_: str = "Dense", activation: str | None = None):
    rule = ruleset.select(LayerView(name, type_, activation))
    return None if rule is None else rule.note


def test_rank_name_over_regex_over_glob_over_type():
    # The most specific rule is listed last, so list order cannot explain the result.
    ruleset = loads_rules(
        doc(
            """
            version: 1
            rules:
              - {match: {type: Dense}, kernel: quantized_bits(2), note: type}
              - {match: {glob: "fc*"}, kernel: quantized_bits(3), note: glob}
              - {match: {regex: "fc[0-9]"}, kernel: quantized_bits(4), note: regex}
              - {match: {name: fc1}, kernel: quantized_bits(5), note: name}
            """
        )
    )
    assert winner(ruleset, "fc1") == "name"
    assert winner(ruleset, "fc2") == "regex"
    assert winner(ruleset, "fcx") == "glob"
    assert winner(ruleset, "dense") == "type"
    assert winner(ruleset, "conv", "Conv2D") is None
    assert winner(ruleset, "fc12", "Conv2D") == "glob"  # regex must match the whole name


def test_more_selectors_win_at_equal_rank_but_not_over_rank():
    ruleset = loads_rules(
        doc(
            """
            version: 1
            rules:
              - {match: {glob: "fc*"}, kernel: quantized_bits(3), note: glob}
              - {match: {glob: "fc*", type: Dense}, kernel: quantized_bits(4), note: glob+type}
              - {match: {glob: "fc*", type: Dense, activation: relu}, kernel: quantized_bits(5), note: glob+type+act}
              - {match: {regex: "fc1"}, kernel: quantized_bits(6), note: regex}
            """
        )
    )
    assert winner(ruleset, "fc2", "Conv2D") == "glob"
    assert winner(ruleset, "fc2", "Dense") == "glob+type"
    assert winner(ruleset, "fc2", "Dense", "relu") == "glob+type+act"
    assert winner(ruleset, "fc1", "Dense", "relu") == "regex"  # rank 3 beats three rank-2/1 selectors


@pytest.mark.parametrize("first, second", [("f*", "fc*"), ("fc*", "f*")])
def test_first_listed_wins_a_full_tie(first, second):
    ruleset = loads_rules(
        doc(
            f"""
            version: 1
            rules:
              - {{match: {{glob: "{first}"}}, kernel: quantized_bits(3), note: first}}
              - {{match: {{glob: "{second}"}}, kernel: quantized_bits(4), note: second}}
            """
        )
    )
    assert winner(ruleset, "fc1") == "first"


def test_keys_the_winner_omits_come_from_defaults():
    ruleset = loads_rules(
        doc(
            """
            version: 1
            defaults:
              kernel: quantized_bits(6, 0, alpha=1)
              bias: quantized_bits(6, 0, alpha=1)
              activation: quantized_relu(6)
            rules:
              - match: {type: Dense}
                bias: quantized_bits(2, 0)
              - match: {name: output}
                kernel: quantized_bits(8, 0, alpha=1)
            """
        )
    )
    rule = ruleset.select(LayerView("output", "Dense"))
    effective = rule.settings.over(ruleset.defaults)
    assert effective.kernel == qb(8, 0, alpha=1)
    assert effective.bias == qb(6, 0, alpha=1)  # from defaults, not from the losing type rule
    assert effective.activation == ruleset.defaults.activation


def test_extra_rules_compete_by_the_same_precedence():
    ruleset = loads_rules(
        doc(
            """
            version: 1
            rules:
              - {match: {name: fc1}, activation: quantized_relu(3), note: parent}
              - {match: {regex: "relu[0-9]"}, activation: quantized_relu(4), note: regex}
            """
        )
    )
    parent = ruleset.rules[0]
    assert ruleset.select(LayerView("act", "Activation", "relu"), extra=[parent]).note == "parent"
    assert ruleset.select(LayerView("relu1", "Activation", "relu"), extra=[parent]).note == "parent"  # name 4 > regex 3


DECIDE_RULES = doc(
    """
    version: 1
    defaults:
      kernel: quantized_bits(6, 0, alpha=1)
    rules:
      - {match: {type: Dense}, activation: quantized_relu(4), note: by type}
      - {match: {name: fc1}, kernel: "quantized_bits(8, 0, alpha=1)", activation: quantized_relu(3), note: by name}
      - {match: {name: out}, keep: true}
    """
)


def test_decide_merges_defaults_keeps_and_counts_every_matching_rule():
    ruleset = loads_rules(DECIDE_RULES)
    fc1 = decide(ruleset, LayerView("fc1", "Dense"))
    assert (fc1.rule.note, fc1.keep, fc1.matched) == ("by name", False, frozenset({0, 1}))
    assert fc1.settings.kernel == qb(8, 0, alpha=1) and fc1.settings.activation.default == act("quantized_relu(3)")
    fc2 = decide(ruleset, LayerView("fc2", "Dense"))
    assert fc2.rule.note == "by type" and fc2.settings.kernel == qb(6, 0, alpha=1)  # kernel from defaults
    out = decide(ruleset, LayerView("out", "Dense"))
    assert out.keep and out.settings == Settings() and out.matched == frozenset({0, 2})
    none = decide(ruleset, LayerView("flat", "Flatten"))
    assert none.rule is None and none.settings == ruleset.defaults and none.matched == frozenset()


def test_decide_without_a_name_sees_only_the_rules_that_do_not_select_by_name():
    """Source code without a literal name= (the codemod): name/glob/regex rules cannot match, even with name ''."""
    ruleset = loads_rules(DECIDE_RULES + "  - {match: {glob: '*'}, kernel: 'quantized_bits(2, 0)'}\n")
    unnamed = decide(ruleset, LayerView("", "Dense"), named=False)
    assert unnamed.rule.note == "by type" and unnamed.matched == frozenset({0})
    assert decide(ruleset, LayerView("", "Dense")).rule.index == 3  # the glob matches '' when the name counts


def test_a_split_activation_inherits_its_parents_activation_rules():
    ruleset = loads_rules(DECIDE_RULES)
    split = decide_split(ruleset, "relu1", "relu", LayerView("fc1", "Dense"))
    assert split.rule.note == "by name" and split.settings.activation.default == act("quantized_relu(3)")
    assert inherited(ruleset, LayerView("fc1", "Dense"), named=False) == (ruleset.rules[0],)
    split = decide_split(ruleset, "relu1", "relu", LayerView("", "Dense"), parent_named=False)
    assert split.rule.note == "by type" and split.matched == frozenset({0})
