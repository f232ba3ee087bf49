"""The report of ``bench_quality.py``: the means per route, the issue's checks, the table and the plot.

Imported by bench_quality.py (benchmarks/ is run as scripts: the script's folder is first on the path).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from quality_routes import Run


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def aggregate(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per (case, label): means over the seeds that succeeded; the search's pooled front point by point."""
    rows: list[dict[str, Any]] = []
    keys = list(dict.fromkeys((r.case, r.route, r.label) for r in runs))
    for case, route, label in keys:
        group = [r for r in runs if (r.case, r.route, r.label) == (case, route, label)]
        ok = [r for r in group if r.error is None]
        errors = list(dict.fromkeys(r.error for r in group if r.error))
        if route == "search" and ok:
            for r in pooled_front(ok):
                rows.append({"case": case, "route": route, "label": f"search front (seed {r.seed}, trial {r.extra['trial']})",
                             "seeds": 1, "failed": 0, "test_accuracy": r.test_accuracy, "test_accuracy_std": None,
                             "ebops": r.ebops, "wall_s": _mean(list({x.seed: x.wall_s for x in ok}.values())),
                             "cpu_s": _mean(list({x.seed: x.cpu_s for x in ok}.values())),
                             "val_accuracy": r.extra["val_accuracy"], "error": None})
            continue
        accs = [r.test_accuracy for r in ok if r.test_accuracy is not None]
        rows.append({"case": case, "route": route, "label": label, "seeds": len(ok), "failed": len(group) - len(ok),
                     "test_accuracy": _mean(accs), "test_accuracy_std": statistics.stdev(accs) if len(accs) > 1 else None,
                     "ebops": _mean([r.ebops for r in ok if r.ebops is not None]),
                     "wall_s": _mean([r.wall_s for r in ok]), "cpu_s": _mean([r.cpu_s for r in ok if r.cpu_s is not None]),
                     "error": errors[0] if errors else None,
                     **({"target": group[0].extra.get("target")} if route == "target" else {}),
                     **({"ebops_values": _mean([r.extra["ebops_values"] for r in ok if "ebops_values" in r.extra])}
                        if route == "hgq2" else {})})
    return rows


