"""The command line: parse, build the settings, call the library, render, exit code. Imports are lazy.

One module per command; the options several commands share live in :mod:`.common`. Nothing in qconvert
imports this package. Exit codes: 0 success; 1 finished with failures, pending changes (``--check``) or
``--strict`` leftovers; 2 usage, rule, input, data or output error (one line on stderr; ``--debug`` for the
traceback).
"""

from __future__ import annotations

import difflib
import os
import sys
from typing import Any

import click

from .batch import batch_cmd
from .convert import convert_cmd
from .demo import demo_cmd
from .migrate import migrate_cmd
from .qonnx import qonnx_cmd
from .rtl import rtl_cmd
from .rules import rules_group
from .search import search_cmd

__all__ = ["cli", "main"]

_GROUP_FLAGS = ("--debug", "--help", "-h", "--version")


class _MainJobGroup(click.Group):
    """A group whose default command is ``convert``: ``qconvert MODEL --rules R`` works."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """click's ``main`` with one error style: a usage error (unknown option, bad choice, missing value) is one
        ``qconvert: error:`` line on stderr and exit 2, as every other error is."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # `qconvert`, `qconvert rules`: the help, as click shows it
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"qconvert: error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rest = list(args)
        i = 0
        while i < len(rest) and rest[i] in _GROUP_FLAGS:
            i += 1
        if i < len(rest) and rest[i] not in self.commands:
            if _looks_like_a_command(rest[i]):
                close = difflib.get_close_matches(rest[i], list(self.commands), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else f" Commands: {', '.join(self.commands)}."
                raise click.UsageError(f"No such command {rest[i]!r}.{hint}", ctx)
            rest.insert(i, "convert")
        return super().parse_args(ctx, rest)


def _looks_like_a_command(word: str) -> bool:
    """A bare word (no path separator, no suffix, no option) that names no file: a mistyped command, not a MODEL."""
    return not word.startswith("-") and "/" not in word and "." not in word and not os.path.exists(word)


@click.group(cls=_MainJobGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="qconvert", prog_name="qconvert")
def cli(debug: bool) -> None:
    """Turn FP32 Keras 3 models into QKeras models, by rule files.

    \b
    Main job:
      qconvert MODEL --rules RULES [-o OUT.keras] [--report report.json] [--strict]
    """


# The registry of commands: explicit, in the order `qconvert --help` lists them.
for _command in (convert_cmd, rules_group, migrate_cmd, batch_cmd, search_cmd, rtl_cmd, qonnx_cmd, demo_cmd):
    cli.add_command(_command)


def main() -> None:
    """The ``qconvert`` console script. After Ctrl-C (exit 130: the interrupted stage has already cleaned up and
    said so) the process leaves without Python's teardown, which takes seconds once TensorFlow is loaded and a large
    RTL trace is in memory (measured: 2.0 s after the message, 0.1 s without it)."""
    try:
        cli(prog_name="qconvert")
    except SystemExit as exc:
        if exc.code == 130:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        raise
