"""Results of a search: the trials, the Pareto front, the chosen point; search.json, pareto.png, front/NN.yaml.

The front is the set of finished trials no other finished trial dominates on
(validation accuracy, higher is better; cost, lower is better). Trials are
ranked and chosen on the validation split only; the test accuracy (when the
data has a test split) is reported beside it and never used for choosing.

The chosen point: the cheapest front point whose validation accuracy is within
``max_drop`` percentage points of the FP32 model's (1 pp when not given);
when none is, the most accurate front point.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io import atomic_path

__all__ = ["DEFAULT_PICK_DROP", "SearchResult", "collect", "pareto_front"]

#: Percentage points below FP32 validation accuracy the chosen point may lose when ``--max-drop`` is not given.
DEFAULT_PICK_DROP = 1.0


def pareto_front(points: Sequence[Mapping[str, Any]], cost: str) -> list[Mapping[str, Any]]:
    """The points no other point dominates on (``val_accuracy`` max, ``cost`` min), sorted by cost.

    A point dominates another when it is at least as good on both and better on one; of exact ties, the
    first (lowest trial number) is kept.
    """
    ordered = sorted(points, key=lambda p: (p[cost], -p["val_accuracy"], p["number"]))
    front: list[Mapping[str, Any]] = []
    for point in ordered:
        if not front or point["val_accuracy"] > front[-1]["val_accuracy"]:
            front.append(point)
    return front


@dataclass
class SearchResult:
    """A search's outcome. ``trials`` are dicts (``number``, ``state``, ``params``, measured values, ``error``);
    ``front`` the Pareto-optimal finished trials by cost; ``chosen`` one of them (or None)."""

    outdir: str
    cost: str
    settings: dict[str, Any]
    fp32: dict[str, Any]
    references: dict[str, dict[str, Any]]
    trials: list[dict[str, Any]]
    front: list[dict[str, Any]]
    chosen: dict[str, Any] | None
    max_drop: float | None = None
    study: str = ""
    files: dict[str, str] = field(default_factory=dict)
    reproduced: dict[str, Any] | None = None

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.trials:
            out[t["state"]] = out.get(t["state"], 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.study, "settings": self.settings, "cost": self.cost, "max_drop": self.max_drop, "fp32": self.fp32,
                "references": self.references, "counts": self.counts,
                "front": [t["number"] for t in self.front], "chosen": self.chosen["number"] if self.chosen else None,
                "files": self.files, "reproduced": self.reproduced, "trials": self.trials}

    # --- rendering -----------------------------------------------------------------------------------
    def table(self) -> Any:
        """The front as a rich Table (reference presets and FP32 below it)."""
        from rich.table import Table

        fp32 = self.fp32.get("val_accuracy")
        title = f"Pareto front: validation accuracy vs {self.cost}"
        if self.max_drop is not None:
            title += f" (* the cheapest within {self.max_drop:g} pp of FP32)"
        table = Table(title=f"{title} ({len(self.front)} of {self.counts.get('COMPLETE', 0)} complete trials)")
        extra = ["DSP"] if self.cost != "dsp" else []
        for col in ("#", "trial", "val acc", "Δ FP32", "test acc", self.cost, *extra, "rule file"):
            table.add_column(col, justify="right" if col not in ("rule file",) else "left")

        def cells(t: Mapping[str, Any]) -> list[str]:
            return [f"{t['val_accuracy']:.4f}", _delta(t["val_accuracy"], fp32), _fmt(t.get("test_accuracy")),
                    f"{t[self.cost]:,.0f}", *([str(t.get("dsp", ""))] if extra else [])]

        for i, t in enumerate(self.front):
            mark = " *" if self.chosen is not None and t["number"] == self.chosen["number"] else ""
            table.add_row(f"{i:02d}{mark}", str(t["number"]), *cells(t), t.get("rules_file", ""))
        for name, ref in self.references.items():
            if "val_accuracy" in ref:
                table.add_row("ref", name, *cells(ref), "reference")
        if fp32 is not None:
            table.add_row("FP32", "", f"{fp32:.4f}", "", _fmt(self.fp32.get("test_accuracy")), "", *extra and [""], "")
        return table

    def figure(self) -> Any:
        """Accuracy vs cost (log x): every finished trial, the front highlighted, references and FP32."""
        from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure state

        fig = Figure(figsize=(7.0, 4.6), dpi=120)
        ax = fig.subplots()
        done = [t for t in self.trials if t["state"] == "COMPLETE"]
        stopped = [t for t in self.trials if t["state"] == "PRUNED" and t.get("val_accuracy") is not None]
        if done:
            ax.scatter([t[self.cost] for t in done], [t["val_accuracy"] for t in done], s=18, color="0.6",
                       label=f"trials ({len(done)})")
        if stopped:
            ax.scatter([t[self.cost] for t in stopped], [t["val_accuracy"] for t in stopped], s=14, marker="x",
                       color="0.75", label=f"stopped early ({len(stopped)})")
        if self.front:
            ax.step([t[self.cost] for t in self.front], [t["val_accuracy"] for t in self.front], where="post",
                    color="tab:blue", lw=1.2)
            ax.scatter([t[self.cost] for t in self.front], [t["val_accuracy"] for t in self.front], s=36,
                       color="tab:blue", label="Pareto front", zorder=3)
        if self.chosen is not None:
            ax.scatter([self.chosen[self.cost]], [self.chosen["val_accuracy"]], s=140, facecolors="none",
                       edgecolors="tab:red", lw=1.5, label=f"chosen (trial {self.chosen['number']})", zorder=4)
        for i, (name, ref) in enumerate(self.references.items()):
            if "val_accuracy" in ref:
                ax.scatter([ref[self.cost]], [ref["val_accuracy"]], s=70, marker="D", color=f"C{i + 1}",
                           label=f"{name} (preset)", zorder=3)
        fp32 = self.fp32.get("val_accuracy")
        if fp32 is not None:
            ax.axhline(fp32, color="k", ls="--", lw=1, label=f"FP32 ({fp32:.4f})")
        costs = [t[self.cost] for t in done + stopped] + [r[self.cost] for r in self.references.values() if self.cost in r]
        if costs and min(costs) <= 0:  # a zero cost (no DSP) has no place on a log axis
            ax.set_xscale("symlog", linthresh=1.0)
        else:
            ax.set_xscale("log")
        ax.set_xlabel(self.cost.upper() if self.cost != "ebops" else "EBOPs")
        ax.set_ylabel("validation accuracy")
        accs = [t["val_accuracy"] for t in done + stopped] + ([fp32] if fp32 is not None else [])
        if accs:
            top = max(accs)
            low = min([max(min(accs), top - 0.25), *(t["val_accuracy"] for t in self.front)]) - 0.01  # all the front
            ax.set_ylim(low, top + 0.01)
            hidden = sum(a < low for a in accs)
            if hidden:
                ax.text(0.01, 0.01, f"{hidden} trial(s) below {low:.2f} not shown", transform=ax.transAxes,
                        fontsize=8, color="0.4")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        return fig

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.figure().savefig(buf, format="png")
        return buf.getvalue()

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{i:02d}</td><td>{t['number']}</td><td>{t['val_accuracy']:.4f}</td><td>{_fmt(t.get('test_accuracy'))}"
            f"</td><td>{t[self.cost]:,.0f}</td><td>{t.get('rules_file', '')}</td></tr>"
            for i, t in enumerate(self.front))
        png = base64.b64encode(self._repr_png_()).decode("ascii")
        return (f"<table><tr><th>#</th><th>trial</th><th>val acc</th><th>test acc</th><th>{self.cost}</th>"
                f"<th>rule file</th></tr>{rows}</table><img src='data:image/png;base64,{png}'/>")

    def __rich__(self) -> Any:
        return self.table()

    # --- files ---------------------------------------------------------------------------------------
    def write(self, space: Any, header: Any) -> None:
        """Write ``front/NN.yaml`` (via ``space.yaml(params, header(trial, path))``), ``pareto.png`` and
        ``search.json`` into ``outdir``, each atomically (the front folder is replaced whole)."""
        out = Path(self.outdir)
        staging = Path(tempfile.mkdtemp(prefix=".front-", dir=out))
        from ..io import new_file_mode

        staging.chmod(new_file_mode() | 0o111)  # a folder as mkdir makes it, not mkdtemp's 0700
        for i, t in enumerate(self.front):
            name = f"front/{i:02d}.yaml"
            (staging / f"{i:02d}.yaml").write_text(space.yaml(t["params"], header(t, str(out / name))), encoding="utf-8")
            t["rules_file"] = name
        old = out / "front"
        trash = out / f".front-old-{os.getpid()}"
        if old.exists():
            old.rename(trash)
        staging.rename(old)
        shutil.rmtree(trash, ignore_errors=True)
        self.files = {"front": str(old), "pareto": str(out / "pareto.png"), "json": str(out / "search.json")}
        with atomic_path(out / "pareto.png", suffix=".png") as tmp:
            self.figure().savefig(tmp, format="png")
        self.write_json()

    def write_json(self) -> None:
        from ..io import write_text_atomic

        text = json.dumps(_finite(self.to_dict()), indent=1, default=str, allow_nan=False)
        write_text_atomic(Path(self.outdir) / "search.json", text + "\n")


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None: search.json is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "—"


def _delta(value: float, ref: float | None) -> str:
    return f"{100 * (value - ref):+.2f} pp" if ref is not None else ""


def collect(study: Any, space: Any, settings: Any, outdir: str, max_drop: float | None) -> SearchResult:
    """A :class:`SearchResult` from the study's trials (``space`` maps categorical labels back to choices)."""
    from dataclasses import asdict

    from .study import params_of

    trials = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"number": t.number, "state": t.state.name, "params": params_of(t, space)}
        attrs = dict(t.user_attrs)
        for key in ("host", "pid", "heartbeat", "constraint"):
            attrs.pop(key, None)
        row.update(attrs)
        if row["state"] == "FAIL" and "error" not in row:
            row["error"] = "its worker stopped (killed, interrupted or lost) before the trial finished"
        if t.datetime_start and t.datetime_complete:
            row["wall_seconds"] = round((t.datetime_complete - t.datetime_start).total_seconds(), 2)
        trials.append(row)
    cost = settings.cost
    finished = [t for t in trials if t["state"] == "COMPLETE" and t.get("val_accuracy") is not None]
    front = list(pareto_front(finished, cost))  # the same dicts: a front trial in search.json names its rule file
    fp32 = dict(study.user_attrs.get("fp32", {}))
    references = {k.split(":", 1)[1]: v for k, v in study.user_attrs.items() if k.startswith("reference:")}
    chosen = None
    if front:
        drop = (max_drop if max_drop is not None else DEFAULT_PICK_DROP) / 100.0
        ok = [t for t in front if fp32.get("val_accuracy") is None or t["val_accuracy"] >= fp32["val_accuracy"] - drop]
        chosen = ok[0] if ok else max(front, key=lambda t: t["val_accuracy"])
    return SearchResult(outdir=outdir, cost=cost, settings=asdict(settings), fp32=fp32, references=references,
                        trials=trials, front=front, chosen=chosen, max_drop=max_drop, study=study.study_name)
