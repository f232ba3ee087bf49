"""``qconvert batch``: convert a collection of models."""

from __future__ import annotations

import os

import click

from ..runtime import quiet_backends
from .common import (
    loading_options,
    make_console,
    run,
)


@click.command("batch")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("-r", "--rules", "rules", required=True, type=click.Path(path_type=str), help="Rule file (YAML).")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=str),
              help="Output folder: OUT/<relative path>.keras for each model.")
@click.option("-j", "--jobs", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes (each imports Keras once).")
@click.option("--report", "report_path", type=click.Path(path_type=str), help="Write the batch report as JSON.")
@click.option("--markdown", "markdown_path", type=click.Path(path_type=str), help="Write a Markdown summary.")
@click.option("--resume", is_flag=True, help="Skip models already converted with the same rule file (and input).")
@click.option("--verify", is_flag=True,
              help="Check each model converted with pass-through quantizers against the FP32 model (random inputs).")
@loading_options
@click.pass_context
def batch_cmd(ctx: click.Context, inputs: tuple[str, ...], rules: str, out_dir: str, jobs: int,
              report_path: str | None, markdown_path: str | None, resume: bool, verify: bool,
              custom_objects: tuple[str, ...], unsafe: bool) -> None:
    """Convert every model in folders, files or globs (INPUTS) into OUT. Exit 1 if any model failed."""

    def job() -> int:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from ..batch import run_batch
        from ..io import write_text_atomic
        from ..rules import load_rules

        ruleset = load_rules(rules)  # rule errors first: no Keras import
        for path in (report_path, markdown_path):
            if path is not None and not os.path.isdir(os.path.dirname(path) or "."):
                raise click.UsageError(f"{path}: folder {os.path.dirname(path)} does not exist")
        quiet_backends()
        from ..model.load import resolve_custom_objects

        resolve_custom_objects(custom_objects)  # a bad --custom-objects: one error (exit 2), not one per model
        progress = Progress(TextColumn("converting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("{task.description}"), console=make_console(stderr=True), transient=True)
        with progress:
            task = progress.add_task("", total=None)
            report = run_batch(
                inputs, ruleset, out_dir, jobs=jobs, resume=resume, verify=verify, safe_mode=not unsafe,
                custom_objects=custom_objects, worker_init=quiet_backends,
                on_start=lambda n: progress.update(task, total=n),
                on_result=lambda r: progress.update(task, advance=1, description=os.path.basename(r.path)),
            )
        report.render(make_console())
        if report_path is not None:
            write_text_atomic(report_path, report.to_json() + "\n")
        if markdown_path is not None:
            write_text_atomic(markdown_path, report.to_markdown())
        return report.exit_code

    run(ctx, job)
