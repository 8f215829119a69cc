"""`lint`, and lint findings in the apply plan."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sqlstage.cli.app import State, cli
from sqlstage.cli.output import json_option, json_requested, keep
from sqlstage.cli.render import annotation, plural, relative
from sqlstage.errors import SqlstageError

if TYPE_CHECKING:  # keep start-up light: `status` and `--help` import no driver
    from sqlstage.config import Config
    from sqlstage.lint import Finding


# -- lint ---------------------------------------------------------------------------------
@cli.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@json_option
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "github"]),
    default="text",
    help="github: GitHub Actions annotations.",
)
@click.option(
    "--dialect",
    type=click.Choice(["postgresql", "sqlite", "mysql"]),
    help="Lint as this dialect (default: the environments' literal URLs' dialect when they "
    "agree, else postgresql).",
)
@click.option(
    "--since",
    metavar="REF",
    help="Lint the migrations added or changed since the branch left git revision REF "
    "(a pull request's base).",
)
@click.option("--rules", "list_rules", is_flag=True, help="List the rules and exit.")
@click.pass_obj
def lint(
    state: State,
    files: tuple[Path, ...],
    output: str,
    dialect: str | None,
    since: str | None,
    list_rules: bool,
) -> object:
    """Find statements that lock or rewrite tables or break running code, with the safe SQL.

    FILES (linted as one plan, in the order given) default to the migrations some
    environment has not applied yet (from status.json), linted as each environment's next
    `apply` would; --since REF lints those added or changed since git revision REF, as one
    plan.
    Exits 1 when an error-severity finding is neither waived in the file nor down-graded in
    sqlstage.toml. Rules are PostgreSQL rules: a SQLite project gets no findings.
    """
    if list_rules:
        return _print_rules()
    if files and since:
        raise click.UsageError("give FILES or --since REF, not both")
    if files:  # needs sqlstage.toml's [lint] alone: no project, catalog or status.json
        from sqlstage.lint import dialect_of_config
        from sqlstage.lint.files import lint_files

        config = _files_config(state)
        dialect = dialect or dialect_of_config(config)
        # as if started in -C DIR: relative paths are the project folder's
        migrations, findings = lint_files([state.directory / p for p in files], config, dialect)
    else:
        project = state.project()
        dialect = dialect or project.lint_dialect()
        if since:
            migrations = project.changed_migrations(since)
            findings = project.lint(migrations, dialect)
        else:
            from sqlstage.report import lint_pending

            migrations, findings = lint_pending(project, dialect)
    cwd = Path.cwd()  # once: each call is a getcwd
    paths = [relative(m.path, cwd) for m in migrations]
    document = _findings_json(findings, paths, dialect)
    keep(document)
    if output == "github" and not json_requested():
        for finding in findings:
            _print_annotation(finding)
    elif not json_requested():
        print_findings(findings, verbose=True)
        click.echo(lint_summary(findings, len(migrations)))
    if any(finding.blocking for finding in findings):
        sys.exit(1)
    return document


def _files_config(state: State) -> Config:
    """The project's config; with no sqlstage.toml anywhere, the default settings."""
    from sqlstage.config import find_root, load_config, parse_config

    try:
        find_root(state.directory)
    except SqlstageError:
        return parse_config(state.directory.resolve(), {})
    return load_config(state.directory)


def _print_rules() -> dict[str, Any]:
    from sqlstage.lint import RULES

    width = max(len(rule_id) for rule_id in RULES)
    for rule in RULES.values():
        click.echo(f"{rule.id:<{width}}  {rule.severity:<7}  {rule.title}")
    return {
        "rules": [
            {"rule": rule.id, "severity": rule.severity, "title": rule.title}
            for rule in RULES.values()
        ]
    }


def print_findings(findings: list[Finding], verbose: bool) -> None:
    """Every finding with where it is, what and why, and the SQL to write instead (one
    write: a plan of 1,000 files can hold 1,000 findings)."""
    lines: list[str] = []
    cwd = Path.cwd()
    for finding in findings:
        where = f"{relative(finding.path, cwd)}:{finding.line}:{finding.column}"
        if finding.waived is not None:
            lines.append(f"{where}: waived {finding.rule} ({finding.waived})")
            continue
        colour = "red" if finding.severity == "error" else "yellow"
        lines.append(f"{where}: " + click.style(f"{finding.severity} {finding.rule}", fg=colour))
        lines.append(f"  {finding.message}")
        if verbose:
            lines.append(f"  why: {finding.why}")
        lines.append("  instead:")
        lines.extend(f"    {line}" for line in finding.safe.splitlines())
    if lines:
        click.echo("\n".join(lines))


def lint_summary(findings: list[Finding], files: int) -> str:
    errors = sum(f.blocking for f in findings)
    warnings = sum(f.severity == "warning" and f.waived is None for f in findings)
    waived = sum(f.waived is not None for f in findings)
    text = f"{plural(errors, 'error')}, {plural(warnings, 'warning')}"
    text += f" ({waived} waived)" if waived else ""
    return f"{text} in {plural(files, 'file')}"


def _findings_json(findings: list[Finding], files: list[str], dialect: str) -> dict[str, Any]:
    cwd = Path.cwd()
    return {
        "version": 1,
        "dialect": dialect,
        "files": files,
        "findings": [f.as_dict(relative(f.path, cwd)) for f in findings],
        "summary": {
            "errors": sum(f.blocking for f in findings),
            "warnings": sum(f.severity == "warning" and f.waived is None for f in findings),
            "waived": sum(f.waived is not None for f in findings),
        },
    }


def _print_annotation(finding: Finding) -> None:
    """One GitHub Actions workflow command: `::error file=...,line=...::message`."""
    if finding.waived is not None:
        return
    click.echo(
        annotation(
            finding.severity,
            relative(finding.path, Path.cwd()),
            finding.line,
            f"sqlstage {finding.rule}",
            f"{finding.message}\n\nInstead:\n{finding.safe}",
            finding.column,
        )
    )
