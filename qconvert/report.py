"""Report data classes and their renderings: terminal table, JSON, Markdown.

The JSON report is one document that grows by stage: ``layers`` and
``totals`` from conversion; later stages add ``accuracy`` and ``hls4ml``
through :attr:`ConversionReport.sections`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .sections import (
    format_count,
    format_percent,
    render_accuracy,
    render_calibration,
    render_hls4ml,
    render_pruning,
    render_rtl,
)

__all__ = [
    "Column",
    "ConversionReport",
    "LayerRow",
    "PlanRow",
    "Totals",
    "plan_rows",
    "print_layer_table",
]


@dataclass(frozen=True)
class PlanRow:
    """One row of a plan as people read it: the report's layer table and ``rules show`` both print these.

    ``path`` locates the layer in the converted model (nested models included; None for a folded layer);
    ``prune`` is the rule's pruning spec or None; ``leftover`` marks a layer left float without a rule.
    """

    name: str
    path: tuple[str, ...] | None
    type_before: str
    type_after: str
    action: str
    rule: str | None
    kernel: str
    bias: str
    activation: str
    note: str
    leftover: bool
    prune: Any = None


def plan_rows(plan: Any, *, nested: bool = False) -> list[PlanRow]:
    """The rows of ``plan`` (a :class:`~qconvert.model.plan.Plan`): the input quantizers, then each layer
    (``nested`` models themselves only when asked), each split activation right after its layer."""
    rows: list[PlanRow] = []
    if plan.input_quantizer is not None:
        for name in plan.input_names:
            rows.append(PlanRow(f"{name}_quant", (f"{name}_quant",), "", "QActivation", "quantize", "input", "", "",
                                str(plan.input_quantizer), "input quantizer", False))
    for item in plan.layers:
        if item.action == "nested" and not nested:
            continue
        specs = item.specs
        kernel = " / ".join(str(specs[r]) for r in ("kernel", "depthwise", "pointwise", "gamma") if r in specs)
        rows.append(PlanRow(item.qualified_name, None if item.action == "fold" else tuple(item.path), item.class_name,
                            item.target, item.action, item.rule, kernel, str(specs.get("bias", "")),
                            str(specs.get("activation", "")), item.note, item.action in ("uncovered", "unsupported"),
                            item.prune))
        split = item.split
        if split is not None:
            path = tuple(item.path[:-1]) + (split.name,)
            rows.append(PlanRow("/".join(path), path, "", split.target, split.status, split.rule, "", "",
                                str(split.spec) if split.spec is not None else f"float {split.function}",
                                split.note or f"split from {item.name}(activation='{split.function}')",
                                split.status == "uncovered"))
    return rows


@dataclass(frozen=True)
class LayerRow:
    """One row of the report's layer table: the layer before and after, the rule that decided it, its
    quantizers, parameters and costs (BOPs at its precisions, at FP32 and at ``ap_fixed<16,6>``; EBOPs, multiplies,
    DSPs); the hls4ml and da4ml figures once those stages ran."""

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
    ebops: float | None = None  # effective BOPs, HGQ2's formula by value (qconvert.model.cost), zero weights free
    multiplies: int | None = None  # multiplies left after pruning
    dsp: int | None = None  # DSP estimate, hls4ml Latency strategy
    sparsity: float | None = None  # fraction of exact zeros in the kernels, for layers the rules prune
    lut_da: float | None = None  # da4ml's LUT estimate (hls4ml distributed_arithmetic strategy)


@dataclass(frozen=True)
class Totals:
    """The layer table summed: layers quantized and left float, parameters, BOPs (and at FP32 / ``ap_fixed<16,6>``),
    EBOPs, multiplies and DSPs of the converted (or trained) model."""

    layers: int
    quantized: int
    left_float: int
    leftovers: int
    params: int
    bops: float
    bops_fp32: float
    bops_ap_fixed_16_6: float
    bops_hls4ml: float | None = None  # at the precisions hls4ml implements (accumulators included)
    ebops: float | None = None
    multiplies: int | None = None
    dsp: int | None = None
    lut_da: float | None = None

    @property
    def reduction_vs_fp32(self) -> float:
        return self.bops_fp32 / self.bops if self.bops else float("inf")


@dataclass
class ConversionReport:
    """The report of one conversion: the layers and totals, then one section per later stage (``calibration``,
    ``accuracy``, ``training``, ``pruning``, ``hls4ml``, ``rtl``, ``qonnx``). ``render`` prints it; ``to_json`` is the
    ``--report`` document."""

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
        da = self.totals.lut_da is not None
        head = ("| layer | type | kernel | bias | activation | params | BOPs | EBOPs | DSP | sparsity |"
                + (" LUT (DA) |" if da else "") + " note |\n|---|---|---|---|---|---:|---:|---:|---:|---:|"
                + ("---:|" if da else "") + "---|\n")
        body = "".join(
            f"| {r.name} | {_type(r)} | {r.kernel} | {r.bias} | {r.activation} | {r.params} | {format_count(r.bops)} | "
            f"{_opt(r.ebops)} | {_opt(r.dsp)} | {format_percent(r.sparsity)} |" + (f" {_opt(r.lut_da)} |" if da else "") + f" {r.note} |\n"
            for r in self.layers
        )
        return head + body + "\n" + self.summary_line() + "\n"

    def __str__(self) -> str:
        """What the CLI prints (``print(report)``), as plain text at 200 columns (the CLI's width in logs)."""
        import io

        from rich.console import Console

        console = Console(width=200, record=True, highlight=False, file=io.StringIO())
        self.render(console)
        return console.export_text().rstrip()

    def _repr_markdown_(self) -> str:
        """Jupyter shows a report as its table, cost columns included (not as a dataclass repr)."""
        return self.to_markdown()

    def summary_line(self) -> str:
        t = self.totals
        return (
            f"{t.quantized} of {t.layers} layers quantized, {t.left_float} left float ({t.leftovers} uncovered); "
            f"{t.params:,} parameters; BOPs {format_count(t.bops)} "
            f"(FP32 {format_count(t.bops_fp32)}, ap_fixed<16,6> {format_count(t.bops_ap_fixed_16_6)}; "
            f"{t.reduction_vs_fp32:.1f}x fewer than FP32"
            + (f"; {format_count(t.bops_hls4ml)} at hls4ml's precisions" if t.bops_hls4ml is not None else "")
            + ")"
            + (f"; EBOPs {format_count(t.ebops)}, {t.multiplies:,} multiplies, DSP estimate {t.dsp:,}"
               if t.ebops is not None and t.multiplies is not None and t.dsp is not None else "")
            + (f"; LUT estimate (da4ml) {format_count(t.lut_da)}" if t.lut_da is not None else "")
        )

    def render(self, console: Any) -> None:
        """Print the per-layer table and the totals, then each section, on a rich console."""
        self.render_table(console)
        self.render_sections(console)

    def render_table(self, console: Any, title: str | None = None) -> None:
        """Print the per-layer table and the totals line (``title``: default ``MODEL → OUTPUT``)."""
        da = self.totals.lut_da is not None
        pruned = any(r.sparsity is not None for r in self.layers)
        columns = [Column("layer"), Column("type"), Column("kernel"), Column("bias"), Column("activation"),
                   Column("params", True), Column("BOPs", True), Column("EBOPs", True), Column("DSP", True)]
        columns += [Column("sparsity", True)] * pruned + [Column("LUT (DA)", True)] * da + [Column("note")]
        rows = [([r.name, _type(r), r.kernel, r.bias, r.activation, f"{r.params:,}", format_count(r.bops), _opt(r.ebops),
                  _opt(r.dsp), *[format_percent(r.sparsity)] * pruned, *[_opt(r.lut_da)] * da, r.note],
                 "yellow" if r.leftover else None) for r in self.layers]
        t = self.totals
        total = ["total", "", "", "", "", f"{t.params:,}", format_count(t.bops), _opt(t.ebops), _opt(t.dsp),
                 *([""] * pruned + [_opt(t.lut_da)] * da),
                 f"FP32 {format_count(t.bops_fp32)}, ap_fixed<16,6> {format_count(t.bops_ap_fixed_16_6)}"]
        print_layer_table(console, title or f"{self.model} → {self.output or '(not written)'}", columns, rows, total)
        console.print(self.summary_line())

    def render_sections(self, console: Any) -> None:
        """Print each section of the report (calibration, accuracy, pruning, hls4ml, RTL, QONNX) that it has."""
        if "calibration" in self.sections:
            render_calibration(self.sections["calibration"], console)
        if "accuracy" in self.sections:
            render_accuracy(self.sections, console)
        if "pruning" in self.sections:
            render_pruning(self.sections["pruning"], console)
        if "hls4ml" in self.sections:
            render_hls4ml(self.sections["hls4ml"], console)
        if "rtl" in self.sections:
            render_rtl(self.sections["rtl"], console)
        if "qonnx" in self.sections:
            from .qonnx_report import render_qonnx

            render_qonnx(self.sections["qonnx"], console)


@dataclass(frozen=True)
class Column:
    """A column of a per-layer table: its header and whether it holds numbers (right-aligned, never wrapped)."""

    name: str
    numeric: bool = False


def print_layer_table(console: Any, title: str, columns: list[Column], rows: list[tuple[list[str], str | None]],
                      total: list[str] | None = None) -> None:
    """One row per layer as a table when it fits ``console.width``; otherwise stacked, one block per layer: its
    name, then ``header value`` pairs that wrap between pairs, never inside one (numbers are never broken).

    ``rows``: ``(cells, style)`` with one cell per column (the first is the layer's name); ``total``: a last row.
    """
    from rich.measure import Measurement
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        table.add_column(col.name, justify="right" if col.numeric else "left", no_wrap=col.numeric or i == 0)
    for cells, style in rows:
        table.add_row(*cells, style=style)
    if total is not None:
        table.add_section()
        table.add_row(*total)
    if Measurement.get(console, console.options.update_width(1_000_000), table).maximum <= console.width:
        console.print(table)
        return
    stacked = Table(title=title, title_justify="left", show_header=False, show_lines=True)
    stacked.add_column(no_wrap=True)
    stacked.add_column(overflow="fold")
    every = rows + ([(total, None)] if total is not None else [])
    room = max(20, console.width - max(len(cells[0]) for cells, _ in every) - 7)  # the borders and padding take 7
    for cells, style in every:
        pairs = [value if j == 1 else f"{col.name} {value}"
                 for j, (col, value) in enumerate(zip(columns, cells)) if j > 0 and value]
        stacked.add_row(cells[0], "\n".join(_pack(pairs, room)), style=style)
    console.print(stacked)


def _pack(pairs: list[str], room: int) -> list[str]:
    """``pairs`` on lines of at most ``room`` characters, two spaces apart, broken only between pairs."""
    lines: list[str] = []
    for pair in pairs:
        if lines and len(lines[-1]) + 2 + len(pair) <= room:
            lines[-1] += "  " + pair
        else:
            lines.append(pair)
    return lines


def _type(row: LayerRow | PlanRow) -> str:
    if row.type_before == row.type_after:
        return row.type_before
    return f"{row.type_before or '·'} → {row.type_after or '(folded)'}"


def _opt(value: float | None) -> str:
    return "" if value is None else format_count(value)


def render_plan(plan: Any, console: Any, costs: dict[str, Any] | None = None, pruned: dict[str, Any] | None = None) -> None:
    """``qconvert rules show``: per layer, the winning rule and what it gives; with ``costs`` (name → LayerCost
    of the converted, untrained model) its EBOPs and DSPs, and with ``pruned`` the EBOPs after pruning (est.)."""

    costs = costs or {}
    extra = ["EBOPs", "DSP"] * bool(costs) + ["prune", "EBOPs pruned"] * bool(pruned)
    columns = [Column(name) for name in ("layer", "type", "action", "rule", "kernel", "bias", "activation")]
    columns += [Column(name, True) for name in extra] + [Column("note")]

    def cost_cells(name: str, prune: Any = None) -> list[str]:
        c = costs.get(name)
        cells = [_opt(c.ebops if c else None), _opt(c.dsp if c else None)] if costs else []
        if pruned:
            p = pruned.get(name)
            cells += [f"{100 * prune.sparsity:g}%" if prune else "", _opt(p.ebops if p and prune else None)]
        return cells

    rows = [([row.name, _type(row), row.action, row.rule or "-", row.kernel, row.bias, row.activation,
              *cost_cells(row.name if row.rule != "input" else "", row.prune), row.note],
             "yellow" if row.leftover else None) for row in plan_rows(plan, nested=True)]
    print_layer_table(console, f"{plan.model_name} with {plan.ruleset.source}", columns, rows)
    leftovers = plan.leftovers()
    console.print(f"{len(plan.layers)} layers; {len(leftovers)} left float without a rule")
    if costs:
        line = (f"before training: EBOPs {format_count(sum(c.ebops for c in costs.values()))}, "
                f"{sum(c.multiplies for c in costs.values()):,} multiplies, DSP estimate {sum(c.dsp for c in costs.values()):,}")
        if pruned:
            line += (f"; after one-shot magnitude pruning at the rules' sparsities: EBOPs "
                     f"{format_count(sum(c.ebops for c in pruned.values()))}, {sum(c.multiplies for c in pruned.values()):,} multiplies")
        console.print(line)
