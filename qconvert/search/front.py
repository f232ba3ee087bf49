"""Results of a search: the trials, the Pareto front, the chosen point; search.json, pareto.png, front/NN.yaml.

The front is the set of finished trials no other finished trial dominates on
(validation accuracy, higher is better; cost, lower is better). Trials are
ranked and chosen on the validation split only; the test accuracy (when the
data has a test split) is reported beside it and never used for choosing.

The chosen point: the cheapest front point whose validation accuracy is within
``max_drop`` percentage points of the FP32 model's (1 pp when not given);
when none is, the most accurate front point.

With ``--retrain-epochs E`` the search's front points (the candidates) and the
references are re-trained for ``E`` epochs (:mod:`.retrain`); each candidate's
row then holds ``retrained`` (the re-trained model's figures), and the front,
the chosen point, the table, the plot and the rule files' headers are those of
the re-trained models: the front is recomputed on their validation accuracy
and cost, so a candidate that re-training left dominated drops off it.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..io import atomic_leftovers, atomic_path

__all__ = ["DEFAULT_PICK_DROP", "STUDY_MARK", "SearchResult", "check_outdir", "collect", "one_writer", "pareto_front"]

#: The file in ``front/`` that names the study whose results the folder holds.
STUDY_MARK = ".study"

#: Percentage points below FP32 validation accuracy the chosen point may lose when ``--max-drop`` is not given.
DEFAULT_PICK_DROP = 1.0

#: pareto.png leaves out front points this far (absolute accuracy) below the best point shown, and says so.
OUTLIER_BAND = 0.25


def pareto_front(points: Sequence[Mapping[str, Any]], cost: str,
                 figures: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None) -> list[Mapping[str, Any]]:
    """The points no other point dominates on (``val_accuracy`` max, ``cost`` min), sorted by cost.

    A point dominates another when it is at least as good on both and better on one; of exact ties, the
    first (lowest trial number) is kept. ``figures(point)`` gives the mapping holding a point's
    ``val_accuracy`` and cost (default: the point itself; e.g. its re-trained figures).
    """
    get = figures or (lambda p: p)
    ordered = sorted(points, key=lambda p: (get(p)[cost], -get(p)["val_accuracy"], p["number"]))
    front: list[Mapping[str, Any]] = []
    for point in ordered:
        if not front or get(point)["val_accuracy"] > get(front[-1])["val_accuracy"]:
            front.append(point)
    return front


def _whole_decades(ax: Any, costs: Sequence[float]) -> None:
    """Set a log x axis to whole decades around ``costs``, with a labelled tick at every power of ten."""
    from matplotlib.ticker import LogLocator

    first = math.floor(math.log10(min(costs)))
    last = max(math.ceil(math.log10(max(costs))), first + 1)
    ax.set_xlim(10.0**first, 10.0**last)
    ax.xaxis.set_major_locator(LogLocator(base=10.0, numticks=last - first + 2))


def _accuracy_range(anchors: Sequence[float], front: Sequence[float], every: Sequence[float],
                    band: float = OUTLIER_BAND) -> tuple[float, float]:
    """The figure's y-range: every anchor (references, FP32, the chosen point), and every front point within
    ``band`` of the best accuracy shown, with a margin. Points further down (a trial that collapsed, often the
    cheapest and so on the front) are left out; the caller notes how many."""
    best = max([*anchors, *front])
    kept = [*anchors, *(a for a in front if a >= best - band)]
    low, top = min(kept), max(every)
    pad = max(0.01, 0.05 * (top - low))
    return low - pad, top + pad


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
    retrain_epochs: int | None = None  # the front re-trained for this many epochs (None: not re-trained)
    search_front: list[int] = field(default_factory=list)  # the front of the short trials (trial numbers)
    warnings: list[str] = field(default_factory=list)  # comparisons that are not like for like (float_gaps)

    def figures(self, point: Mapping[str, Any]) -> Mapping[str, Any]:
        """The figures a trial or reference is judged by: its re-trained model's when the front was re-trained
        (and it was), else its own."""
        return point.get("retrained") or point if self.retrain_epochs else point

    def choose(self) -> None:
        """Set ``front`` (from the re-trained candidates when re-trained) and ``chosen`` from the trials."""
        finished = [t for t in self.trials if t["state"] == "COMPLETE" and t.get("val_accuracy") is not None]
        self.search_front = [t["number"] for t in pareto_front(finished, self.cost)]
        if self.retrain_epochs:
            finished = [t for t in finished if "val_accuracy" in (t.get("retrained") or {})]
        self.front = list(pareto_front(finished, self.cost, self.figures))  # the rows themselves: rule files land in them
        self.chosen = None
        if self.front:
            fp32 = self.fp32.get("val_accuracy")
            drop = (self.max_drop if self.max_drop is not None else DEFAULT_PICK_DROP) / 100.0
            ok = [t for t in self.front if fp32 is None or self.figures(t)["val_accuracy"] >= fp32 - drop]
            self.chosen = ok[0] if ok else max(self.front, key=lambda t: self.figures(t)["val_accuracy"])

    @property
    def retrain_errors(self) -> dict[str, str]:
        """The re-trainings that failed: trial number or reference name → the error."""
        rows = [(str(t["number"]), t) for t in self.trials] + list(self.references.items())
        return {name: row["retrained"]["error"] for name, row in rows if "error" in (row.get("retrained") or {})}

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
                "retrain_epochs": self.retrain_epochs, "search_front": self.search_front,
                "files": self.files, "reproduced": self.reproduced, "warnings": self.warnings, "trials": self.trials}

    # --- rendering -----------------------------------------------------------------------------------
    def table(self) -> Any:
        """The front as a rich Table (reference presets and FP32 below it); re-trained: the re-trained models'
        figures, with each one's validation accuracy in the search beside them."""
        from rich.table import Table

        fp32 = self.fp32.get("val_accuracy")
        retrained = bool(self.retrain_epochs)
        title = f"Pareto front: validation accuracy vs {self.cost}"
        if retrained:
            title += f", re-trained for {self.retrain_epochs} epochs ({self.settings.get('epochs')} in the search)"
        if self.max_drop is not None:
            title += f" (* the cheapest within {self.max_drop:g} pp of FP32)"
        of = (f"{len(self.search_front)} re-trained of the search's front" if retrained
              else f"{self.counts.get('COMPLETE', 0)} complete trials")
        table = Table(title=f"{title} ({len(self.front)} of {of})")
        extra = ["DSP"] if self.cost != "dsp" else []
        before = ["search val"] if retrained else []
        for col in ("#", "trial", "val acc", "Δ FP32", "test acc", self.cost, *extra, *before, "rule file"):
            table.add_column(col, justify="right" if col not in ("rule file",) else "left")

        def cells(point: Mapping[str, Any]) -> list[str]:
            t = self.figures(point)
            return [f"{t['val_accuracy']:.4f}", _delta(t["val_accuracy"], fp32), _fmt(t.get("test_accuracy")),
                    f"{t[self.cost]:,.0f}", *([str(t.get("dsp", ""))] if extra else []),
                    *([_fmt(point.get("val_accuracy"))] if retrained else [])]

        for i, t in enumerate(self.front):
            mark = " *" if self.chosen is not None and t["number"] == self.chosen["number"] else ""
            table.add_row(f"{i:02d}{mark}", str(t["number"]), *cells(t), t.get("rules_file", ""))
        for name, ref in self.references.items():
            if "val_accuracy" in self.figures(ref):
                table.add_row("ref", name, *cells(ref), "reference")
        if fp32 is not None:
            table.add_row("FP32", "", f"{fp32:.4f}", "", _fmt(self.fp32.get("test_accuracy")), "", *extra and [""],
                          *before and [""], "")
        return table

    def figure(self) -> Any:
        """Accuracy vs cost (log x): every finished trial, the front highlighted, references and FP32."""
        from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure state

        fig = Figure(figsize=(7.0, 4.6), dpi=120)
        ax = fig.subplots()
        done = [t for t in self.trials if t["state"] == "COMPLETE"]
        stopped = [t for t in self.trials if t["state"] == "PRUNED" and t.get("val_accuracy") is not None]
        if done:
            short = f", {self.settings.get('epochs')} epochs" if self.retrain_epochs else ""
            ax.scatter([t[self.cost] for t in done], [t["val_accuracy"] for t in done], s=18, color="0.6",
                       label=f"trials ({len(done)}{short})")
        if stopped:
            ax.scatter([t[self.cost] for t in stopped], [t["val_accuracy"] for t in stopped], s=14, marker="x",
                       color="0.75", label=f"stopped early ({len(stopped)})")
        fig_of = self.figures
        if self.retrain_epochs:  # each candidate from its short trial to its re-trained model
            moved = [t for t in self.trials if t.get("retrained") and "val_accuracy" in t["retrained"]]
            for t in moved:
                ax.annotate("", xy=(fig_of(t)[self.cost], fig_of(t)["val_accuracy"]),
                            xytext=(t[self.cost], t["val_accuracy"]),
                            arrowprops={"arrowstyle": "->", "color": "tab:blue", "alpha": 0.35, "lw": 0.8})
            on_front = {t["number"] for t in self.front}
            off = [fig_of(t) for t in moved if t["number"] not in on_front]
            if off:
                ax.scatter([f[self.cost] for f in off], [f["val_accuracy"] for f in off], s=30, facecolors="none",
                           edgecolors="tab:blue", label=f"re-trained, dominated ({len(off)})", zorder=3)
        if self.front:
            label = f"Pareto front, re-trained {self.retrain_epochs} epochs" if self.retrain_epochs else "Pareto front"
            xs, ys = [fig_of(t)[self.cost] for t in self.front], [fig_of(t)["val_accuracy"] for t in self.front]
            ax.step(xs, ys, where="post", color="tab:blue", lw=1.2)
            ax.scatter(xs, ys, s=36, color="tab:blue", label=label, zorder=3)
        if self.chosen is not None:
            ax.scatter([fig_of(self.chosen)[self.cost]], [fig_of(self.chosen)["val_accuracy"]], s=140, facecolors="none",
                       edgecolors="tab:red", lw=1.5, label=f"chosen (trial {self.chosen['number']})", zorder=4)
        for i, (name, ref) in enumerate(self.references.items()):
            if "val_accuracy" in fig_of(ref):
                ax.scatter([fig_of(ref)[self.cost]], [fig_of(ref)["val_accuracy"]], s=70, marker="D", color=f"C{i + 1}",
                           label=f"{name} (preset{', re-trained' if fig_of(ref) is not ref else ''})", zorder=3)
        fp32 = self.fp32.get("val_accuracy")
        if fp32 is not None:
            ax.axhline(fp32, color="k", ls="--", lw=1, label=f"FP32 ({fp32:.4f})")
        shown = [fig_of(r) for r in self.references.values()] + [fig_of(t) for t in self.front]
        costs = [t[self.cost] for t in done + stopped] + [r[self.cost] for r in shown if self.cost in r]
        if costs and min(costs) <= 0:  # a zero cost (no DSP) has no place on a log axis
            ax.set_xscale("symlog", linthresh=1.0)
        else:
            ax.set_xscale("log")
            if costs:
                _whole_decades(ax, costs)
        ax.set_xlabel(self.cost.upper() if self.cost != "ebops" else "EBOPs")
        ax.set_ylabel("validation accuracy")
        anchors = [f["val_accuracy"] for f in (fig_of(r) for r in self.references.values()) if "val_accuracy" in f]
        anchors += ([fp32] if fp32 is not None else []) + ([fig_of(self.chosen)["val_accuracy"]] if self.chosen else [])
        front_accs = [fig_of(t)["val_accuracy"] for t in self.front]
        every = [t["val_accuracy"] for t in done + stopped] + (front_accs if self.retrain_epochs else []) + anchors
        if every:
            low, top = _accuracy_range(anchors, front_accs or every, every)
            ax.set_ylim(low, top)
            hidden = sum(a < low for a in every)
            if hidden:
                ax.text(0.01, 0.01, f"{hidden} point(s) below {low:.2f} not shown", transform=ax.transAxes,
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
            f"<tr><td>{i:02d}</td><td>{t['number']}</td><td>{f['val_accuracy']:.4f}</td><td>{_fmt(f.get('test_accuracy'))}"
            f"</td><td>{f[self.cost]:,.0f}</td><td>{t.get('rules_file', '')}</td></tr>"
            for i, (t, f) in enumerate((t, self.figures(t)) for t in self.front))
        png = base64.b64encode(self._repr_png_()).decode("ascii")
        return (f"<table><tr><th>#</th><th>trial</th><th>val acc</th><th>test acc</th><th>{self.cost}</th>"
                f"<th>rule file</th></tr>{rows}</table><img src='data:image/png;base64,{png}'/>")

    def __rich__(self) -> Any:
        return self.table()

    # --- files ---------------------------------------------------------------------------------------
    def write(self, space: Any, header: Any) -> None:
        """Write ``front/NN.yaml`` (via ``space.yaml(params, header(trial, path))``), ``pareto.png`` and
        ``search.json`` into ``outdir``: one writer at a time (:func:`one_writer`), the front folder built aside
        with the study's mark in it and renamed into place whole, the other files each atomically. A kill at
        any moment leaves a folder :func:`check_outdir` accepts for the same study."""
        out = Path(self.outdir)
        from ..io import new_file_mode

        with one_writer(out):
            for staged in out.glob(".front-*"):  # what a writer killed mid-write left (staging, old front)
                shutil.rmtree(staged)
            for leftover in atomic_leftovers(out / "pareto.png") + atomic_leftovers(out / "search.json"):
                leftover.unlink()
            staging = Path(tempfile.mkdtemp(prefix=".front-", dir=out))
            staging.chmod(new_file_mode() | 0o111)  # a folder as mkdir makes it, not mkdtemp's 0700
            for i, t in enumerate(self.front):
                name = f"front/{i:02d}.yaml"
                (staging / f"{i:02d}.yaml").write_text(space.yaml(t["params"], header(t, str(out / name))),
                                                       encoding="utf-8")
                t["rules_file"] = name
            (staging / STUDY_MARK).write_text(self.study + "\n", encoding="utf-8")
            old = out / "front"
            trash = out / f".front-old-{os.getpid()}"
            if old.exists():
                old.rename(trash)
            staging.rename(old)
            shutil.rmtree(trash, ignore_errors=True)
            self.files = {"front": str(old), "pareto": str(out / "pareto.png"), "json": str(out / "search.json")}
            with atomic_path(out / "pareto.png", suffix=".png") as tmp:
                self.figure().savefig(tmp, format="png")
            self._write_json()

    def write_json(self) -> None:
        """Write ``search.json`` atomically (the trials, the front, the chosen point), as the one writer."""
        with one_writer(Path(self.outdir)):
            self._write_json()

    def _write_json(self) -> None:
        from ..io import write_text_atomic

        text = json.dumps(_finite(self.to_dict()), indent=1, default=str, allow_nan=False)
        write_text_atomic(Path(self.outdir) / "search.json", text + "\n")


