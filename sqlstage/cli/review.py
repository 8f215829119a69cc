"""What a pull request needs, offline and without credentials: `plan` (what each
environment would run, for a review comment) and `check-edits` (no migration an
environment has applied was edited or removed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sqlstage.cli.app import State, cli
from sqlstage.cli.output import json_option, json_requested, keep
from sqlstage.cli.render import annotation, plural, relative

if TYPE_CHECKING:  # keep start-up light: `status` and `--help` import no driver
    from sqlstage.checksums import AppliedEdit
    from sqlstage.lint import Finding
    from sqlstage.migration import Migration
    from sqlstage.report import OfflinePlan, OfflinePlans

#: the first line of the Markdown comment, so a workflow can find and update its own comment
COMMENT_MARKER = "<!-- sqlstage plan -->"


@cli.command()
@click.argument("environments", nargs=-1, metavar="[ENV]...")
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "markdown"]),
    default="text",
    help="markdown: a pull request comment.",
)
@json_option
@click.pass_obj
def plan(state: State, environments: tuple[str, ...], output: str) -> object:
    """What `apply ENV` would run, per environment (default: all), from status.json and the
    files, with lint findings; no connection, no credentials."""
    from sqlstage.report import offline_plans

    project = state.project()
    plans = offline_plans(project, environments)
    if json_requested():
        return plans
    if output == "markdown":
        click.echo(markdown(plans))
    else:
        for item in plans.plans:
            _text(item)
    return plans


def _text(item: OfflinePlan) -> None:
    env = item.status.environment
    if not item.migrations and not item.status.failed:
        click.echo(f"{env.label}: up to date")
        return
    click.echo(f"{env.label}: {plural(len(item.migrations), 'migration')} to apply")
    for migration in item.migrations:
        click.echo(f"  {migration.name}{_notes(item, migration.name, migration.path)}")
    for name in item.status.failed:
        click.echo(f"  {name}: FAILED midway; `sqlstage repair {env.key} {name}` first")


def _notes(item: OfflinePlan, name: str, path: Path) -> str:
    findings = [f for f in item.findings if f.path == path]
    notes = [_finding_count(findings)] if findings else []
    if name in item.status.out_of_order:
        notes.append("out of order: needs --allow-out-of-order")
    return f"  ({'; '.join(notes)})" if notes else ""


def _finding_count(findings: list[Finding]) -> str:
    errors = sum(f.blocking for f in findings)
    warnings = sum(f.severity == "warning" and f.waived is None for f in findings)
    return f"lint: {plural(errors, 'error')}, {plural(warnings, 'warning')}"


def markdown(plans: OfflinePlans) -> str:
    """The plan as a GitHub comment: a table per environment, then each migration's lint
    findings and SQL once, folded away."""
    lines = [COMMENT_MARKER, "### sqlstage plan", ""]
    shown: dict[str, tuple[Migration, list[Finding]]] = {}
    for item in plans.plans:
        lines += _environment_markdown(item)
        for migration in item.migrations:
            mine = [f for f in item.findings if f.path == migration.path and f.waived is None]
            shown.setdefault(migration.name, (migration, mine))
    for migration, findings in sorted(shown.values(), key=lambda pair: pair[0].number):
        lines += _details(migration, findings)
    return "\n".join(lines).rstrip() + "\n"


def _environment_markdown(item: OfflinePlan) -> list[str]:
    env = item.status.environment
    protected = ", protected" if env.protected else ""
    if not item.migrations and not item.status.failed:
        return [f"**{env.key}** ({env.name}{protected}): up to date", ""]
    count = plural(len(item.migrations), "migration")
    lines = [f"**{env.key}** ({env.name}{protected}): {count} to apply", ""]
    if item.migrations:
        lines += ["| migration | lint | notes |", "| --- | --- | --- |"]
    for migration in item.migrations:
        findings = [f for f in item.findings if f.path == migration.path]
        notes = []
        if migration.name in item.status.out_of_order:
            notes.append("out of order: needs `--allow-out-of-order`")
        if migration.no_transaction:
            notes.append("no transaction")
        lint = _finding_count(findings).removeprefix("lint: ") if findings else "clean"
        lines.append(f"| `{migration.name}` | {lint} | {', '.join(notes)} |")
    for name in item.status.failed:
        lines.append(f"- `{name}` **failed** midway: `sqlstage repair {env.key} {name}`")
    return [*lines, ""]


def _details(migration: Migration, findings: list[Finding]) -> list[str]:
    lines = [f"<details><summary>{migration.file_name}</summary>", ""]
    for finding in findings:
        lines.append(
            f"- line {finding.line}: **{finding.severity}** `{finding.rule}`: {finding.message}"
        )
    if findings:
        lines.append("")
    sql = migration.forward.rstrip()
    fence = "````" if "```" in sql else "```"
    return [*lines, f"{fence}sql", sql, fence, "", "</details>", ""]


@cli.command("check-edits")
@click.option(
    "--base",
    metavar="REF",
    help="Judge by status.json as committed at git revision REF (a pull request's base), "
    "not by the one on disk.",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "github"]),
    default="text",
    help="github: an annotation on each edited file.",
)
@json_option
@click.pass_obj
def check_edits(state: State, base: str | None, output: str) -> object:
    """Refuse (exit 2) when a migration some environment has applied was edited or deleted,
    by the checksums status.json records; no connection, no credentials."""
    from sqlstage.checksums import refuse_applied_edits

    project = state.project()
    edits = project.applied_edits(base)
    source = f"status.json at {base}" if base else "status.json"
    document = {"base": base, "edits": [_edit_fields(edit) for edit in edits]}
    keep(document)
    if output == "github" and not json_requested():
        for edit in edits:
            click.echo(_edit_annotation(edit, project.config.status_file, source))
    elif len(edits) > 1:  # the error names the first; list them all
        for edit in edits:
            what = "edited" if edit.file else "deleted"
            click.echo(f"  {edit.migration}: {what}, applied to {edit.environment}", err=True)
    refuse_applied_edits(edits, source)
    click.echo(
        f"no applied migration was edited ({plural(len(project.catalog.migrations), 'file')} "
        f"checked against {source})"
    )
    return document


def _edit_fields(edit: AppliedEdit) -> dict[str, Any]:
    return {
        "environment": edit.environment,
        "migration": edit.migration,
        "file": None if edit.file is None else str(edit.file),
        "recordedChecksum": edit.recorded,
        "fileChecksum": edit.actual,
        "kind": "edited" if edit.file else "deleted",
    }


def _edit_annotation(edit: AppliedEdit, status_file: Path, source: str) -> str:
    what = "edited" if edit.file else "deleted"
    file = relative(edit.file or status_file, Path.cwd())
    return annotation(
        "error",
        file,
        1,
        "sqlstage: applied migration " + what,
        f"{edit.migration} was {what} after it was applied to {edit.environment} (checksum "
        f"in {source}). Revert it and put the change in a new migration.",
    )
