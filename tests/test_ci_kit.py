"""The CI kit (action.yml, action/*.sh, .pre-commit-hooks.yaml) run the way a workflow runs
it: the scripts under bash with the environment GitHub gives them, on a sample git
repository with a main branch and a pull request branch. No GitHub needed: `gh` is a
stand-in that records what it was asked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import FOUR_MIGRATIONS, Database

KIT = Path(__file__).resolve().parent.parent
SCRIPTS = ("lint.sh", "check-edits.sh", "verify.sh", "plan-comment.sh")
FAKE_GH = """#!/usr/bin/env bash
echo "$*" >>"$GH_LOG"
for arg in "$@"; do case "$arg" in body=@*) cp "${arg#body=@}" "$GH_LOG.body";; esac; done
if [ "$#" -ge 2 ] && [ "$2" != "--method" ]; then cat "$GH_EXISTING" 2>/dev/null || true; fi
"""


def git(root: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    )
    return result.stdout


@dataclass
class Repo:
    root: Path
    bin: Path

    @property
    def migrations(self) -> Path:
        return self.root / "database" / "migrations" / "sql"

    def run(self, script: str, **env: str) -> subprocess.CompletedProcess[str]:
        """One of action.yml's steps: its script under bash, from the repository root."""
        environment = {
            "PATH": f"{self.bin}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
            + os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", str(self.root)),
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": "acme/shop",
            "GH_LOG": str(self.root.parent / "gh.log"),
            "GH_EXISTING": str(self.root.parent / "gh.existing"),
            "RUNNER_TEMP": str(self.root.parent),
            **env,
        }
        return subprocess.run(
            ["bash", str(KIT / "action" / script)],
            cwd=self.root,
            env=environment,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )

    def branch(self, name: str) -> None:
        git(self.root, "checkout", "-q", "-b", name, "main")

    def commit(self, message: str) -> None:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """main: four migrations applied to dev (SQLite), status.json committed; pro is a
    PostgreSQL production never connected to, so lint uses PostgreSQL's rules."""
    root = tmp_path / "shop"
    root.mkdir()
    (root / "sqlstage.toml").write_text(
        '[environments.dev]\nname = "Development"\nurl = "sqlite:///dev.db"\n\n'
        '[environments.pro]\nname = "Production"\n'
        'url = "postgresql://deploy@db.example.com/shop"\nprotected = true\n'
    )
    migrations = root / "database" / "migrations" / "sql"
    migrations.mkdir(parents=True)
    for name, sql in FOUR_MIGRATIONS.items():
        (migrations / name).write_text(textwrap.dedent(sql).lstrip("\n"))
    (root / ".gitignore").write_text("dev.db\nlogs/\n")
    applied = subprocess.run(
        [sys.executable, "-m", "sqlstage", "apply", "dev", "--yes"],
        cwd=root,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert applied.returncode == 0, applied.stderr
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "gh").write_text(FAKE_GH)
    (fake / "gh").chmod(0o755)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "ci@example.com")
    git(root, "config", "user.name", "CI")
    made = Repo(root, fake)
    made.commit("four migrations, applied to dev")
    return made


CLEAN = "CREATE TABLE tags (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name TEXT);\n"


def test_action_yml_runs_each_script_with_its_inputs() -> None:
    action = (KIT / "action.yml").read_text()
    for script in SCRIPTS:
        assert f'bash "${{{{ github.action_path }}}}/action/{script}"' in action
    for script in SCRIPTS:
        used = set(re.findall(r"\$\{?(SQLSTAGE_\w+)", (KIT / "action" / script).read_text()))
        for variable in used:  # every variable a script reads is given by its step
            assert f"{variable}: ${{{{" in action, (script, variable)


