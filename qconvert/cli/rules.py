"""``qconvert rules check|show|list|cat``: validate rule files, preview what they do to a model, read the presets."""

from __future__ import annotations

from typing import Any

import click

from ..errors import QConvertError
from ..runtime import quiet_backends
from .common import (
    calibration_rows_option,
    loading_options,
    make_console,
    run,
)


@click.group("rules")
def rules_group() -> None:
    """Validate rule files and preview what they do to a model."""


@rules_group.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=str))
@click.pass_context
def rules_check(ctx: click.Context, files: tuple[str, ...]) -> None:
    """Validate rule files (no Keras import). Exit 2 if any is invalid."""
    from ..rules import load_rules

    def job() -> int:
        failed = 0
        for path in files:
            try:
                space = _space_or_none(path)
                if space is not None:
                    _echo_space(space, f"{path}: ok (search space: ")
                    continue
                ruleset = load_rules(path)
            except QConvertError as exc:
                click.echo(f"qconvert: error: {exc}", err=True)
                failed += 1
                continue
            click.echo(f"{path}: ok ({len(ruleset.rules)} rules{', input quantizer' if ruleset.input else ''})")
        return 2 if failed else 0

    run(ctx, job)


@rules_group.command("list")
@click.pass_context
def rules_list(ctx: click.Context) -> None:
    """List the shipped presets: name, whether it needs --data (integer: auto), what it does."""

    def job() -> int:
        from ..rules import loads_rules, preset_names, presets_dir, read_rules_text

        table = []
        for name in preset_names():
            path, text = read_rules_text(name)
            ruleset = loads_rules(text, str(path))
            table.append((name, "yes" if ruleset.needs_data else "", ruleset.description or ""))
        console = make_console()
        from rich.table import Table

        out = Table(title=f"shipped presets ({presets_dir()})")
        out.add_column("preset", no_wrap=True, min_width=max(len(row[0]) for row in table))  # the name is copied: never cut
        out.add_column("needs --data")
        out.add_column("what it does")
        for row in table:
            out.add_row(*row)
        console.print(out)
        click.echo("Print one with `qconvert rules cat NAME`; use it as `--rules NAME`, or copy it and edit.")
        return 0

    run(ctx, job)


@rules_group.command("cat")
@click.argument("name")
@click.pass_context
def rules_cat(ctx: click.Context, name: str) -> None:
    """Print the shipped preset NAME (e.g. 6bit-auto), to read or to copy: qconvert rules cat 6bit > mine.yaml"""

    def job() -> int:
        from ..errors import SettingsError, did_you_mean
        from ..rules import preset_names, read_rules_text

        if name not in preset_names():
            raise SettingsError(f"no shipped preset {name!r}{did_you_mean(name, preset_names())} "
                            f"(shipped: {', '.join(preset_names())})")
        click.echo(read_rules_text(name)[1], nl=False)
        return 0

    run(ctx, job)


def _space_or_none(path: str) -> Any:
    """The parsed search space when the file at ``path`` holds choices or ranges, else None (no Keras)."""
    from ..rules import is_space, load_space, resolve_rules_path

    resolved = resolve_rules_path(path)
    try:
        text = resolved.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # load_rules says what is wrong
    return load_space(resolved) if is_space(text, str(resolved)) else None


def _size(size: float) -> str:
    return "continuous" if size == float("inf") else f"{int(size):,}"


def _echo_space(space: Any, lead: str) -> None:
    """A space's size and one line per dimension (where it is written, its values)."""
    click.echo(f"{lead}{len(space.dimensions)} dimensions, {_size(space.size)} rule files)")
    for name, line, values, size in space.describe():
        click.echo(f"  line {line}: {name} = {values} ({_size(size)})")


@rules_group.command("show")
@click.argument("model", type=click.Path(path_type=str))
@click.option("-r", "--rules", "rules", required=True, type=click.Path(path_type=str), help="Rule file (YAML).")
@click.option("--data", type=click.Path(path_type=str),
              help="Calibrate 'integer: auto' on training rows of this data and show what each quantizer clips.")
@calibration_rows_option
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the split and of the calibration rows (as the main job's --seed).")
@click.option("--weights", type=click.Path(path_type=str), help="Weights .h5 of a Keras 2 JSON MODEL (default: found beside it).")
@loading_options
@click.pass_context
def rules_show(ctx: click.Context, model: str, rules: str, data: str | None, calibration_rows: int | None, seed: int,
               weights: str | None, custom_objects: tuple[str, ...], unsafe: bool) -> None:
    """Print, per layer, the rule that matches and the precisions it gives (integer: auto resolved). Converts nothing."""

    def job() -> int:
        quiet_backends()
        from ..report import render_plan
        from ..rules import load_rules
        from ..sections import render_calibration

        space = _space_or_none(rules)
        if space is not None:
            _echo_space(space, f"{rules}: search space (")
            click.echo("The layers below are shown at the first value of each dimension.")
            ruleset = space.ruleset({d.name: d.first for d in space.dimensions})
        else:
            ruleset = load_rules(rules)
        from ..model.calibrate import has_auto
        from ..pipeline import LoadOptions, calibrated_plan, load_inputs, preview_cost

        if calibration_rows is not None and data is None:
            raise click.UsageError("--calibration-rows needs --data")
        inputs = load_inputs(model, data, seed=seed, outputs=False,
                             load=LoadOptions(weights, tuple(custom_objects), not unsafe))
        the_model, x = inputs.model, None
        if inputs.dataset is not None:
            from ..model.calibrate import DEFAULT_ROWS

            x = inputs.dataset.calibration_rows(calibration_rows or DEFAULT_ROWS, seed=seed)
        the_plan, calibration = calibrated_plan(the_model, ruleset, x)
        console = make_console()
        costs = () if has_auto(the_plan) else preview_cost(the_model, the_plan)  # auto left: no model to cost yet
        render_plan(the_plan, console, *costs)
        render_calibration(calibration.to_dict(), console)
        return 0

    run(ctx, job)
