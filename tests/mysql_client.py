"""The `mariadb`/`mysql` command-line client and `mariadb-dump` as test oracles: what the client
sends to the server for a file, and the schema a database ends up with."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from urllib.parse import urlsplit

SEPARATOR = "--------------"


def tool(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError(
        f"none of {', '.join(names)} is installed (apt-get install mariadb-client)"
    )


def _connection(url: str) -> tuple[list[str], dict[str, str], str]:
    parts = urlsplit(url)
    args = [
        "--protocol=TCP",
        f"--host={parts.hostname or '127.0.0.1'}",
        f"--port={parts.port or 3306}",
        f"--user={parts.username or 'root'}",
        "--default-character-set=utf8mb4",  # as sqlstage connects (and a UTF-8 terminal)
    ]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}
    env["EDITOR"] = env["VISUAL"] = "true"  # a stray \e must never open an editor
    if parts.password:
        env["MYSQL_PWD"] = parts.password
    return args, env, parts.path.lstrip("/")


def run_file(url: str, sql: str) -> subprocess.CompletedProcess[str]:
    """`mariadb DB < file`, exactly as a user would run a migration by hand."""
    args, env, database = _connection(url)
    return subprocess.run(
        [tool("mariadb", "mysql"), *args, database],
        input=sql,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def sent_statements(url: str, sql: str) -> list[str]:
    """The statements the client sends for `sql`, as it echoes them with -vvv (--force: it
    goes on after a failing one, as a split does)."""
    args, env, database = _connection(url)
    done = subprocess.run(
        [tool("mariadb", "mysql"), *args, "-vvv", "--force", database],
        input=sql,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    statements, current, inside = [], [], False
    for line in done.stdout.split("\n"):
        if line == SEPARATOR:
            if inside:
                statements.append("\n".join(current))
                current = []
            inside = not inside
        elif inside:
            current.append(line)
    return statements


def dump_schema(url: str) -> str:
    """The schema as mariadb-dump writes it (no data, no comments), made comparable across
    databases: the database's own name and AUTO_INCREMENT counters removed."""
    args, env, database = _connection(url)
    done = subprocess.run(
        [
            tool("mariadb-dump", "mysqldump"),
            *args,
            "--no-data",
            "--skip-comments",
            "--routines",
            "--triggers",
            "--events",
            "--skip-dump-date",
            database,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    text = done.stdout.replace(f"`{database}`", "`DB`")
    return re.sub(r" AUTO_INCREMENT=\d+", "", text)
