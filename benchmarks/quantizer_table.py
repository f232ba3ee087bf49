"""The README's table of QKeras quantizer options through hls4ml, generated from the property test's own results.

    python benchmarks/quantizer_table.py                  # runs tests/test_hls4ml_quantizer_options.py, rewrites the table
    python benchmarks/quantizer_table.py --results r.json # renders saved results (QCONVERT_QUANTIZER_RESULTS=r.json pytest ...)
    python benchmarks/quantizer_table.py --print          # prints the table instead of writing the README

One row per quantizer and option the test drew (and per quantizer without options): "bit-exact" when blocks with
it passed the pre-flight and their layers were bit-identical in the chained model, the one-line refusal qconvert
printed when they were refused, both when that depends on the other parameters. The table sits in README.md between the ``quantizer-options`` markers; nothing else is touched.
"""

from __future__ import annotations

import re
from typing import Any

from hls4ml_table import cli

BEGIN, END = "<!-- quantizer-options:begin (benchmarks/quantizer_table.py) -->", "<!-- quantizer-options:end -->"


def _reason(message: str, option: str) -> str:
    """The refusal's explanation, without the layer and the quantizer's spelling."""
    tail = message.split(": ", 1)[-1]
    match = re.search(rf"with {re.escape(option.split('=')[0])}=[^:]*: (.*)", tail)
    return (match.group(1) if match else tail).split(";")[0]


def render(data: dict[str, Any]) -> str:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for block in data["blocks"]:
        for role, quantizer, options in (("activation", block["activation"], block["activation_options"]),
                                         ("kernel", block["kernel"], block["kernel_options"])):
            name = f"{quantizer.split('(')[0]} ({role})"
            for option in options or ["(none)"]:
                row = rows.setdefault((name, option), {"exact": 0, "refused": []})
                if block["outcome"] == "exact":
                    row["exact"] += 1
                elif option != "(none)" and option.split("=")[0] in block["message"]:
                    row["refused"].append(_reason(block["message"], option))
    lines = ["| quantizer | option | hls4ml |", "|---|---|---|"]
    for (name, option), row in sorted(rows.items()):
        if row["exact"] and row["refused"]:  # the option's effect depends on the others (bits, a clip flag)
            cell = (f"bit-exact in {row['exact']} drawn block{'s' * (row['exact'] > 1)}; refused in "
                    f"{len(row['refused'])}: {row['refused'][0]}")
        elif row["exact"]:
            cell = f"bit-exact ({row['exact']} drawn block{'s' * (row['exact'] > 1)})"
        elif row["refused"]:
            cell = f"refused before training: {row['refused'][0]}"
        else:
            continue  # only drawn beside an option that was refused: nothing measured about this one
        lines.append(f"| {name} | {option} | {cell} |")
    lines.append("")
    lines.append(f"Measured: {sum(b['outcome'] == 'exact' for b in data['blocks'])} blocks chained, logits "
                 f"bit-identical on {data['exact_fraction']:.0%} of {data['n_samples']} inputs; "
                 f"{sum(b['outcome'] == 'refused' for b in data['blocks'])} refused in one line.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    cli(__doc__, render, "test_hls4ml_quantizer_options.py", "QCONVERT_QUANTIZER_RESULTS", BEGIN, END)
