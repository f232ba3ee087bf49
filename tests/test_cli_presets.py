"""The shipped presets from the command line: ``rules list``, ``rules cat``, and a mistyped name."""

from __future__ import annotations

from kit import assert_clean_error, run_cli

from qconvert.rules import preset_names, presets_dir


def test_rules_list_names_every_preset_and_which_need_data():
    result = run_cli("rules", "list")
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("│")}
    assert sorted(rows) == preset_names()
    for name, line in rows.items():
        needs = line.split("│")[2].strip() == "yes"
        assert needs == name.endswith("-auto"), line  # the -auto presets calibrate activations on --data


def test_rules_cat_prints_the_preset_and_the_copy_is_a_valid_rule_file(tmp_path):
    result = run_cli("rules", "cat", "6bit-auto")
    assert result.exit_code == 0, result.output
    assert result.stdout == (presets_dir() / "6bit-auto.yaml").read_text(encoding="utf-8")
    copy = tmp_path / "mine.yaml"
    copy.write_text(result.stdout)
    checked = run_cli("rules", "check", copy)
    assert checked.exit_code == 0 and "ok" in checked.stdout, checked.output


def test_a_mistyped_preset_is_one_line_with_the_nearest_name():
    assert_clean_error(run_cli("rules", "cat", "6bti"), "no shipped preset '6bti'", "did you mean '6bit'?")
    assert_clean_error(run_cli("rules", "check", "8bit-atuo"), "no such rule file", "did you mean '8bit-auto'?")
    # another case, a file name for a preset (outside the checkout), a prefix
    assert_clean_error(run_cli("rules", "check", "6BIT"), "no such rule file", "did you mean '6bit'?")
    assert_clean_error(run_cli("rules", "check", "6bit.yaml"), "no such rule file", "did you mean '6bit'?")
    assert_clean_error(run_cli("rules", "cat", "mixed"), "did you mean 'mixed_jet_tagger'?")
