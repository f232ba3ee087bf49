"""The README's hls4ml layer-family table, generated from the property tests' own results.

    python benchmarks/hls4ml_table.py                  # runs tests/test_hls4ml_families.py, rewrites the README table
    python benchmarks/hls4ml_table.py --results r.json # renders saved results (QCONVERT_FAMILY_RESULTS=r.json pytest ...)
    python benchmarks/hls4ml_table.py --print          # prints the table instead of writing the README

The table sits in README.md between the ``hls4ml-families`` markers; nothing else is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN, END = "<!-- hls4ml-families:begin (benchmarks/hls4ml_table.py) -->", "<!-- hls4ml-families:end -->"


def run_tests(path: Path, test: str = "test_hls4ml_families.py", variable: str = "QCONVERT_FAMILY_RESULTS") -> None:
    """The property tests ``tests/<test>`` (several: separated by spaces), saving their results to ``path`` (the environment ``variable`` tells
    them where); they fail loudly if a family is not bit-exact."""
    env = dict(os.environ, **{variable: str(path)})
    cmd = [sys.executable, "-m", "pytest", "-q", "-n", "0", *(str(ROOT / "tests" / t) for t in test.split())]
    done = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    if not path.exists():
        sys.exit(f"{Path(sys.argv[0]).stem}: the tests saved no results (pytest exit {done.returncode})")


def _io_cell(statuses: list[str], notes: list[str]) -> str:
    """"yes", or "refused" with a footnote number (the refusal qconvert prints, in full, below the table)."""
    refused = sorted({s.removeprefix("refused: ") for s in statuses if s.startswith("refused: ")})
    if not refused:
        return "yes"
    marks = []
    for reason in refused:
        if reason not in notes:
            notes.append(reason)
        marks.append(str(notes.index(reason) + 1))
    return f"refused ({', '.join(marks)})"


def _exact_cell(statuses: dict[str, list[str]]) -> str:
    ran = {preset for preset, ss in statuses.items() if any(not s.startswith("refused") for s in ss)}
    ok = {preset for preset, ss in statuses.items() if all(s in ("exact",) or s.startswith("refused") for s in ss)}
    if ran and ran <= ok:
        return f"yes ({', '.join(sorted(ran))})"
    return "no (" + ", ".join(sorted(ran - ok)) + ")"


def render(data: dict) -> str:
    labels: dict[str, str] = data["labels"]
    runs = data["runs"]
    rows: dict[str, dict] = {}
    for name, label in labels.items():  # families sharing a label share a row
        row = rows.setdefault(label, {"convert": set(), "io": {}, "exact": {}})
        for run in runs:
            status = run["families"].get(name)
            if status is None:
                continue
            row["io"].setdefault(run["io_type"], []).append(status)
            row["exact"].setdefault(run["preset"], []).append(status)
            row["convert"].update(run["converted"].get(name, []))
    lines = ["| layer family | convert (qconvert makes) | io_parallel | io_stream | bit-exact logits |",
             "|---|---|---|---|---|"]
    notes: list[str] = []
    for label, row in rows.items():
        made = ", ".join(sorted(row["convert"])) or "—"
        cells = [_io_cell(row["io"].get(io, []), notes) for io in ("io_parallel", "io_stream")]
        lines.append(f"| {label} | {made} | {cells[0]} | {cells[1]} | {_exact_cell(row['exact'])} |")
    for _preset, status in sorted(data.get("batchnorm_unfolded", {}).items())[:1]:
        lines.append(f"| BatchNormalization not foldable (after an activation, before a Reshape) | BatchNormalization (float) "
                     f"| derived, not compiled | derived, not compiled | {status.replace('not bit-exact', 'no')} |")
    runs_text = ", ".join(f"{r['preset']}/{r['io_type']}: logits bit-identical {r['logits_exact_fraction']:.0%} "
                          f"of {r['n_samples']}" for r in runs)
    footnotes = "".join(f"\n({i}) {reason}" for i, reason in enumerate(notes, 1))
    return "\n".join(lines) + f"\n{footnotes}\n\nMeasured: {runs_text}.\n"


def write_readme(table: str, begin: str = BEGIN, end: str = END) -> None:
    """Put ``table`` between the ``begin`` and ``end`` markers of README.md; nothing else changes."""
    text = README.read_text()
    head, sep, rest = text.partition(begin)
    _, sep2, tail = rest.partition(end)
    if not sep or not sep2:
        sys.exit(f"{Path(sys.argv[0]).stem}: {README} has no {begin} … {end} markers")
    README.write_text(f"{head}{begin}\n{table}{end}{tail}")


def cli(doc: str, render_fn: Any, test: str, variable: str, begin: str, end: str) -> None:
    """The command line of a table script: run the tests ``test`` (or read ``--results``), render with ``render_fn``,
    print it (``--print``) or put it between the README's ``begin`` and ``end`` markers."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--results", type=Path, help="saved results (JSON) instead of running the tests")
    parser.add_argument("--print", action="store_true", help="print the table, leave README.md alone")
    args = parser.parse_args()
    if args.results is None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "families.json"
            run_tests(path, test, variable)
            data = json.loads(path.read_text())
    else:
        data = json.loads(args.results.read_text())
    table = render_fn(data)
    if args.print:
        print(table)
    else:
        write_readme(table, begin, end)


if __name__ == "__main__":
    cli(__doc__, render, "test_hls4ml_families.py", "QCONVERT_FAMILY_RESULTS", BEGIN, END)
