"""The results of ``qconvert batch``: one per model, and the batch's report (table, JSON, Markdown, exit code)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["BatchReport", "ModelResult", "Status"]

Status = Literal["converted", "failed", "skipped"]


@dataclass(frozen=True)
class ModelResult:
    """What happened to one model: its status, the error line of a failure, layers converted, time, output."""

    path: str
    status: Status
    error: str | None = None
    layers_converted: int = 0
    seconds: float = 0.0
    output: str | None = None
    kind: str = ""
    weights: str | None = None
    max_abs_diff: float | None = None


@dataclass(frozen=True)
class BatchReport:
    """The results of one batch: a table (``render``), JSON (``to_json``: ``models`` and ``totals``), a Markdown
    summary, and the exit code (0 when no model failed, else 1)."""

    rules: dict[str, Any]
    output: str
    jobs: int
    models: tuple[ModelResult, ...]
    seconds: float
    verify: bool = False
    versions: dict[str, str] = field(default_factory=dict)

    def count(self, status: Status) -> int:
        return sum(1 for m in self.models if m.status == status)

    @property
    def exit_code(self) -> int:
        return 1 if self.count("failed") else 0

    def totals(self) -> dict[str, Any]:
        converted = [m for m in self.models if m.status == "converted"]
        busy = sum(m.seconds for m in converted)
        return {
            "models": len(self.models),
            "converted": len(converted),
            "failed": self.count("failed"),
            "skipped": self.count("skipped"),
            "layers_converted": sum(m.layers_converted for m in converted),
            "seconds": round(self.seconds, 3),
            "seconds_per_model": round(busy / len(converted), 3) if converted else None,
            "models_per_minute": round(60 * len(converted) / self.seconds, 1) if converted and self.seconds else None,
        }

    def to_dict(self) -> dict[str, Any]:
        models = []
        for m in self.models:
            row = asdict(m) | {"seconds": round(m.seconds, 3)}
            if not self.verify:
                row.pop("max_abs_diff")
            models.append(row)
        return {"rules": self.rules, "output": self.output, "jobs": self.jobs, "verify": self.verify,
                "versions": self.versions, "models": models, "totals": self.totals()}

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        t = self.totals()
        lines = [
            "# qconvert batch",
            "",
            f"Rules: `{self.rules.get('source')}` (sha256 `{str(self.rules.get('sha256'))[:12]}`) → `{self.output}`",
            "",
            f"**{t['converted']} converted, {t['failed']} failed, {t['skipped']} skipped** of {t['models']} "
            f"in {t['seconds']:.1f} s with {self.jobs} worker(s)"
            + (f", {t['models_per_minute']} models/minute" if t["models_per_minute"] else "") + ".",
            "",
            "| model | status | layers converted | seconds |" + (" max diff (pass-through) |" if self.verify else "")
            + " error |",
            "|---|---|---:|---:|" + ("---:|" if self.verify else "") + "---|",
        ]
        for m in self.models:
            diff = f" {m.max_abs_diff:.2e} |" if self.verify and m.max_abs_diff is not None else (" |" if self.verify else "")
            error = (m.error or "").replace("|", "\\|")
            lines.append(f"| {m.path} | {m.status} | {m.layers_converted} | {m.seconds:.2f} |{diff} {error} |")
        return "\n".join(lines) + "\n"

    def render(self, console: Any) -> None:
        """The per-model table and the totals, on a rich console."""
        from rich.table import Table

        table = Table(title=f"qconvert batch → {self.output}", title_justify="left")
        table.add_column("model", overflow="fold")
        table.add_column("status")
        table.add_column("layers", justify="right")
        table.add_column("s", justify="right")
        if self.verify:
            table.add_column("max diff", justify="right")
        table.add_column("error", overflow="fold")
        style = {"converted": "green", "failed": "red", "skipped": "yellow"}
        for m in self.models:
            cells = [m.path, f"[{style[m.status]}]{m.status}[/]", str(m.layers_converted), f"{m.seconds:.2f}"]
            if self.verify:
                cells.append(f"{m.max_abs_diff:.1e}" if m.max_abs_diff is not None else "")
            cells.append(m.error or "")
            table.add_row(*cells, style=None)
        console.print(table)
        t = self.totals()
        rate = f", {t['models_per_minute']} models/minute" if t["models_per_minute"] else ""
        console.print(f"{t['converted']} converted, {t['failed']} failed, {t['skipped']} skipped of {t['models']} "
                      f"in {t['seconds']:.1f} s ({self.jobs} worker(s){rate})")
