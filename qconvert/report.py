"""Report data classes and their renderings: terminal table, JSON, Markdown.

The JSON report is one document that grows by stage: ``layers`` and
``totals`` from conversion; later stages add ``accuracy`` and ``hls4ml``
through :attr:`ConversionReport.sections`.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import OutputError

__all__ = ["LayerRow", "Totals", "ConversionReport", "write_text_atomic", "format_count"]


@dataclass(frozen=True)
class LayerRow:
    name: str
    type_before: str
    type_after: str
    action: str
    rule: str | None
    kernel: str
    bias: str
    activation: str
    params: int
    bops: float
    bops_fp32: float
    bops_ap_fixed_16_6: float
    note: str = ""
    leftover: bool = False
    bops_hls4ml: float | None = None  # at the precisions hls4ml implements, once a project is derived


@dataclass(frozen=True)
class Totals:
    layers: int
    quantized: int
    left_float: int
    leftovers: int
    params: int
    bops: float
    bops_fp32: float
    bops_ap_fixed_16_6: float
    bops_hls4ml: float | None = None  # at the precisions hls4ml implements (accumulators included)

    @property
    def reduction_vs_fp32(self) -> float:
        return self.bops_fp32 / self.bops if self.bops else float("inf")


@dataclass
class ConversionReport:
    model: str
    rules: dict[str, Any]
    layers: list[LayerRow]
    totals: Totals
    output: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)

    @property
    def leftovers(self) -> list[LayerRow]:
        return [row for row in self.layers if row.leftover]

    def to_dict(self) -> dict[str, Any]:
        data = {
            "model": self.model,
            "output": self.output,
            "rules": self.rules,
            "versions": self.versions,
            "layers": [asdict(row) for row in self.layers],
            "totals": asdict(self.totals) | {"bops_reduction_vs_fp32": round(self.totals.reduction_vs_fp32, 2)},
        }
        return data | self.sections

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        head = "| layer | type | kernel | bias | activation | params | BOPs | note |\n|---|---|---|---|---|---:|---:|---|\n"
        body = "".join(
            f"| {r.name} | {_type(r)} | {r.kernel} | {r.bias} | {r.activation} | {r.params} | {format_count(r.bops)} | {r.note} |\n"
            for r in self.layers
        )
        return head + body + "\n" + self.summary_line() + "\n"

    def summary_line(self) -> str:
        t = self.totals
        return (
            f"{t.quantized} of {t.layers} layers quantized, {t.left_float} left float ({t.leftovers} uncovered); "
            f"{t.params:,} parameters; BOPs {format_count(t.bops)} "
            f"(FP32 {format_count(t.bops_fp32)}, ap_fixed<16,6> {format_count(t.bops_ap_fixed_16_6)}; "
            f"{t.reduction_vs_fp32:.1f}x fewer than FP32"
            + (f"; {format_count(t.bops_hls4ml)} at hls4ml's precisions" if t.bops_hls4ml is not None else "")
            + ")"
        )

    def render(self, console: Any) -> None:
        """Print the per-layer table and the totals on a rich console."""
        from rich.table import Table

        table = Table(title=f"{self.model} → {self.output or '(not written)'}", title_justify="left")
        for name, justify in [("layer", "left"), ("type", "left"), ("kernel", "left"), ("bias", "left"),
                              ("activation", "left"), ("params", "right"), ("BOPs", "right"), ("note", "left")]:
            table.add_column(name, justify=justify, overflow="fold", no_wrap=name in ("kernel", "bias", "activation"))
        for r in self.layers:
            style = "yellow" if r.leftover else None
            table.add_row(r.name, _type(r), r.kernel, r.bias, r.activation, f"{r.params:,}", format_count(r.bops), r.note, style=style)
        t = self.totals
        table.add_section()
        table.add_row("total", "", "", "", "", f"{t.params:,}", format_count(t.bops),
                      f"FP32 {format_count(t.bops_fp32)}, ap_fixed<16,6> {format_count(t.bops_ap_fixed_16_6)}")
        console.print(table)
        console.print(self.summary_line())
        if "accuracy" in self.sections:
            render_accuracy(self.sections, console)
        if "hls4ml" in self.sections:
            render_hls4ml(self.sections["hls4ml"], console)


def _type(row: LayerRow) -> str:
    if row.type_before == row.type_after:
        return row.type_before
    return f"{row.type_before or '·'} → {row.type_after or '(folded)'}"


def format_count(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.2f}{unit}"
    return f"{value:.0f}"


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def render_plan(plan: Any, console: Any) -> None:
    """``qconvert rules show``: per layer, the winning rule and what it gives."""
    from rich.table import Table

    table = Table(title=f"{plan.model_name} with {plan.ruleset.source}", title_justify="left")
    for name in ("layer", "type", "action", "rule", "kernel", "bias", "activation", "note"):
        table.add_column(name, overflow="fold", no_wrap=name in ("kernel", "bias", "activation"))
    if plan.input_quantizer is not None:
        for name in plan.input_names:
            table.add_row(f"{name}_quant", "· → QActivation", "insert", "input", "", "", str(plan.input_quantizer), "input quantizer")
    for item in plan.layers:
        specs = item.specs
        kernel = " / ".join(str(specs[r]) for r in ("kernel", "depthwise", "pointwise", "gamma") if r in specs)
        type_ = item.class_name if item.target == item.class_name else f"{item.class_name} → {item.target or '(folded)'}"
        style = "yellow" if item.action in ("uncovered", "unsupported") else None
        table.add_row(item.qualified_name, type_, item.action, item.rule or "-", kernel, str(specs.get("bias", "")),
                      str(specs.get("activation", "")), item.note, style=style)
        if item.split is not None:
            s = item.split
            table.add_row("/".join(item.path[:-1] + (s.name,)), f"· → {s.target}", s.status, s.rule or "-", "", "",
                          str(s.spec) if s.spec else f"float {s.function}",
                          s.note or f"split from activation='{s.function}'",
                          style="yellow" if s.status == "uncovered" else None)
    console.print(table)
    leftovers = plan.leftovers()
    console.print(f"{len(plan.layers)} layers; {len(leftovers)} left float without a rule")


def render_accuracy(sections: dict[str, Any], console: Any) -> None:
    """FP32 / PTQ / QAT side by side: accuracy, loss, ROC AUC."""
    from rich.table import Table

    accuracy = sections["accuracy"]
    table = Table(title=f"accuracy on the {accuracy['split']} split ({accuracy['samples']} samples)", title_justify="left")
    for name in ("model", "accuracy", "loss", "ROC AUC"):
        table.add_column(name, justify="left" if name == "model" else "right")
    labels = {"fp32": "FP32 baseline", "ptq": "converted (PTQ)", "qat": "QAT fine-tuned", "hls4ml": "hls4ml emulation"}
    for key, label in labels.items():
        if key not in accuracy or accuracy[key] is None and key not in accuracy["loss"]:
            continue
        acc = accuracy[key]
        loss = accuracy["loss"].get(key)
        auc = sections.get("auc", {}).get(key)
        table.add_row(label, "-" if acc is None else f"{acc:.4f}", "-" if loss is None else f"{loss:.4f}",
                      "-" if auc is None else f"{auc:.4f}")
    console.print(table)


def render_hls4ml(h: dict[str, Any], console: Any) -> None:
    """The hls4ml section in a few lines: project, agreement with Keras, what limits it, build figures."""

    def pct(v: Any) -> str:
        return "-" if v is None else f"{100 * v:.2f}%"

    console.print(f"hls4ml: {h['backend']} {h['part']} {h['io_type']}, project {h['project_dir']} "
                  f"(compiled in {h['compile_seconds']:.1f} s; input {h['input_precision']})")
    line = (f"  {h['n_samples']} {h['inputs']} samples: argmax agreement {pct(h['argmax_agreement'])}, "
            f"outputs bit-identical {pct(h['exact_fraction'])}")
    if h.get("logits_exact_fraction") is not None:
        line += f", logits bit-identical {pct(h['logits_exact_fraction'])}"
    console.print(line + f", max |diff| {h['max_abs_diff']:.3g}")
    outputs = h.get("outputs") or []
    for o in outputs if len(outputs) > 1 else []:  # a model with several outputs: each one
        agree = "" if o["argmax_agreement"] is None else f"argmax agreement {pct(o['argmax_agreement'])}, "
        console.print(f"  output {o['name']} ({o['units']} units): {agree}bit-identical {pct(o['exact_fraction'])}, "
                      f"max |diff| {o['max_abs_diff']:.3g}")
    if h.get("accuracy_keras") is not None:
        console.print(f"  accuracy: Keras {h['accuracy_keras']:.4f}, hls4ml {h['accuracy_hls4ml']:.4f}")
    if h.get("first_divergent_layer"):
        console.print(f"  first divergent layer: {h['first_divergent_layer']}; limits: {h['limits']}")
    if h.get("bops"):
        console.print(f"  BOPs at hls4ml's precisions (accumulators included): {format_count(h['bops'])}")
    build = h.get("build")
    if build:
        console.print(f"  synthesis: latency {build['latency_min']}-{build['latency_max']} cycles, II {build['ii_min']}, "
                      f"LUT {build['lut']}, FF {build['ff']}, DSP {build['dsp']}, BRAM18 {build['bram_18k']}")
