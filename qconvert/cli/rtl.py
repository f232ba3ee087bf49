"""``qconvert rtl``: RTL of a converted model without Vivado (da4ml, Verilator, yosys)."""

from __future__ import annotations

import click

from ..runtime import quiet_backends
from .common import (
    make_console,
    rtl_options,
    rtl_progress,
    run,
)


@click.command("rtl")
@click.argument("model", type=click.Path(path_type=str))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=str),
              help="Folder for the RTL project (da4ml's layout: src/, sim/, model/, build scripts).")
@click.option("--data", type=click.Path(path_type=str),
              help="Check the emulation on the held-out split of this data (else 1,000 sampled inputs).")
@click.option("--vhdl", is_flag=True, help="Write VHDL (Verilator and yosys run on the same logic as Verilog in OUT/verilog).")
@rtl_options
@click.option("--no-emulate", is_flag=True, help="Skip the Verilator emulation.")
@click.option("--no-synth", is_flag=True, help="Skip yosys (da4ml's estimate only).")
@click.option("--input-precision", help="Input type, e.g. 'ap_fixed<16,6>' (default: input quantizer, else data range).")
@click.option("--report", "report_path", type=click.Path(path_type=str), help="Write the JSON report (an 'rtl' section).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the data split (as the main job's --seed).")
@click.pass_context
def rtl_cmd(ctx: click.Context, model: str, out_dir: str, data: str | None, vhdl: bool, clock_ns: float, family: str,
            max_multiplies: int, solve_timeout: float, synth_timeout: float, no_emulate: bool, no_synth: bool, input_precision: str | None,
            report_path: str | None, seed: int) -> None:
    """RTL of a converted MODEL (.keras) without Vivado: da4ml → Verilog, Verilator emulation vs Keras, yosys figures."""

    def job() -> int:
        quiet_backends()
        from pathlib import Path

        from ..export.rtl import RtlOptions
        from ..pipeline import rtl_file
        from ..sections import render_rtl

        options = RtlOptions(Path(out_dir), flavor="vhdl" if vhdl else "verilog", clock_ns=clock_ns, family=family,
                             emulate=not no_emulate, synth=not no_synth, input_precision=input_precision,
                             max_multiplies=max_multiplies, solve_timeout=solve_timeout, synth_timeout=synth_timeout,
                             progress=rtl_progress(make_console(stderr=True)))
        result = rtl_file(model, options, data=data, report_path=report_path, seed=seed)
        render_rtl(result.to_dict(), make_console())
        if result.missing_tool:
            click.echo(f"qconvert: error: {result.missing_tool}", err=True)
            return 2
        return 0

    run(ctx, job)
