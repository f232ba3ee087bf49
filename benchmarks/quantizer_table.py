"""The README's table of QKeras quantizer options through hls4ml and the RTL, generated from the property tests' results.

    python benchmarks/quantizer_table.py                  # runs tests/test_{hls4ml,rtl}_quantizer_options.py, rewrites it
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


def _blamed(block: dict[str, Any]) -> tuple[str, list[str]]:
    """What a refusal is about: the role (its layer: ``a{i}`` the activation, ``d{i}`` the Dense's kernel) and the
    drawn options of that role its explanation names (none: the quantizer itself is refused)."""
    message = block["message"]
    layer = re.search(r"'([ad])\d+'", message)
    role = "kernel" if layer and layer.group(1) == "d" else "activation"
    text = re.sub(r"\w+\([^)]*\)", "", message.split(": ", 1)[-1])  # without the quantizer's own spelling
    return role, [o for o in block[f"{role}_options"] if re.search(rf"\b{re.escape(o.split('=')[0])}\b", text)]


def _cells(blocks: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """One cell per (quantizer and role, option) the blocks drew: bit-exact, refused (the reason), or both."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(role: str, block: dict[str, Any], option: str) -> dict[str, Any]:
        return rows.setdefault((f"{block[role].split('(')[0]} ({role})", option), {"exact": 0, "refused": []})

    for block in blocks:
        if block["outcome"] == "exact":
            for role in ("activation", "kernel"):
                for option in block[f"{role}_options"] or ["(none)"]:
                    row(role, block, option)["exact"] += 1
            continue
        role, named = _blamed(block)
        for option in named or ["(none)", *block[f"{role}_options"]]:  # none named: the quantizer, whatever its options
            row(role, block, option)["refused"].append(_reason(block["message"], option))
    cells = {}
    for key, r in rows.items():
        if r["exact"] and r["refused"]:  # the option's effect depends on the others (bits, a clip flag)
            cells[key] = (f"bit-exact in {r['exact']} drawn block{'s' * (r['exact'] > 1)}; refused in "
                          f"{len(r['refused'])}: {r['refused'][0]}")
        elif r["exact"]:
            cells[key] = f"bit-exact ({r['exact']} drawn block{'s' * (r['exact'] > 1)})"
        else:
            cells[key] = f"refused before training: {r['refused'][0]}"
    return cells


def render(data: dict[str, Any]) -> str:
    hls, rtl = _cells(data["hls4ml"]["blocks"]), _cells(data["rtl"]["blocks"])
    lines = ["| quantizer | option | hls4ml | qconvert rtl (da4ml) |", "|---|---|---|---|"]
    for name, option in sorted(set(hls) | set(rtl)):
        lines.append(f"| {name} | {option} | {hls.get((name, option), '—')} | {rtl.get((name, option), '—')} |")
    lines.append("")
    for target, label in (("hls4ml", "hls4ml"), ("rtl", "qconvert rtl (da4ml's software interpreter)")):
        blocks = data[target]["blocks"]
        lines.append(f"Measured, {label}: {sum(b['outcome'] == 'exact' for b in blocks)} blocks chained, logits "
                     f"bit-identical on {data[target]['exact_fraction']:.0%} of {data[target]['n_samples']} inputs; "
                     f"{sum(b['outcome'] == 'refused' for b in blocks)} refused in one line.")
    lines.append("(—: drawn only beside another option that was refused, so nothing was measured about this one there.)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    cli(__doc__, render, "test_hls4ml_quantizer_options.py test_rtl_quantizer_options.py", "QCONVERT_QUANTIZER_RESULTS",
        BEGIN, END)