@contextmanager
def one_writer(outdir: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the output folder itself (not re-entrant): the workers of one study share
    the folder and write its results one at a time. The lock goes with the process that holds it, killed or
    not, and leaves no file behind."""
    import fcntl

    fd = os.open(outdir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def check_outdir(outdir: Path, study: str) -> None:
    """Refuse an output folder that holds another search's results (:class:`~qconvert.errors.OutputError`):
    its ``search.json`` names another study, or its ``front/`` carries no mark of this one."""
    summary = outdir / "search.json"
    if summary.is_file():
        try:
            held = json.loads(summary.read_text(encoding="utf-8")).get("study")
        except (OSError, ValueError):
            held = None
        if held != study:
            raise OutputError(f"{outdir}: holds the results of search {held!r}, not {study!r}; choose another -o")
    elif (outdir / "front").exists():
        mark = outdir / "front" / STUDY_MARK
        held = mark.read_text(encoding="utf-8").strip() if mark.is_file() else None
        if held != study:
            raise OutputError(f"{outdir}: has a front/ folder that no search wrote here (no mark of search {study!r}); "
                              "choose another -o")


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
    fp32 = dict(study.user_attrs.get("fp32", {}))
    references = {k.split(":", 1)[1]: v for k, v in study.user_attrs.items() if k.startswith("reference:")}
    result = SearchResult(outdir=outdir, cost=settings.cost, settings=asdict(settings), fp32=fp32,
                          references=references, trials=trials, front=[], chosen=None, max_drop=max_drop,
                          study=study.study_name, retrain_epochs=settings.retrain_epochs)
    if result.retrain_epochs:
        from .retrain import attach

        attach(study, result)
    result.choose()
    return result
