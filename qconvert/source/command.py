"""``qconvert migrate``: the CLI's side of source migration (preview, --write, --out, --check).

Kept here so that ``qconvert/cli.py`` stays a thin shell; rendering goes
through the ``echo`` it passes (click.echo). The diff goes to stdout (so
``qconvert migrate src > change.patch && git apply change.patch`` works); findings
and the summary go to stderr.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import RuleError
from ..rules import RuleSet, load_rules
from .files import FileResult, Outcome, migrate_paths, out_path, report_json, unified_diff, write_atomic
from .findings import Status
from .migrate import check_rules

__all__ = ["run_migrate"]


def run_migrate(
    paths: Sequence[str],
    rules_path: str,
    *,
    write: bool = False,
    out_dir: str | None = None,
    check: bool = False,
    jobs: int = 1,
    report_path: str | None = None,
    strict: bool = False,
    echo: Callable[..., None],
) -> int:
    """Run a migration; return the exit code. Raises QConvertError for bad rules, paths or outputs."""
    rules = load_rules(rules_path)
    check_rules(rules)
    results = migrate_paths(paths, rules, jobs=jobs)
    _check_rules_used(rules, results)
    outcome = Outcome(tuple(results), check=check, strict=strict)
    preview = not (write or out_dir or check)
    for result in results:
        if preview and result.changed:
            echo(unified_diff(result), nl=False)
        for finding in result.findings:
            echo(str(finding), err=True)
    if write:
        for result in outcome.changed:
            write_atomic(result.path, result.new)
            echo(f"wrote {result.path}", err=True)
    elif check:
        for result in outcome.changed:
            echo(f"would change {result.path}", err=True)
    elif out_dir is not None:
        for result in results:
            if result.status is Status.FAILED:
                continue  # never written, not even as a copy
            target = out_path(result.path, paths, out_dir)
            if Path(target).resolve() == Path(result.path).resolve():
                continue  # never overwrite an input
            write_atomic(target, result.new)
        echo(f"wrote {len(results) - len(outcome.failed)} file(s) under {out_dir}", err=True)
    if report_path is not None:
        write_atomic(report_path, report_json(outcome, rules).encode("utf-8"))
    for result in outcome.failed:
        echo(f"qconvert: error: {result.path}: {result.findings[0].message if result.findings else 'failed'}", err=True)
    echo(outcome.summary() + (" (--check: nothing written)" if check else ""), err=True)
    return outcome.exit_code


def _check_rules_used(rules: RuleSet, results: Sequence[FileResult]) -> None:
    """A rule that matches no layer of any file is an error, as in ``convert``, before anything is written."""
    used = frozenset().union(*(r.rules_used for r in results))
    for rule in rules.rules:
        if rule.index not in used:
            raise RuleError(f"matches no layer in the {len(results)} file(s) migrated", source=rules.source,
                            line=rule.line, key=f"rules[{rule.index}].match")
