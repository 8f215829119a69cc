"""The library's documented API, called the way a user's script calls it: every rule holds.

A script gets exactly the CLI's refusals: a protected environment without a person to confirm,
blocking lint, a missing backup, an unrehearsed migration, a database marked as something else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sqlstage.commands import ApplyOptions, RollbackOptions, apply, rollback
from sqlstage.errors import Refused
from sqlstage.project import Project
from tests.conftest import Database, ProjectDir


@dataclass
class Person:
    """A script's own answers, as a person at a terminal would give them."""

    typed_answer: str = ""
    yes: bool = True
    attended: bool = True
    asked: list[str] = field(default_factory=list)

    def yes_no(self, question: str) -> bool:
        self.asked.append(question)
        return self.yes

    def typed(self, question: str) -> str:
        self.asked.append(question)
        return self.typed_answer

    def secret(self, question: str) -> str:
        raise AssertionError("no URL is typed in these tests")


@pytest.fixture
def pro(four: ProjectDir, pg_database: Database, pg_database2: Database) -> ProjectDir:
    four.configure(
        dev={"url": pg_database.url},
        pro={"url": pg_database2.url, "protected": True, "requires": "dev"},
    )
    return four


def test_a_script_applies_dev_and_gets_a_result(pro: ProjectDir, pg_database: Database) -> None:
    result = apply(Project.load(pro.root), "dev", ApplyOptions(yes=True))

    assert [m.name for m in result.migrations][-1] == "004_add_status_column"
    assert result.log_path is not None and result.log_path.exists()
    assert result.status_written
    assert pg_database.history()[-1] == "004_add_status_column"
    assert pro.status_json()["pending"]["pro"][0] == "001_create_users"


def test_protected_without_a_person_is_refused_before_connecting(
    pro: ProjectDir, pg_database2: Database
) -> None:
    project = Project.load(pro.root)
    apply(project, "dev", ApplyOptions(yes=True))

    with pytest.raises(Refused, match="pro is protected and this run has no terminal"):
        apply(project, "pro", ApplyOptions(yes=True))
    assert pg_database2.tables() == set()  # not even the marker: it never connected


def test_protected_with_a_person_who_types_the_key(pro: ProjectDir, pg_database2: Database) -> None:
    project = Project.load(pro.root)
    apply(project, "dev", ApplyOptions(yes=True))

    wrong = Person(typed_answer="prod")
    with pytest.raises(Refused, match="not confirmed"):
        apply(project, "pro", ApplyOptions(), ask=wrong)
    assert any("Backup taken?" in q for q in wrong.asked)
    assert pg_database2.history() == []

    right = Person(typed_answer="pro")
    result = apply(project, "pro", ApplyOptions(), ask=right)
    assert len(result.done) == 4
    assert pg_database2.history()[-1] == "004_add_status_column"


def test_no_backup_confirmed_is_refused(pro: ProjectDir, pg_database2: Database) -> None:
    project = Project.load(pro.root)
    apply(project, "dev", ApplyOptions(yes=True))

    with pytest.raises(Refused, match="no backup confirmed"):
        apply(project, "pro", ApplyOptions(), ask=Person(typed_answer="pro", yes=False))
    assert pg_database2.history() == []


def test_blocking_lint_is_refused_for_a_script(
    pro: ProjectDir, pg_database: Database, pg_database2: Database
) -> None:
    """The same gate in dev as in pro; --allow-lint lets dev through, not pro."""
    apply(Project.load(pro.root), "dev", ApplyOptions(yes=True))
    apply(Project.load(pro.root), "pro", ApplyOptions(), ask=Person(typed_answer="pro"))
    pro.write("005_rewrite.sql", "ALTER TABLE posts ALTER COLUMN title TYPE varchar(20);\n")
    project = Project.load(pro.root)

    with pytest.raises(Refused, match="dev: the plan has 1 lint error"):
        apply(project, "dev", ApplyOptions(yes=True))
    assert pg_database.history()[-1] == "004_add_status_column"
    apply(project, "dev", ApplyOptions(yes=True, allow_lint=("alter-column-type",)))
    assert pg_database.history()[-1] == "005_rewrite"
    with pytest.raises(Refused, match="pro: the plan has 1 lint error"):
        apply(project, "pro", ApplyOptions(), ask=Person(typed_answer="pro"))
    assert pg_database2.history()[-1] == "004_add_status_column"


def test_unrehearsed_is_refused_for_a_script(pro: ProjectDir, pg_database2: Database) -> None:
    with pytest.raises(Refused, match="has not been applied to 'dev'"):
        apply(Project.load(pro.root), "pro", ApplyOptions(), ask=Person(typed_answer="pro"))
    assert pg_database2.history() == []


def test_a_database_marked_as_another_environment_is_refused(
    pro: ProjectDir, pg_database: Database
) -> None:
    project = Project.load(pro.root)
    apply(project, "dev", ApplyOptions(yes=True))
    pro.configure(
        dev={"url": pg_database.url},
        pro={"url": pg_database.url, "protected": True},  # pro's URL pasted as dev's
    )
    with pytest.raises(Refused, match="marked 'dev' but you asked for 'pro'"):
        apply(Project.load(pro.root), "pro", ApplyOptions(), ask=Person(typed_answer="pro"))


def test_backup_is_taken_by_the_library(
    four: ProjectDir, pg_database: Database, tmp_path: Path
) -> None:
    four.configure(dev={"url": pg_database.url, "backup": "pg_dump"})
    result = apply(Project.load(four.root), "dev", ApplyOptions(yes=True))

    assert result.backup is not None and result.backup.stat().st_size > 0
    assert result.backup.stat().st_mode & 0o777 == 0o600


def test_dry_run_carries_every_decision_and_changes_nothing(
    pro: ProjectDir, pg_database2: Database
) -> None:
    # a table the migrations did not create (posts is new in this first deploy's plan)
    pro.write("005_rewrite.sql", "ALTER TABLE legacy ALTER COLUMN title TYPE varchar(20);\n")
    plan = apply(Project.load(pro.root), "pro", ApplyOptions(dry_run=True)).plan

    assert [s.name for s in plan.steps][-1] == "005_rewrite"
    assert all(step.in_transaction for step in plan.steps)
    assert {type(r).__name__ for r in plan.refusals} == {"Refused"}
    assert any("lint error" in str(r) for r in plan.refusals)
    assert plan.confirmation.value == "type-the-key"
    assert pg_database2.tables() == set()


def test_rollback_through_the_library(four: ProjectDir, database: Database) -> None:
    four.configure(dev={"url": database.url})
    project = Project.load(four.root)
    apply(project, "dev", ApplyOptions(yes=True))

    result = rollback(project, "dev", RollbackOptions(target="003", yes=True))

    assert [m.name for m in result.migrations] == [
        "004_add_status_column",
        "003_add_user_profile",
    ]
    assert database.history() == ["001_create_users", "002_create_posts"]
    assert four.status_json()["pending"]["dev"] == [
        "003_add_user_profile",
        "004_add_status_column",
    ]