def checks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's "must show", per case, on the means: (1) the cheapest ``--target-ebops`` model within 0.5 pp
    of FP32, its EBOPs against 1/20 of the uniform 6-bit model's; (2) at each HGQ2 point, the most accurate
    qconvert model with no more EBOPs, its accuracy gap (pp, goal >= -0.3) and wall-time ratio (goal <= 3)."""
    out: list[dict[str, Any]] = []
    for case in dict.fromkeys(r["case"] for r in rows):
        done = [r for r in rows if r["case"] == case and r["test_accuracy"] is not None and r["ebops"] is not None]
        fp32 = next((r for r in done if r["route"] == "fp32"), None)
        six = next((r for r in done if r["route"] == "6bit"), None)
        close = sorted((r for r in done if r["route"] == "target" and fp32
                        and r["test_accuracy"] >= fp32["test_accuracy"] - 0.005), key=lambda r: r["ebops"])
        if fp32 and six and any(r["route"] == "target" for r in rows if r["case"] == case):
            best = close[0] if close else None
            out.append({"case": case, "check": "target within 0.5 pp of FP32 at <= 1/20 of 6-bit's EBOPs",
                        "model": best and best["label"], "ebops": best and best["ebops"], "limit": six["ebops"] / 20,
                        "pass": bool(best and best["ebops"] <= six["ebops"] / 20)})
        ours = [r for r in done if r["route"] not in ("fp32", "hgq2")]
        for h in (r for r in done if r["route"] == "hgq2"):
            counts = [("", h["ebops"])]
            if h.get("ebops_values") is not None:  # the same models counted as qconvert counts its own: by value
                counts.append((", counted by value as qconvert counts", h["ebops_values"]))
            for how, limit in counts:
                within = [r for r in ours if r["ebops"] <= limit]
                best = max(within, key=lambda r: r["test_accuracy"]) if within else None
                gap = 100 * (best["test_accuracy"] - h["test_accuracy"]) if best else None
                ratio = best["wall_s"] / h["wall_s"] if best and best["wall_s"] and h["wall_s"] else None
                out.append({"case": case, "check": f"at {h['label']}'s {limit:,.0f} EBOPs{how}: >= -0.3 pp, <= 3x its wall time",
                            "model": best and best["label"], "ebops": best and best["ebops"], "gap_pp": gap,
                            "wall_ratio": ratio, "pass": bool(gap is not None and gap >= -0.3 and ratio is not None and ratio <= 3)})
    return out


def pooled_front(points: list[Run]) -> list[Run]:
    """The Pareto front (fewer EBOPs, higher validation accuracy) of the fronts of all seeds, by EBOPs."""
    front: list[Run] = []
    for p in sorted(points, key=lambda p: (p.ebops, -p.extra["val_accuracy"])):
        if not front or p.extra["val_accuracy"] > front[-1].extra["val_accuracy"]:
            front.append(p)
    return front


def render(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"accuracy per EBOP, test split, mean of {args.seeds} seed(s)")
    for name in ("data", "route", "seeds", "test accuracy", "Δ FP32 (pp)", "EBOPs", "wall s", "CPU s", "note"):
        table.add_column(name, justify="left" if name in ("data", "route", "note") else "right")
    case = None
    for row in rows:
        if case is not None and row["case"] != case:
            table.add_section()
        case = row["case"]
        fp32 = next((r["test_accuracy"] for r in rows if r["case"] == case and r["route"] == "fp32"), None)
        acc = row["test_accuracy"]
        delta = f"{100 * (acc - fp32):+.2f}" if acc is not None and fp32 is not None and row["route"] != "fp32" else ""
        std = f" ± {row['test_accuracy_std']:.4f}" if row.get("test_accuracy_std") else ""
        seeds = f"{row['seeds']}" + (f" ({row['failed']} failed)" if row["failed"] else "")
        note = f"[red]{row['error']}[/red]" if row["error"] else (
            f"val {row['val_accuracy']:.4f}" if row.get("val_accuracy") is not None else "")
        if row.get("ebops_values") is not None:
            note = "; ".join(filter(None, [note, f"by value as qconvert counts: {row['ebops_values']:,.0f} EBOPs"]))
        if row.get("target") and row["ebops"] is not None:
            note = f"{'target met' if row['ebops'] <= row['target'] else 'over the target'}"
        table.add_row(case, row["label"], seeds, f"{acc:.4f}{std}" if acc is not None else "—", delta,
                      f"{row['ebops']:,.0f}" if row["ebops"] is not None else "—",
                      f"{row['wall_s']:.0f}" if row["wall_s"] is not None else "—",
                      f"{row['cpu_s']:.0f}" if row["cpu_s"] is not None else "—", note)
    console = Console(width=200)
    console.print(table)
    for c in checks(rows):
        gap = f", {c['gap_pp']:+.2f} pp, {c['wall_ratio']:.2f}x wall" if c.get("gap_pp") is not None and c.get("wall_ratio") else ""
        found = f"{c['model']} ({c['ebops']:,.0f} EBOPs{gap})" if c["model"] else "no qconvert model"
        console.print(f"{c['case']}: {c['check']}: {found}: {'[green]yes[/green]' if c['pass'] else '[red]no[/red]'}")


def _si(value: float, _pos: object = None) -> str:
    """1000 → 1k, 2.5e6 → 2.5M (tick labels)."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def plot(rows: list[dict[str, Any]], runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    cases = list(dict.fromkeys(r["case"] for r in rows))
    fig, axes = plt.subplots(1, len(cases), figsize=(7 * len(cases), 5), squeeze=False)
    for ax, case in zip(axes[0], cases, strict=True):
        mine = [r for r in rows if r["case"] == case and r["test_accuracy"] is not None and r["ebops"]]
        for r in [r for r in runs if r.case == case and r.error is None and r.route not in ("fp32", "search")]:
            ax.scatter(r.ebops, r.test_accuracy, s=8, alpha=0.3, color="tab:orange" if r.route == "hgq2" else "tab:blue")
        hgq = sorted((r for r in mine if r["route"] == "hgq2"), key=lambda r: r["ebops"])
        if hgq:
            ax.plot([r["ebops"] for r in hgq], [r["test_accuracy"] for r in hgq], "o-", color="tab:orange", label="HGQ2 0.2 (mean per β)")
            for r in hgq:
                ax.annotate(r["label"].split()[-1], (r["ebops"], r["test_accuracy"]), fontsize=7, xytext=(4, -10),
                            textcoords="offset points")
        front = sorted((r for r in mine if r["route"] == "search"), key=lambda r: r["ebops"])
        if front:
            ax.step([r["ebops"] for r in front], [r["test_accuracy"] for r in front], "s-", where="post",
                    color="tab:green", label="qconvert search front (pooled seeds)")
        for route, marker in (("6bit", "D"), ("6bit-pruned", "v"), ("target", "*")):
            pts = [r for r in mine if r["route"] == route]
            for i, r in enumerate(pts):
                ax.scatter(r["ebops"], r["test_accuracy"], marker=marker, s=90 if marker == "*" else 50, color="tab:blue",
                           edgecolor="black", zorder=3, label=f"qconvert {r['label']}" if route != "target" else
                           ("qconvert --target-ebops" if i == 0 else None))
        fp32 = next((r for r in mine if r["route"] == "fp32"), None)
        if fp32:
            ax.axhline(fp32["test_accuracy"], color="gray", ls="--", lw=1, label=f"FP32 {fp32['test_accuracy']:.4f}")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_si))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("EBOPs (qconvert's count for qconvert, HGQ2's for HGQ2)")
        ax.set_ylabel("test accuracy")
        ax.set_title(case)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
