"""docs/lint.md documents every rule and every key of the JSON output."""

from __future__ import annotations

from pathlib import Path

from sqlstage.lint import RULES

DOC = (Path(__file__).parent.parent / "docs" / "lint.md").read_text(encoding="utf-8")


def test_every_rule_is_documented_with_its_severity() -> None:
    for rule in RULES.values():
        assert f"### `{rule.id}` ({rule.severity})" in DOC


def test_every_json_key_is_documented() -> None:
    keys = [
        "rule",
        "severity",
        "file",
        "line",
        "column",
        "message",
        "statement",
        "why",
        "safe_alternative",
        "waived",
        "version",
        "dialect",
        "files",
        "findings",
        "summary",
    ]
    for key in keys:
        assert f'"{key}"' in DOC
