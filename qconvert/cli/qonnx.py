"""``qconvert qonnx``: the QONNX graph of a converted model, verified bit for bit with qonnx's execution."""

from __future__ import annotations

import click

from ..runtime import quiet_backends
from .common import make_console, run


@click.command("qonnx")
@click.argument("model", type=click.Path(path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(path_type=str), help="The QONNX graph to write (.onnx).")
@click.option("--data", type=click.Path(path_type=str),
              help="Check the graph on the held-out split of this data (else 1,000 sampled inputs).")
@click.option("--input-precision", help="Input type, e.g. 'ap_fixed<16,6>' (default: input quantizer, else data range).")
@click.option("--hls4ml", "hls4ml_dir", type=click.Path(path_type=str),
              help="Also compile the graph with hls4ml's QONNX frontend in DIR and compare its emulation with Keras.")
@click.option("--report", "report_path", type=click.Path(path_type=str), help="Write the JSON report (a 'qonnx' section).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the data split (as the main job's --seed).")
@click.pass_context
def qonnx_cmd(ctx: click.Context, model: str, output: str, data: str | None, input_precision: str | None,
              hls4ml_dir: str | None, report_path: str | None, seed: int) -> None:
    """QONNX graph of a converted MODEL (.keras): Quant nodes for every quantizer, cleaned by qonnx, run by qonnx's
    execute_onnx and compared with Keras layer by layer."""

    def job() -> int:
        quiet_backends()
        from pathlib import Path

        from ..export.qonnx import QonnxOptions
        from ..pipeline import qonnx_file
        from ..qonnx_report import render_qonnx

        options = QonnxOptions(Path(output), input_precision=input_precision,
                               hls4ml_dir=Path(hls4ml_dir) if hls4ml_dir else None)
        result = qonnx_file(model, options, data=data, report_path=report_path, seed=seed)
        render_qonnx(result.to_dict(), make_console())
        click.echo(f"wrote {output}")
        return 0

    run(ctx, job)
