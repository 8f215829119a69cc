"""`init` and `new`: the files sqlstage writes for the user to edit."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from sqlstage.catalog import next_number
from sqlstage.config import CONFIG_FILE, DEFAULTS, ENV_FILE, parse_config
from sqlstage.errors import ConfigError, Refused
from sqlstage.status_file import StatusFile, write_status

CONFIG_TEMPLATE = """\
# sqlstage configuration: https://github.com/sqlstage/sqlstage#configuration
migrations = "{migrations}"
status_file = "{status_file}"
log_dir = "{log_dir}"

[environments.dev]
name = "Development"
url = "{dev_url}"

[environments.pro]
name = "Production"
url = "prompt"             # typed in at every run (hidden input), never stored
protected = true           # type 'pro' to confirm; no terminal, no run
requires = "dev"           # only what dev has applied (same checksum, per status.json) runs here
# Before each apply and rollback, pro's live schema is checked against its history
# (`sqlstage drift pro`); hand-made changes refuse the run. Turn it off, or tune it:
# [drift.pro]
# check = false
"""

MIGRATION_TEMPLATE = """\
-- {name}: write the forward SQL below; it runs as written, in one transaction.


-- rollback (each line commented out: psql -f never runs it, `sqlstage rollback` does)
"""

EXAMPLES = {
    "001_create_users.sql": """\
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- rollback
-- DROP TABLE users;
""",
    "002_create_posts.sql": """\
CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    title TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT ''
);
CREATE INDEX posts_user_id_idx ON posts (user_id);

-- rollback
-- DROP TABLE posts;
""",
    "003_add_user_profile.sql": """\
ALTER TABLE users ADD COLUMN display_name TEXT;
ALTER TABLE users ADD COLUMN bio TEXT;

-- rollback
-- ALTER TABLE users DROP COLUMN bio;
-- ALTER TABLE users DROP COLUMN display_name;
""",
}

GITIGNORE_LINES = (ENV_FILE, "logs/", "backups/")


def init_project(root: Path, example: bool = False) -> list[Path]:
    """Create sqlstage.toml, the migrations folder and status.json; returns what it wrote.

    Refuses (exit 3) when sqlstage.toml exists: it never overwrites.
    """
    config_path = root / CONFIG_FILE
    if config_path.exists():
        raise Refused(f"{config_path} already exists; init never overwrites it")
    root.mkdir(parents=True, exist_ok=True)
    text = CONFIG_TEMPLATE.format(
        dev_url="sqlite:///dev.db" if example else "env:DATABASE_URL", **DEFAULTS
    )
    written = [config_path]
    config_path.write_text(text, encoding="utf-8")
    import tomllib

    config = parse_config(root, tomllib.loads(text))
    config.migrations_dir.mkdir(parents=True, exist_ok=True)
    if example:
        for name, sql in EXAMPLES.items():
            path = config.migrations_dir / name
            if not path.exists():
                path.write_text(sql, encoding="utf-8")
                written.append(path)
    if not config.status_file.exists():
        from sqlstage.catalog import load_catalog

        write_status(config.status_file, StatusFile(), config, load_catalog(config.migrations_dir))
        written.append(config.status_file)
    ignored = [*GITIGNORE_LINES, *(["dev.db"] if example else [])]
    if _add_to_gitignore(root / ".gitignore", ignored):
        written.append(root / ".gitignore")  # created, or lines added
    return written


def _add_to_gitignore(path: Path, lines: list[str]) -> bool:
    existing = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    missing = [line for line in lines if line not in existing]
    if not missing:
        return False
    prefix = "\n" if existing and existing[-1].strip() else ""
    with path.open("a", encoding="utf-8") as out:
        out.write(prefix + "# sqlstage\n" + "\n".join(missing) + "\n")
    return True


def slug(name: str) -> str:
    """`"Add status column"` -> `"add_status_column"`; `"café prix"` -> `"cafe_prix"`"""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")


def new_migration(folder: Path, name: str) -> Path:
    """Write the next `NNN_name.sql` in `folder` from the template and return its path."""
    stem = slug(name)
    if not stem:
        raise ConfigError(
            f"'{name}' makes no file name", "use letters and digits, e.g. add_status_column"
        )
    number, width = next_number(folder)
    path = folder / f"{number:0{width}d}_{stem}.sql"
    path.write_text(MIGRATION_TEMPLATE.format(name=path.stem), encoding="utf-8")
    return path
