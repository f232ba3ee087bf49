"""``qconvert migrate``: rewrite model-building source code (LibCST)."""

from __future__ import annotations

import click

from .common import (
    run,
)


@click.command("migrate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("-r", "--rules", "rules", required=True, type=click.Path(path_type=str), help="Rule file (YAML).")
@click.option("--write", is_flag=True, help="Rewrite the files in place (atomically).")
@click.option("-o", "--output", "--out", "out_dir", type=click.Path(path_type=str), help="Write a converted copy of the tree to DIR.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if anything would change.")
@click.option("-j", "--jobs", default=1, show_default=True, type=click.IntRange(min=1), help="Worker processes.")
@click.option("--report", "report_path", type=click.Path(path_type=str), help="Write every finding as JSON.")
@click.option("--strict", is_flag=True, help="Exit 1 if any Keras layer construction is left unconverted.")
@click.pass_context
def migrate_cmd(ctx: click.Context, paths: tuple[str, ...], rules: str, write: bool, out_dir: str | None,
                check: bool, jobs: int, report_path: str | None, strict: bool) -> None:
    """Rewrite Keras model code (.py, .ipynb) into QKeras code. Default: print a diff, write nothing.

    Folders are walked recursively (.gitignore respected). Findings go to stderr as
    file:line:col CODE message. Exit codes: 0 nothing to do or all written; 1 a file
    failed to parse, changes pending (--check) or leftovers (--strict); 2 usage or rule error.
    """

    def job() -> int:
        from ..source.command import run_migrate  # libcst only: no TensorFlow

        return run_migrate(paths, rules, write=write, out_dir=out_dir, check=check, jobs=jobs,
                           report_path=report_path, strict=strict, echo=click.echo)

    if sum((write, out_dir is not None, check)) > 1:
        raise click.UsageError("--write, -o/--out and --check exclude each other")
    run(ctx, job)
