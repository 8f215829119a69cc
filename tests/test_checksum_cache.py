"""The checksum cache: unchanged files are not read again, and an edit is still caught."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sqlstage import checksum_cache
from sqlstage.catalog import load_catalog
from sqlstage.errors import MigrationFileError
from tests.conftest import ProjectDir

_opened: list[str] | None = None  # while a list: the .sql files opened


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _opened is not None and event == "open" and str(args[0]).endswith(".sql"):
        _opened.append(Path(str(args[0])).name)


sys.addaudithook(_audit)  # audit hooks cannot be removed: it records only inside opened()


def opened(project: ProjectDir, *args: str) -> tuple[list[str], Any]:
    """Run the CLI; the migration files it opened, and the result."""
    global _opened
    _opened = []
    try:
        result = project.run(*args)
        return sorted(_opened), result
    finally:
        _opened = None


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Files just written count as settled after 10 ms (instead of seconds)."""
    monkeypatch.setattr(checksum_cache, "SETTLE_NS", 10_000_000)
    time.sleep(0.02)
    yield


@pytest.fixture
def dev(four: ProjectDir, tmp_path: Path) -> ProjectDir:
    four.configure(dev={"name": "Development", "url": f"sqlite:///{tmp_path / 'dev.db'}"})
    return four


def same_size_edit(path: Path, old: str, new: str) -> None:
    """Edit in place keeping the size, then put the mtime back (only ctime moves)."""
    assert len(old) == len(new)
    before = path.stat()
    path.write_text(path.read_text().replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )


def test_unchanged_files_are_not_read_again(dev: ProjectDir, settled: None) -> None:
    first_files, first = opened(dev, "status")
    again_files, again = opened(dev, "status")

    assert first_files == sorted(p.name for p in dev.migrations.glob("*.sql"))
    assert again_files == []
    assert (again.exit_code, again.output) == (first.exit_code, first.output)
    pending_files, pending = opened(dev, "pending", "dev")
    assert pending_files == []
    assert pending.stdout.split() == [p.stem for p in sorted(dev.migrations.glob("*.sql"))]


def test_no_op_apply_reads_no_file(dev: ProjectDir, settled: None) -> None:
    assert dev.run("apply", "dev", "--yes").exit_code == 0

    files, result = opened(dev, "apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert files == []


def test_pending_file_is_read_when_it_runs(dev: ProjectDir, settled: None) -> None:
    assert dev.run("apply", "dev", "--to", "003", "--yes").exit_code == 0
    assert opened(dev, "status")[0] == []  # everything cached, 004 included

    files, result = opened(dev, "apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert files == ["004_add_status_column.sql"]


def test_edit_keeping_size_and_mtime_is_caught(dev: ProjectDir, settled: None) -> None:
    assert dev.run("apply", "dev", "--yes").exit_code == 0
    assert opened(dev, "status")[1].exit_code == 0  # the cache knows every file
    same_size_edit(dev.migrations / "002_create_posts.sql", "title TEXT", "title BLOB")

    result = dev.run("status")

    assert result.exit_code == 2
    assert "002_create_posts.sql: edited after it was applied to dev" in result.stderr
    noop = dev.run("apply", "dev", "--yes")
    assert noop.exit_code == 2
    assert "002_create_posts.sql: edited after it was applied to dev" in noop.stderr
    assert "title BLOB" in noop.stderr  # the diff against the SQL that ran


def test_edited_pending_file_runs_as_edited(dev: ProjectDir, settled: None) -> None:
    assert dev.run("apply", "dev", "--to", "003", "--yes").exit_code == 0
    assert dev.run("status").exit_code == 0
    same_size_edit(dev.migrations / "004_add_status_column.sql", "status TEXT", "stage TEXT ")

    result = dev.run("apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    import sqlite3

    with sqlite3.connect(dev.root.parent / "dev.db") as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(posts)")}
    assert "stage" in columns and "status" not in columns


def test_file_changed_during_a_run_stops_it(dev: ProjectDir, settled: None) -> None:
    cache = dev.root / "logs" / "migrations" / ".cache"
    load_catalog(dev.migrations, cache)
    catalog = load_catalog(dev.migrations, cache)  # from the cache: no SQL read yet
    path = dev.migrations / "004_add_status_column.sql"
    path.write_text(path.read_text().replace("'draft'", "'final'"))

    with pytest.raises(MigrationFileError, match=r"004_add_status_column\.sql: changed while"):
        catalog.find("004").forward  # noqa: B018 - reading it is the point
    assert catalog.find("003").forward.startswith("ALTER TABLE users")  # unchanged: fine


def test_cache_of_another_version_is_ignored(dev: ProjectDir, settled: None) -> None:
    assert dev.run("apply", "dev", "--yes").exit_code == 0
    dev.run("status")
    path = dev.root / "logs" / "migrations" / ".cache" / "checksums.json"
    document = json.loads(path.read_text())
    for entry in document["files"].values():
        entry[5] = "0" * 64  # a checksum no file has
    path.write_text(json.dumps({**document, "version": "0.0.0-other"}))

    files, result = opened(dev, "status")

    assert result.exit_code == 0, result.output
    assert "edited" not in result.output
    assert len(files) == 4


def test_recently_written_files_are_not_cached(dev: ProjectDir) -> None:
    """A file written in the same clock tick as the cache could change again unseen."""
    dev.run("status")

    files, _ = opened(dev, "status")

    assert len(files) == 4


def test_cache_is_ignored_by_git(dev: ProjectDir, settled: None) -> None:
    subprocess.run(["git", "init", "-q", str(dev.root)], check=True)
    assert dev.run("status").exit_code == 0
    assert (dev.root / "logs" / "migrations" / ".cache" / "checksums.json").exists()

    untracked = subprocess.run(
        ["git", "-C", str(dev.root), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert "logs/" not in untracked
    assert "database/migrations/sql/001_create_users.sql" in untracked


def test_cache_that_cannot_be_written_is_skipped(dev: ProjectDir, settled: None) -> None:
    expected = dev.run("status")
    logs = dev.root / "logs"
    import shutil

    shutil.rmtree(logs)
    (logs / "migrations").mkdir(parents=True)
    (logs / "migrations" / ".cache").write_text("not a folder")

    files, result = opened(dev, "status")

    assert (result.exit_code, result.output) == (expected.exit_code, expected.output)
    assert len(files) == 4
