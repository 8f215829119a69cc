"""Lint: find migration statements that lock or rewrite tables, or break running code, and
say what to write instead.

    findings = lint_plan(migrations, LintOptions(pg_version=15))

Rules are PostgreSQL rules; other dialects get no findings until they have rules of their own.
The parser (pglast) is imported only when something is linted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlstage.lint.catalogue import RULES, Rule, Severity
from sqlstage.lint.context import DEFAULT_PG_VERSION, LintOptions
from sqlstage.lint.engine import Finding, lint_all, lint_plan, lint_rollback, lint_text

if TYPE_CHECKING:
    from sqlstage.config import Config

__all__ = [
    "DEFAULT_PG_VERSION",
    "RULES",
    "Finding",
    "LintOptions",
    "Rule",
    "Severity",
    "dialect_of_config",
    "dialect_of_urls",
    "lint_all",
    "lint_plan",
    "lint_rollback",
    "lint_text",
]


def dialect_of_config(config: Config) -> str:
    """The dialect offline lint assumes for the project (`dialect_of_urls` of its
    environments' URLs)."""
    return dialect_of_urls([env.url for env in config.environments.values()])


def dialect_of_urls(urls: list[str]) -> str:
    """The dialect offline lint assumes for a project's environments.

    `env:` and `prompt` URLs are unknown until run time and do not vote: `sqlite` when the
    literal URLs are all SQLite (`init --example`: SQLite dev, prompted pro), `mysql` when they
    are all MySQL/MariaDB, `postgresql` otherwise, including when no URL is literal. `apply`
    lints with the connected database's own dialect, so a prompted PostgreSQL production is
    still linted as PostgreSQL there.
    """
    known = [url for url in urls if url != "prompt" and not url.startswith("env:")]
    if known and all(url.startswith("sqlite:") for url in known):
        return "sqlite"
    if known and all(url.split(":", 1)[0].lower() in {"mysql", "mariadb"} for url in known):
        return "mysql"
    return "postgresql"
