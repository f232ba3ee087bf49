"""Renderings of the report's stage sections (calibration, accuracy, pruning, hls4ml, RTL) for the terminal,
and the number formats every table uses. Each function takes the section as the JSON report holds it."""

from __future__ import annotations

from typing import Any

__all__ = ["format_count", "format_percent", "render_accuracy", "render_calibration", "render_hls4ml",
           "render_pruning", "render_rtl"]


def format_count(value: float) -> str:
    """A count for a table cell: ``1234567`` → ``1.23M`` (k, M, G), small values as integers."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.2f}{unit}"
    return f"{value:.0f}"


def format_percent(value: float | None) -> str:
    """A fraction as a percentage with one decimal (``0.1234`` → ``12.3%``); empty for None."""
    return "" if value is None else f"{100 * value:.1f}%"


def render_accuracy(sections: dict[str, Any], console: Any) -> None:
    """FP32 / PTQ / QAT side by side: accuracy, loss, ROC AUC."""
    from rich.table import Table

    accuracy = sections["accuracy"]
    table = Table(title=f"accuracy on the {accuracy['split']} split ({accuracy['samples']} samples)", title_justify="left")
    for name in ("model", "accuracy", "loss", "ROC AUC"):
        table.add_column(name, justify="left" if name == "model" else "right")
    calibrated = "ptq_uncalibrated" in accuracy
    labels = {"fp32": "FP32 baseline", "ptq_uncalibrated": "converted, auto → integer 0 (PTQ)",
              "ptq": "converted, calibrated (PTQ)" if calibrated else "converted (PTQ)", "qat": "QAT fine-tuned",
              "hls4ml": "hls4ml emulation"}
    for key, label in labels.items():
        if key not in accuracy or (accuracy[key] is None and key not in accuracy["loss"]):
            continue
        acc = accuracy[key]
        loss = accuracy["loss"].get(key)
        auc = sections.get("auc", {}).get(key)
        table.add_row(label, "-" if acc is None else f"{acc:.4f}", "-" if loss is None else f"{loss:.4f}",
                      "-" if auc is None else f"{auc:.4f}")
    console.print(table)
    for key in ("warning", "qat_warning"):
        if accuracy.get(key):
            console.print(f"[yellow]warning[/yellow]: {accuracy[key]}")
    training = sections.get("training")
    if training:
        conv = training.get("convergence") or {}
        verdict = {True: "[green]looks converged[/green]", False: "[yellow]not converged[/yellow]",
                   None: "convergence unknown"}[conv.get("converged")]
        target = training.get("target_ebops")
        head = (f"QAT: {target['search_epochs']} epochs learning bit widths at lr {target['settings']['lr']:.3g}, then "
                "fine-tuning " if target and target.get("settings") else "QAT: ")
        console.print(f"{head}{training['epochs_run']} epochs, batch size {training['batch_size']}, lr {training['lr']:.3g} "
                      f"({training['steps_per_epoch']} steps per epoch, {training['optimizer_steps']} in all)"
                      + (f", distilled from FP32 (T={training['distill']['temperature']:g}, "
                         f"alpha={training['distill']['alpha']:g})" if training.get("distill") else "")
                      + f"; {verdict}: {conv.get('reason', '')}" + (f"; {conv['advice']}" if conv.get("advice") else ""))
        if training.get("resume_note"):
            console.print(f"QAT: {training['resume_note']}")


def render_calibration(c: dict[str, Any], console: Any) -> None:
    """Resolved ``integer: auto`` values and saturating quantizers (all entries are in the JSON report)."""
    from rich.table import Table

    shown = [e for e in c["entries"] if e["resolved"] or e["saturates"]]
    if shown:
        seen = f"{c['rows']} calibration rows, p{c['percentile']:g}" if c["rows"] else "weights only, no data"
        table = Table(title=f"calibration ({seen})", title_justify="left")
        for name in ("layer", "role", "quantizer", "integer", "from", "statistic", "clipped"):
            table.add_column(name, justify="right" if name in ("integer", "clipped") else "left")
        for e in shown:
            table.add_row(e["layer"], e["role"], e["quantizer"], f"{e['integer']}" + (" (auto)" if e["resolved"] else ""),
                          e["source"], f"{e['statistic']} = {e['value']:.4g}",
                          "-" if e["clipped"] is None else f"{100 * e['clipped']:.2f}%")
        console.print(table)
    for warning in c.get("warnings", []):
        console.print(f"[yellow]saturation:[/yellow] {warning}")


def verdict(label: str, r: dict[str, Any]) -> str:
    """The first line of an hls4ml or RTL block: are the logits (else the outputs) bit-identical to Keras, on how
    many rows (``r``: the section, with ``logits_exact_fraction`` or ``exact_fraction``, ``n_samples``, ``inputs``)."""
    fraction, what = r.get("logits_exact_fraction"), "logits"
    if fraction is None:
        fraction, what = r.get("exact_fraction"), "outputs"
    if fraction is None or not r.get("n_samples"):
        return f"{label}: not emulated, nothing verified"
    n = int(r["n_samples"])
    rows = f"{n:,} {'given rows' if r.get('inputs') == 'given' else 'sampled inputs'}"
    if fraction == 1.0:
        return f"{label}: [green]{what} bit-identical 100.00% (all {rows}): verified[/green]"
    same = round(fraction * n)
    return f"{label}: [yellow]{what} bit-identical {100 * fraction:.2f}% ({same:,} of {rows}): NOT bit-exact[/yellow]"


def render_hls4ml(h: dict[str, Any], console: Any) -> None:
    """The hls4ml section, verdict first: bit-identical or not, then project, agreement, limits, build figures."""

    def pct(v: Any) -> str:
        return "-" if v is None else f"{100 * v:.2f}%"

    console.print(verdict("hls4ml", h))
    console.print(f"  project {h['project_dir']}: {h['backend']} {h['part']} {h['io_type']}, compiled in "
                  f"{h['compile_seconds']:.1f} s; input {h['input_precision']}")
    line = f"  argmax agreement {pct(h['argmax_agreement'])}, max |diff| {h['max_abs_diff']:.3g}"
    if h.get("logits_exact_fraction") is not None and h.get("exact_fraction") != h["logits_exact_fraction"]:
        line += (f"; the model's outputs after the logits (e.g. softmax, which hls4ml computes from a table) are "
                 f"bit-identical {pct(h['exact_fraction'])}: expected, see limits")
    console.print(line, soft_wrap=False)
    outputs = h.get("outputs") or []
    for o in outputs if len(outputs) > 1 else []:  # a model with several outputs: each one
        agree = "" if o["argmax_agreement"] is None else f"argmax agreement {pct(o['argmax_agreement'])}, "
        console.print(f"  output {o['name']} ({o['units']} units): {agree}bit-identical {pct(o['exact_fraction'])}, "
                      f"max |diff| {o['max_abs_diff']:.3g}")
    if h.get("accuracy_keras") is not None:
        console.print(f"  accuracy: Keras {h['accuracy_keras']:.4f}, hls4ml {h['accuracy_hls4ml']:.4f}")
    if h.get("first_divergent_layer"):
        console.print(f"  first divergent layer: {h['first_divergent_layer']}")
        console.print(f"  limits: {h['limits']}")
    if h.get("bops"):
        console.print(f"  BOPs at hls4ml's precisions (accumulators included): {format_count(h['bops'])}")
    if h.get("lut_da_total") is not None:
        console.print(f"  strategy {h['strategy']}: da4ml's LUT estimate {format_count(h['lut_da_total'])} "
                      "(per layer in the table, column LUT (DA))")
    build = h.get("build")
    if build:
        console.print(f"  synthesis: latency {build['latency_min']}-{build['latency_max']} cycles, II {build['ii_min']}, "
                      f"LUT {build['lut']}, FF {build['ff']}, DSP {build['dsp']}, BRAM18 {build['bram_18k']}")


def render_pruning(p: dict[str, Any], console: Any) -> None:
    """The pruning panel: per pruned layer, target and measured sparsity; the cost before and after."""
    from rich.panel import Panel

    if not p.get("applied"):
        console.print(f"pruning: {p.get('note', 'not applied')}")
        return
    lines = [f"{name}: {100 * v['sparsity']:.1f}% zeros (target {100 * v['target']:g}%, epochs {v['start_epoch']}-{v['end_epoch']})"
             for name, v in p["layers"].items()]
    before, after = p["before"], p["after"]
    lines.append(f"EBOPs {format_count(before['ebops'])} → {format_count(after['ebops'])}; "
                 f"multiplies {before['multiplies']:,} → {after['multiplies']:,}; DSP {before['dsp']:,} → {after['dsp']:,}")
    console.print(Panel("\n".join(lines), title="pruning (QAT)", title_align="left", expand=False))


def render_rtl(r: dict[str, Any], console: Any) -> None:
    """The ``rtl`` section: emulation against Keras, yosys's cells beside da4ml's estimate, latency, wall times."""
    from rich.table import Table

    s = r["seconds"]
    if r.get("logits_exact_fraction") is not None:
        console.print(verdict("RTL (Verilator emulation)", r))
    console.print(f"  {r['flavor']}, top {r['top']}: {r['project_dir']}; input {r['input_precision']} "
                  f"({r['input_source']}); outputs the logits of '{r['logits_layer']}'")
    if r.get("logits_exact_fraction") is not None:
        console.print(f"  argmax agreement {100 * r['argmax_agreement']:.2f}%, max |diff| {r['max_abs_diff']:.3g}")
        if r.get("accuracy_keras") is not None:
            console.print(f"  accuracy: Keras {r['accuracy_keras']:.4f}, RTL {r['accuracy_rtl']:.4f}")
        if r.get("first_divergent_layer"):
            console.print(f"  first divergent layer: {r['first_divergent_layer']}")
        console.print(f"  limits: {r['limits']}")
    elif r.get("emulation_skipped"):
        console.print(f"  emulation: {r['emulation_skipped']}")
    table = Table(title=f"hardware at {r['clock_ns']:g} ns", title_justify="left")
    for col in ("", "LUT", "CARRY", "FF", "DSP", "BRAM", "latency", "seconds"):
        table.add_column(col, justify="left" if not col else "right")
    table.add_row("da4ml estimate", format_count(r["lut_da4ml"]), "-", f"{r['ff_da4ml']:,}", "0", "0",
                  f"{r['latency_cycles']} cycles", f"{s['trace'] + s['write']:.1f}")
    synth = r.get("synth")
    if synth:
        sizes = " ".join(f"{k[3:]}:{v:,}" for k, v in synth["lut_by_size"].items())
        table.add_row(f"yosys {synth['family']}", f"{synth['lut']:,} ({sizes})", f"{synth['carry']:,}",
                      f"{synth['ff']:,}", f"{synth['dsp']}", f"{synth['bram']:g}", "", f"{synth['seconds']:.1f}")
    console.print(table)
    if s.get("verilator") is not None:
        console.print(f"  seconds: trace {s['trace']}, write {s['write']}, Verilator build {s['verilator']}, "
                      f"emulation {s['emulate']}, yosys {'not run' if s['yosys'] is None else s['yosys']}")
    for note in r.get("notes", []):
        console.print(f"  note: {note}")
