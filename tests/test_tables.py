"""The per-layer tables (the main job's and ``rules show``'s) read at 80, 100, 120 and 200 columns.

A table that fits is printed as one; one that does not is stacked, one block per layer. Either way no line is
wider than the console, every layer's name is whole, and no number is broken across lines.
"""

from pathlib import Path

import pytest
from rich.console import Console

import qconvert
from qconvert.model.cost import model_cost
from qconvert.report import render_plan

ROOT = Path(__file__).resolve().parent.parent
JET_H5 = ROOT / "examples" / "jet_tagging" / "keras_model_fp32.h5"


@pytest.fixture(scope="module")
def converted():
    qmodel, report = qconvert.convert(JET_H5, "6bit-pruned")
    return qmodel, report


def _rendered(draw, width: int) -> str:
    console = Console(width=width, record=True, highlight=False)
    draw(console)
    return console.export_text()


def _assert_readable(text: str, width: int, names: list[str], numbers: list[str]) -> None:
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    for name in names:  # each layer's name whole, in the first column
        assert any(line.startswith(f"│ {name} ") for line in lines), name
    for number in numbers:  # on one line, not folded into pieces
        assert any(number in line for line in lines), number


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_the_conversion_table_reads_at_any_common_width(converted, width):
    _, report = converted
    text = _rendered(report.render, width)
    numbers = [f"{r.params:,}" for r in report.layers] + [qconvert.report.format_count(r.bops) for r in report.layers]
    _assert_readable(text, width, [r.name for r in report.layers] + ["total"], numbers)
    assert "quantized_bits(6,0,alpha=1)" in text  # quantizers whole too
    header = next(line for line in text.splitlines() if "layer" in line)
    assert ("kernel" in header and "EBOPs" in header) == (width == 200)  # one row per layer where it fits, else stacked


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_rules_show_reads_at_any_common_width(converted, width):
    qmodel, _ = converted
    plan = qconvert.plan(qconvert.load_model(JET_H5), qconvert.load_rules("6bit-pruned"))
    costs = model_cost(qmodel)
    text = _rendered(lambda console: render_plan(plan, console, costs), width)
    numbers = [qconvert.report.format_count(c.ebops) for c in costs.values() if c.ebops]
    _assert_readable(text, width, [item.name for item in plan.layers], numbers)


def test_a_report_prints_as_its_table_and_the_api_lists_itself(converted):
    _, report = converted
    text = str(report)
    assert text.splitlines()[0].startswith(f"{report.model} → ") and "EBOPs" in text and "fc1" in text
    assert report.summary_line()[:60] in text  # the totals line follows the table
    assert {"convert", "convert_file", "TrainOptions", "load_rules"} <= set(dir(qconvert))  # lazy names too
