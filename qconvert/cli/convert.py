"""``qconvert MODEL --rules R ...``: the main job."""

from __future__ import annotations

from typing import Any

import click

from ..runtime import quiet_backends
from .common import (
    hls4ml_options,
    loading_options,
    make_console,
    rtl_options,
    rtl_progress,
    run,
    training_options,
    weights_option,
)


@click.command("convert")
@click.argument("model", type=click.Path(path_type=str))
@click.option("-r", "--rules", "rules", required=True, type=click.Path(path_type=str), help="Rule file (YAML).")
@click.option("-o", "--output", type=click.Path(path_type=str), help="Output .keras (default: MODEL_q.keras beside the input).")
@click.option("--report", "report_path", type=click.Path(path_type=str), help="Write the report as JSON.")
@click.option("--strict", is_flag=True, help="Layers the rules leave float without saying so: exit 1, write nothing.")
@training_options
@hls4ml_options
@click.option("--rtl", "rtl_dir", type=click.Path(path_type=str),
              help="Write the RTL (da4ml → Verilog) to DIR, emulate it with Verilator against Keras, synthesize with yosys.")
@rtl_options
@click.option("--qonnx", "qonnx_path", type=click.Path(path_type=str),
              help="Write the QONNX graph (.onnx) and check it bit for bit with qonnx's execution against Keras.")
@weights_option
@loading_options
@click.pass_context
def convert_cmd(ctx: click.Context, model: str, rules: str, output: str | None, report_path: str | None, strict: bool,
                **opts: Any) -> None:
    """Convert MODEL (.keras, .h5, or a Keras 2 .json architecture) with RULES into a QKeras model (.keras)."""

    def job() -> int:
        from ..pipeline import Job
        from ..pipeline import run as run_job

        settings = Job.from_options(
            model, rules, output=output, report=report_path, strict=strict, plot=opts.pop("plot_path"),
            hls4ml_dir=opts.pop("hls4ml_dir"), rtl_dir=opts.pop("rtl_dir"), rtl_progress=rtl_progress(make_console(stderr=True)),
            **opts)  # "X needs Y": SettingsError
        quiet_backends()

        def before_training(report: Any) -> None:  # a wrong rule shows before a long QAT, not after it
            report.render_table(make_console(), title=f"{report.model}: converted, before QAT (the trained model's table follows)")

        result = run_job(settings, on_converted=before_training)
        result.report.render(make_console())
        target = result.report.sections.get("training", {}).get("target_ebops")
        if target is not None:
            from ..train.target import render_target

            render_target(target, make_console())
        if result.output is None:
            names = ", ".join(row.name for row in result.report.leftovers)
            click.echo(f"qconvert: strict: {len(result.report.leftovers)} layer(s) left float without a rule: {names}; nothing written", err=True)
            return 1
        written = [str(result.output)] + [str(path) for path in (result.report.sections.get("accuracy", {}).get("plot"),
                                                                 report_path) if path]
        click.echo(f"wrote {', '.join(written)}")
        return 0

    run(ctx, job)