def test_a_pull_request_that_adds_a_migration_passes(repo: Repo) -> None:
    repo.branch("add-tags")
    (repo.migrations / "005_create_tags.sql").write_text(
        CLEAN + "\n-- rollback\n-- DROP TABLE tags;\n"
    )
    repo.commit("tags")
    summary = repo.root.parent / "summary.md"

    lint = repo.run("lint.sh", SQLSTAGE_BASE="main")
    edits = repo.run("check-edits.sh", SQLSTAGE_BASE="main")
    plan = repo.run(
        "plan-comment.sh",
        SQLSTAGE_PR="7",
        SQLSTAGE_COMMENT="true",
        GITHUB_STEP_SUMMARY=str(summary),
    )

    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "::error" not in lint.stdout
    assert edits.returncode == 0, edits.stderr
    assert "no applied migration was edited" in edits.stdout
    assert plan.returncode == 0, plan.stderr
    comment = summary.read_text()
    assert comment.startswith("<!-- sqlstage plan -->\n### sqlstage plan")
    assert "**dev** (Development): 1 migration to apply" in comment
    assert "| `005_create_tags` | clean |" in comment
    assert "**pro** (Production, protected): 5 migrations to apply" in comment
    assert "```sql\nCREATE TABLE tags" in comment
    # posted once as a new comment, with the same body
    gh_log = (repo.root.parent / "gh.log").read_text().splitlines()
    assert gh_log[0].startswith("api repos/acme/shop/issues/7/comments --paginate")
    assert gh_log[1].startswith("api --method POST repos/acme/shop/issues/7/comments")
    assert (repo.root.parent / "gh.log.body").read_text() == comment
    assert "commented the plan on pull request #7" in plan.stdout


def test_the_plan_comment_is_updated_not_repeated(repo: Repo) -> None:
    (repo.root.parent / "gh.existing").write_text("4242\n")

    plan = repo.run("plan-comment.sh", SQLSTAGE_PR="7")

    assert plan.returncode == 0, plan.stderr
    calls = (repo.root.parent / "gh.log").read_text().splitlines()
    assert calls[1].startswith("api --method PATCH repos/acme/shop/issues/comments/4242")


def test_no_comment_outside_a_pull_request(repo: Repo) -> None:
    plan = repo.run("plan-comment.sh", SQLSTAGE_PR="")

    assert plan.returncode == 0, plan.stderr
    assert not (repo.root.parent / "gh.log").exists()


def test_a_pull_request_that_edits_an_applied_migration_fails(repo: Repo) -> None:
    repo.branch("sneaky")
    path = repo.migrations / "002_create_posts.sql"
    path.write_text(path.read_text().replace("title TEXT", "title VARCHAR(200)"))
    # the branch also "fixes" status.json to the new checksum: it is judged by main's
    status = json.loads((repo.root / "database" / "migrations" / "status.json").read_text())
    status["environments"]["dev"]["applied"]["002_create_posts"]["checksum"] = "0" * 64
    (repo.root / "database" / "migrations" / "status.json").write_text(json.dumps(status))
    repo.commit("widen title")

    edits = repo.run("check-edits.sh", SQLSTAGE_BASE="main")

    assert edits.returncode == 2
    assert (
        "::error file=database/migrations/sql/002_create_posts.sql,line=1,"
        "title=sqlstage%3A applied migration edited::002_create_posts was edited after it was "
        "applied to dev" in edits.stdout
    )
    (line,) = [text for text in edits.stderr.splitlines() if text.startswith("error: ")]
    assert "002_create_posts.sql: edited after it was applied to dev" in line
    assert "status.json at main" in line and "sqlstage new NAME" in line


def test_a_pull_request_that_deletes_an_applied_migration_fails(repo: Repo) -> None:
    repo.branch("cleanup")
    (repo.migrations / "001_create_users.sql").unlink()
    repo.commit("remove 001")

    edits = repo.run("check-edits.sh", SQLSTAGE_BASE="main")

    assert edits.returncode == 2
    assert "001_create_users: deleted after it was applied to dev" in edits.stderr


def test_renaming_an_applied_migration_is_no_edit(repo: Repo) -> None:
    repo.branch("rename")
    git(
        repo.root,
        "mv",
        "database/migrations/sql/004_add_status_column.sql",
        "database/migrations/sql/004_add_post_status.sql",
    )
    repo.commit("rename 004")

    assert repo.run("check-edits.sh", SQLSTAGE_BASE="main").returncode == 0


def test_lint_annotates_only_what_the_pull_request_adds(repo: Repo) -> None:
    repo.branch("index")
    (repo.migrations / "005_index.sql").write_text(
        "CREATE INDEX posts_title_idx ON posts (title);\n\n"
        "-- rollback\n-- DROP INDEX posts_title_idx;\n"
    )
    repo.commit("index")

    lint = repo.run("lint.sh", SQLSTAGE_BASE="main")

    assert lint.returncode == 1
    annotations = [line for line in lint.stdout.splitlines() if line.startswith("::")]
    assert annotations and all(
        line.startswith("::error file=database/migrations/sql/005_index.sql,line=1,")
        or "005_index.sql" in line
        for line in annotations
    )
    assert "title=sqlstage create-index-without-concurrently" in lint.stdout


