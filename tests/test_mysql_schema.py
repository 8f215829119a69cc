"""The MySQL/MariaDB schema reader (information_schema) on the real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sqlstage.drivers import connect
from sqlstage.drivers.base import Driver
from sqlstage.history import History, write_marker
from sqlstage.schema import Snapshot, diff
from sqlstage.schema.mysql import read
from sqlstage.urls import parse_url
from tests.conftest import Database
from tests.mysql_client import run_file

SCHEMA = """
CREATE TABLE users (
  id INT AUTO_INCREMENT PRIMARY KEY,
  email VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  status VARCHAR(20) NOT NULL DEFAULT 'draft' COMMENT 'lifecycle',
  score DECIMAL(5,2) CHECK (score >= 0),
  updated DATETIME DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  doubled INT AS (id * 2) VIRTUAL,
  CONSTRAINT users_email_key UNIQUE (email),
  KEY users_status_idx (status, email(10))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='people';
CREATE TABLE posts (
  id INT PRIMARY KEY,
  user_id INT NOT NULL,
  CONSTRAINT posts_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE VIEW active_users AS SELECT id, email FROM users WHERE status = 'active';
DELIMITER $$
CREATE TRIGGER users_bu BEFORE UPDATE ON users FOR EACH ROW
BEGIN
  SET NEW.status = LOWER(NEW.status);
END$$
CREATE FUNCTION post_count(who INT) RETURNS INT READS SQL DATA
BEGIN
  RETURN (SELECT COUNT(*) FROM posts WHERE user_id = who);
END$$
CREATE PROCEDURE purge_posts(IN keep INT, OUT removed INT)
BEGIN
  DELETE FROM posts WHERE id > keep;
  SET removed = ROW_COUNT();
END$$
DELIMITER ;
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 03:00:00' DISABLE
  DO DELETE FROM posts WHERE id < 0;
"""


def open_driver(database: Database, tmp_path: Path) -> Driver:
    return connect(parse_url(database.url, tmp_path, "dev"))


@pytest.fixture
def built(mysql_database: Database, tmp_path: Path) -> Iterator[Snapshot]:
    done = run_file(mysql_database.url, SCHEMA)
    assert done.returncode == 0, done.stderr
    with open_driver(mysql_database, tmp_path) as driver:
        yield read(driver)


def test_every_kind_of_object_is_read(built: Snapshot) -> None:
    objects = built.to_dict()["objects"]
    assert set(objects) == {
        "table",
        "column",
        "constraint",
        "index",
        "trigger",
        "view",
        "function",
        "procedure",
        "event",
    }
    assert objects["table"]["users"] == (
        "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT 'people' "
        "columns (id, email, status, score, updated, doubled)"
    )
    column = objects["column"]
    assert column["users.email"] == "varchar(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL"
    assert column["users.status"].endswith("NOT NULL DEFAULT 'draft' COMMENT 'lifecycle'")
    assert column["users.id"].endswith("NOT NULL auto_increment")
    assert "GENERATED ALWAYS AS (`id` * 2) VIRTUAL" in column["users.doubled"]
    assert "on update current_timestamp()" in column["users.updated"].lower()
    constraint = objects["constraint"]
    assert constraint["users.PRIMARY"] == "PRIMARY KEY (id)"
    assert constraint["users.users_email_key"] == "UNIQUE (email)"
    assert constraint["posts.posts_user_fk"] == (
        "FOREIGN KEY (user_id) REFERENCES users (id) ON UPDATE RESTRICT ON DELETE CASCADE"
    )
    assert constraint["users.score"] == "CHECK (`score` >= 0)"
    assert objects["index"]["users.users_status_idx"] == "INDEX (status, email(10)) USING BTREE"
    assert "BEFORE UPDATE FOR EACH ROW" in objects["trigger"]["users.users_bu"]
    assert objects["function"]["post_count"].startswith("(who int(11)) RETURNS int(11)")
    assert objects["procedure"]["purge_posts"].startswith("(IN keep int(11), OUT removed int(11))")
    assert objects["event"]["nightly"].startswith("EVERY 1 DAY STARTS '2030-01-01 03:00:00'")


def test_the_same_migrations_in_two_databases_compare_equal(
    built: Snapshot, mysql_database2: Database, tmp_path: Path
) -> None:
    with open_driver(mysql_database2, tmp_path) as driver:
        for statement in driver.statements(SCHEMA):
            driver.execute(statement.sql)
        again = read(driver)
    assert diff(built, again) == []  # the database names differ; nothing else does


def test_differences_a_reviewer_must_see_are_reported(
    built: Snapshot, mysql_database: Database, tmp_path: Path
) -> None:
    with open_driver(mysql_database, tmp_path) as driver:
        driver.execute("ALTER TABLE posts ADD COLUMN title VARCHAR(80) FIRST")
        driver.execute("ALTER TABLE users MODIFY email VARCHAR(200) CHARACTER SET utf8mb4 NOT NULL")
        driver.execute("DROP VIEW active_users")
        changed = read(driver)
    lines = [str(difference) for difference in diff(built, changed)]
    assert "changed table posts: ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=" in lines[0]
    assert "columns (id, user_id) -> " in lines[0]
    assert lines[0].endswith("columns (title, id, user_id)")
    assert any(line.startswith("changed column users.email:") for line in lines)
    assert any(line.startswith("extra column posts.title:") for line in lines)
    assert any(line.startswith("missing view active_users") for line in lines)


def test_sqlstages_own_tables_are_left_out(mysql_database: Database, tmp_path: Path) -> None:
    with open_driver(mysql_database, tmp_path) as driver:
        History(driver).ensure()
        write_marker(driver, "dev", False, "alice@laptop")
        assert read(driver).objects == ()
