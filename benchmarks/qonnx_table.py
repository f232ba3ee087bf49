"""The README's QONNX layer-family table, generated from the property tests' own results.

    python benchmarks/qonnx_table.py                  # runs tests/test_qonnx_families.py, rewrites the README table
    python benchmarks/qonnx_table.py --results r.json # renders saved results (QCONVERT_QONNX_FAMILY_RESULTS=r.json pytest ...)
    python benchmarks/qonnx_table.py --print          # prints the table instead of writing the README

The table sits in README.md between the ``qonnx-families`` markers; nothing else is touched. The families are
those of the hls4ml table (tests/hls4ml_families.py); the table says which ONNX nodes each became and whether
qonnx's execution of the graph reproduced Keras bit for bit.
"""

from __future__ import annotations

from hls4ml_table import cli

BEGIN, END = "<!-- qonnx-families:begin (benchmarks/qonnx_table.py) -->", "<!-- qonnx-families:end -->"


def render(data: dict) -> str:
    """The Markdown table (one row per family label) with the refusals as footnotes and the measured figures."""
    rows: dict[str, dict] = {}
    for name, label in data["labels"].items():  # families sharing a label share a row
        row = rows.setdefault(label, {"ops": set(), "status": {}})
        for run in data["runs"]:
            status = run["families"].get(name)
            if status is not None:
                row["status"].setdefault(run["preset"], []).append(status)
            row["ops"].update(run["ops"].get(name, []))
    notes: list[str] = []
    lines = ["| layer family | QONNX nodes | bit-exact logits (qonnx execute_onnx) |", "|---|---|---|"]
    for label, row in rows.items():
        refused = sorted({s.removeprefix("refused: ") for ss in row["status"].values() for s in ss if s.startswith("refused")})
        notes += [r for r in refused if r not in notes]
        exact = sorted(p for p, ss in row["status"].items() if ss and all(s == "exact" for s in ss))
        diverged = sorted(p for p, ss in row["status"].items() if any(s == "diverged" for s in ss))
        cell = f"yes ({', '.join(exact)})" if exact and not diverged else f"no ({', '.join(diverged)})" if diverged else ""
        if refused:
            cell = (cell + "; " if cell else "") + "refused (" + ", ".join(str(notes.index(r) + 1) for r in refused) + ")"
        lines.append(f"| {label} | {', '.join(sorted(row['ops'])) or '—'} | {cell} |")
    bn = sorted(data.get("batchnorm_unfolded", {}).items())
    if bn:
        cells = ", ".join(f"{p}: BN {v['bn_exact']:.0%}, logits {v['logits_exact']:.0%}" for p, v in bn)
        lines.append(f"| BatchNormalization not foldable (after an activation, before a Reshape) | Mul, Add (float, TensorFlow's constants) "
                     f"| no: the BN's own output is bit-identical, the float values it makes round differently in the "
                     f"next layer's float32 sums ({cells} of samples) |")
    runs = ", ".join(f"{r['preset']}: logits bit-identical {r['logits_exact_fraction']:.0%} of {r['n_samples']}, "
                     f"argmax {r['argmax_agreement']:.0%}" for r in data["runs"])
    footnotes = "".join(f"\n({i}) {reason}" for i, reason in enumerate(notes, 1))
    return "\n".join(lines) + f"\n{footnotes}\n\nMeasured: {runs}.\n"


if __name__ == "__main__":
    cli(__doc__, render, "test_qonnx_families.py", "QCONVERT_QONNX_FAMILY_RESULTS", BEGIN, END)
