"""`lint`, and lint findings in the apply plan."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sqlstage.cli.app import State, cli
from sqlstage.cli.render import plural, print_json, relative
from sqlstage.errors import SqlstageError

if TYPE_CHECKING:  # keep start-up light: `status` and `--help` import no driver
    from sqlstage.lint import Finding
    from sqlstage.project import Project


# -- lint ---------------------------------------------------------------------------------
@cli.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON (docs/lint.md).")
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
@click.option("--rules", "list_rules", is_flag=True, help="List the rules and exit.")
@click.pass_obj
def lint(
    state: State,
    files: tuple[Path, ...],
    as_json: bool,
    output: str,
    dialect: str | None,
    list_rules: bool,
) -> None:
    """Find statements that lock or rewrite tables or break running code, with the safe SQL.

    FILES (linted as one plan, in the order given) default to the migrations some
    environment has not applied yet (from status.json), linted as each environment's next
    `apply` would.
    Exits 1 when an error-severity finding is neither waived in the file nor down-graded in
    sqlstage.toml. Rules are PostgreSQL rules: a SQLite project gets no findings.
    """
    if list_rules:
        _print_rules()
        return
    project = _lint_project(state, bool(files))
    if files:
        from sqlstage.lint.files import read_sql_file

        # as if started in -C DIR: relative paths are the project folder's
        migrations = [read_sql_file(state.directory / path) for path in files]
        findings = project.lint(migrations, dialect or project.lint_dialect())
    else:
        from sqlstage.report import lint_pending

        migrations, findings = lint_pending(project, dialect or project.lint_dialect())
    paths = [relative(m.path, Path.cwd()) for m in migrations]
    if as_json:
        print_json(_findings_json(findings, paths, dialect or project.lint_dialect()))
    elif output == "github":
        for finding in findings:
            _print_annotation(finding)
    else:
        print_findings(findings, verbose=True)
        click.echo(lint_summary(findings, len(migrations)))
    if any(finding.blocking for finding in findings):
        sys.exit(1)


def _lint_project(state: State, has_files: bool) -> Project:
    """The project; with FILES and no sqlstage.toml anywhere, one with default settings."""
    from sqlstage.config import find_root, parse_config
    from sqlstage.project import Project

    if has_files:
        try:
            find_root(state.directory)
        except SqlstageError:
            return Project(parse_config(state.directory.resolve(), {}))
    return state.project()


def _print_rules() -> None:
    from sqlstage.lint import RULES

    width = max(len(rule_id) for rule_id in RULES)
    for rule in RULES.values():
        click.echo(f"{rule.id:<{width}}  {rule.severity:<7}  {rule.title}")


def print_findings(findings: list[Finding], verbose: bool) -> None:
    for finding in findings:
        where = f"{relative(finding.path, Path.cwd())}:{finding.line}:{finding.column}"
        if finding.waived is not None:
            click.echo(f"{where}: waived {finding.rule} ({finding.waived})")
            continue
        colour = "red" if finding.severity == "error" else "yellow"
        click.echo(f"{where}: " + click.style(f"{finding.severity} {finding.rule}", fg=colour))
        click.echo(f"  {finding.message}")
        if verbose:
            click.echo(f"  why: {finding.why}")
        click.echo("  instead:")
        for line in finding.safe.splitlines():
            click.echo(f"    {line}")


def lint_summary(findings: list[Finding], files: int) -> str:
    errors = sum(f.blocking for f in findings)
    warnings = sum(f.severity == "warning" and f.waived is None for f in findings)
    waived = sum(f.waived is not None for f in findings)
    text = f"{plural(errors, 'error')}, {plural(warnings, 'warning')}"
    text += f" ({waived} waived)" if waived else ""
    return f"{text} in {plural(files, 'file')}"


def _findings_json(findings: list[Finding], files: list[str], dialect: str) -> dict[str, Any]:
    return {
        "version": 1,
        "dialect": dialect,
        "files": files,
        "findings": [f.as_dict(relative(f.path, Path.cwd())) for f in findings],
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

    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return data(text).replace(":", "%3A").replace(",", "%2C")

    file = prop(relative(finding.path, Path.cwd()))
    message = data(f"{finding.message}\n\nInstead:\n{finding.safe}")
    click.echo(
        f"::{finding.severity} file={file},line={finding.line},col={finding.column},"
        f"title={prop('sqlstage ' + finding.rule)}::{message}"
    )