def test_a_bad_base_is_one_clear_line(repo: Repo) -> None:
    lint = repo.run("lint.sh", SQLSTAGE_BASE="no-such-branch")

    assert lint.returncode == 2
    assert "--since no-such-branch: git knows no such revision" in lint.stderr
    assert "fetch-depth: 0" in lint.stderr
    assert repo.run("check-edits.sh").returncode != 0  # no base at all: said, not guessed


def test_verify_on_a_service_database(repo: Repo, pg_database: Database) -> None:
    (repo.root / "sqlstage.toml").write_text(
        '[environments.dev]\nurl = "env:DATABASE_URL"\n\n'
        '[environments.pro]\nurl = "prompt"\nprotected = true\n'
    )

    verify = repo.run("verify.sh", SQLSTAGE_VERIFY_ENV="dev", DATABASE_URL=pg_database.url)

    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "4 of 4 migrations round-trip" in verify.stdout


# -- pre-commit ------------------------------------------------------------------------------
def hooks() -> dict[str, dict[str, str]]:
    """.pre-commit-hooks.yaml's entries (a flat list of `- id:` blocks of `key: value`)."""
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in (KIT / ".pre-commit-hooks.yaml").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, _, value = line.strip().removeprefix("- ").partition(": ")
        if line.startswith("- "):
            current = found.setdefault(value, {})
        current[key] = value
    return found


def run_hook(
    repo: Repo, hook: dict[str, str], staged: list[str]
) -> subprocess.CompletedProcess[str]:
    """As pre-commit runs a hook: its entry, plus the staged files its pattern matches."""
    pattern = re.compile(hook["files"])
    files = (
        [] if hook.get("pass_filenames") == "false" else [f for f in staged if pattern.search(f)]
    )
    sqlstage, *args = hook["entry"].split()
    assert sqlstage == "sqlstage"
    return subprocess.run(
        [sys.executable, "-m", "sqlstage", *args, *files],
        cwd=repo.root,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def test_pre_commit_hooks(repo: Repo) -> None:
    found = hooks()
    assert set(found) == {"sqlstage-lint", "sqlstage-check-edits"}
    assert all(hook["language"] == "python" for hook in found.values())
    (repo.migrations / "005_create_tags.sql").write_text(CLEAN)
    staged = ["database/migrations/sql/005_create_tags.sql", "README.md"]

    assert run_hook(repo, found["sqlstage-lint"], staged).returncode == 0
    assert run_hook(repo, found["sqlstage-check-edits"], staged).returncode == 0

    (repo.migrations / "006_index.sql").write_text("CREATE INDEX t_idx ON posts (title);\n")
    bad_lint = run_hook(repo, found["sqlstage-lint"], ["database/migrations/sql/006_index.sql"])
    assert bad_lint.returncode == 1 and "create-index-without-concurrently" in bad_lint.stdout

    path = repo.migrations / "003_add_user_profile.sql"
    path.write_text(path.read_text().replace("display_name", "nickname"))
    edited = run_hook(repo, found["sqlstage-check-edits"], [str(path.relative_to(repo.root))])
    assert edited.returncode == 2
    assert "003_add_user_profile.sql: edited after it was applied to dev" in edited.stderr


def test_the_guard_is_the_library_s(repo: Repo) -> None:
    """A script gets the CLI's answer: the same edits, the same refusal (exit 2)."""
    from sqlstage.checksums import refuse_applied_edits
    from sqlstage.errors import ChecksumChanged
    from sqlstage.project import Project

    repo.branch("sneaky")
    path = repo.migrations / "004_add_status_column.sql"
    path.write_text(path.read_text().replace("'draft'", "'new'"))

    project = Project.load(repo.root)
    (edit,) = project.applied_edits(base="main")

    assert (edit.environment, edit.migration, edit.file) == ("dev", path.stem, path)
    with pytest.raises(ChecksumChanged) as refused:
        refuse_applied_edits([edit], "status.json at main")
    assert refused.value.exit_code == 2
