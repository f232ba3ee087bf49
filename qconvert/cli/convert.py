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
    run,
    training_options,
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
@click.option("--weights", type=click.Path(path_type=str), help="Weights .h5 of a Keras 2 JSON MODEL (default: found beside it).")
@loading_options
@click.pass_context
def convert_cmd(ctx: click.Context, model: str, rules: str, output: str | None, report_path: str | None, strict: bool,
                **opts: Any) -> None:
    """Convert MODEL (.keras, .h5, or a Keras 2 .json architecture) with RULES into a QKeras model (.keras)."""

    def job() -> int:
        if opts["epochs"] and not opts["data"]:
            raise click.UsageError("--epochs needs --data")
        quiet_backends()
        from ..pipeline import convert_file

        train = None
        if opts["epochs"]:
            from ..train.qat import Distill, TrainOptions

            distill = Distill(opts["distill_temperature"], opts["distill_alpha"]) if opts["distill"] else None
            train = TrainOptions(epochs=opts["epochs"], lr=opts["lr"], batch_size=opts["batch_size"],
                                 patience=opts["patience"], seed=opts["seed"], loss=opts["loss"],
                                 lr_schedule=opts["lr_schedule"], resume=opts["resume"], distill=distill)
        elif opts["distill"]:
            raise click.UsageError("--distill needs --epochs")
        if opts["calibration_rows"] is not None and not opts["data"]:
            raise click.UsageError("--calibration-rows needs --data")
        hls4ml = None
        if opts["hls4ml_dir"]:
            from pathlib import Path

            from ..export import Hls4mlOptions

            hls4ml = Hls4mlOptions(Path(opts["hls4ml_dir"]), backend=opts["backend"], part=opts["part"],
                                   io_type=opts["io_type"], reuse_factor=opts["reuse_factor"],
                                   user_config=Path(opts["hls4ml_config"]) if opts["hls4ml_config"] else None,
                                   build=opts["build"], strategy=opts["strategy"])
        elif opts["build"] or opts["hls4ml_config"] or opts["strategy"]:
            raise click.UsageError("--build, --hls4ml-config and --strategy need --hls4ml DIR")
        rtl = None
        if opts["rtl_dir"]:
            from pathlib import Path

            from ..export.rtl import RtlOptions

            rtl = RtlOptions(Path(opts["rtl_dir"]), clock_ns=opts["clock_ns"], family=opts["family"])
        from ..model.load import resolve_custom_objects

        result = convert_file(model, rules, output=output, report_path=report_path, strict=strict, hls4ml=hls4ml,
                              data=opts["data"], train=train, plot_path=opts["plot_path"],
                              weights=opts["weights"], custom_objects=resolve_custom_objects(opts["custom_objects"]),
                              safe_mode=not opts["unsafe"], calibration_rows=opts["calibration_rows"], rtl=rtl)
        result.report.render(make_console())
        if result.output is None:
            names = ", ".join(row.name for row in result.report.leftovers)
            click.echo(f"qconvert: strict: {len(result.report.leftovers)} layer(s) left float without a rule: {names}; nothing written", err=True)
            return 1
        click.echo(f"wrote {result.output}")
        return 0

    run(ctx, job)
