"""MySQL/MariaDB statements are split exactly as the `mariadb` client splits a file: checked
against the real client (what it sends, echoed with -vvv) and the real server (the schema a
file leaves, via mariadb-dump), on the cases other tools get wrong."""

from __future__ import annotations

import pytest

from sqlstage.drivers import connect
from sqlstage.errors import MigrationFileError
from sqlstage.mysql_statements import implicit_commit, split_mysql
from sqlstage.urls import parse_url
from tests.conftest import Database, make_mysql_database
from tests.mysql_client import dump_schema, run_file, sent_statements

HARD_CASES = {
    "trigger with inner semicolons": """
CREATE TABLE accounts (id INT PRIMARY KEY, balance INT NOT NULL, touched INT DEFAULT 0);
DELIMITER $$
CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts
FOR EACH ROW
BEGIN
  SET NEW.touched = OLD.touched + 1; -- count; every update
  IF NEW.balance < 0 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no overdraft; ever';
  END IF;
END$$
DELIMITER ;
INSERT INTO accounts (id, balance) VALUES (1, 10);
""",
    "procedure followed by an ALTER": """
CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(200) NOT NULL);
DELIMITER //
CREATE PROCEDURE add_user(IN address VARCHAR(200))
BEGIN
  DECLARE n INT DEFAULT 0;
  SELECT COUNT(*) INTO n FROM users WHERE email = address;
  IF n = 0 THEN INSERT INTO users (email) VALUES (address); END IF;
END //
DELIMITER ;
ALTER TABLE users ADD COLUMN created_at DATETIME NULL;
CALL add_user('a@example.com');
""",
    "DELIMITER $$ blocks, a function and an event": """
DELIMITER $$
CREATE FUNCTION greet(who VARCHAR(50)) RETURNS VARCHAR(80) DETERMINISTIC
BEGIN
  RETURN CONCAT('hello; ', who, '!');
END$$
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO
BEGIN
  DO greet('night');
  DO greet('again');
END$$
DELIMITER ;
CREATE TABLE after_delimiters (x INT);
""",
    "strings with \\' and ;": r"""
CREATE TABLE notes (id INT PRIMARY KEY, body TEXT, `odd;name` INT);
INSERT INTO notes VALUES (1, 'it\'s; fine', 1), (2, "say \"hi\"; then go", 2);
INSERT INTO notes VALUES (3, 'back\\slash;', 3), (4, 'doubled '' quote;', 4);
CREATE VIEW note_bodies AS SELECT body AS `b;ody` FROM notes;
""",
    "comments of every kind": """
# a hash comment; with a semicolon
-- a dash comment; too
--no space after the dashes at the start of a statement; mysqldump writes these
/* a block; comment */ CREATE TABLE c1 (x INT); /* after; */ CREATE TABLE c2 (y INT) -- end;
;
/*!40101 SET @saved = @@SESSION.sql_mode */;
/*M!100100 CREATE TABLE c3 (z INT) */;
CREATE TABLE c4 (a INT /* inline; */, b INT) COMMENT 'not -- a comment; at all';
""",
    "mysqldump-style ;; triggers": """
CREATE TABLE t (a INT);
DELIMITER ;;
/*!50003 CREATE*/ /*!50003 TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW BEGIN
  SET NEW.a = NEW.a * 2;
END */;;
DELIMITER ;
INSERT INTO t VALUES (21);
""",
}


@pytest.fixture
def oracle() -> Database:
    """A scratch database for the client to run the cases in."""
    generator = make_mysql_database()
    database = next(generator)
    yield database
    generator.close()


@pytest.mark.parametrize("case", HARD_CASES)
def test_sends_what_the_mysql_client_sends(case: str, oracle: Database) -> None:
    ours = [s.sql for s in split_mysql(HARD_CASES[case]).statements]
    assert ours == sent_statements(oracle.url, HARD_CASES[case])


@pytest.mark.parametrize("case", HARD_CASES)
def test_leaves_the_schema_the_mysql_client_leaves(
    case: str, mysql_database: Database, mysql_database2: Database, tmp_path
) -> None:
    sql = HARD_CASES[case]
    done = run_file(mysql_database.url, sql)
    assert done.returncode == 0, done.stderr
    with connect(parse_url(mysql_database2.url, tmp_path, "dev")) as driver:
        for statement in driver.statements(sql):
            driver.execute(statement.sql)
    assert dump_schema(mysql_database2.url) == dump_schema(mysql_database.url)


def test_each_statement_carries_the_line_it_starts_on() -> None:
    split = split_mysql(HARD_CASES["procedure followed by an ALTER"])
    assert [(s.line, s.sql.split()[0]) for s in split.statements] == [
        (2, "CREATE"),
        (4, "CREATE"),
        (11, "ALTER"),
        (12, "CALL"),
    ]
    assert split.problems == ()


COMPOUND_WITHOUT_DELIMITER = """
CREATE TABLE t (a INT, b INT);
CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW
BEGIN
  SET NEW.a = 1;
  SET NEW.b = 2;
END;
"""


def test_a_compound_statement_without_delimiter_is_a_finding(oracle: Database) -> None:
    split = split_mysql(COMPOUND_WITHOUT_DELIMITER)
    [problem] = split.compounds_without_delimiter
    assert problem.line == 3
    assert "CREATE TRIGGER" in problem.message and "DELIMITER $$" in problem.fix
    # the finding is real: the client cuts the trigger at its first `;` and the server refuses
    done = run_file(oracle.url, COMPOUND_WITHOUT_DELIMITER)
    assert done.returncode != 0 and "at line 3" in done.stderr


def test_the_driver_refuses_a_cut_compound_before_running_anything(
    mysql_database: Database, tmp_path
) -> None:
    url = parse_url(mysql_database.url, tmp_path, "dev")
    with (
        connect(url) as driver,
        pytest.raises(MigrationFileError, match=r"^line 3: CREATE TRIGGER") as caught,
    ):
        driver.statements(COMPOUND_WITHOUT_DELIMITER)
    assert caught.value.exit_code == 2
    assert mysql_database.tables() == set()


def test_a_routine_without_inner_semicolons_needs_no_delimiter() -> None:
    sql = (
        "CREATE FUNCTION one() RETURNS INT DETERMINISTIC RETURN 1;\nCREATE PROCEDURE p() BEGIN END;"
    )
    split = split_mysql(sql)
    assert len(split.statements) == 2 and split.problems == ()


@pytest.mark.parametrize(
    ("sql", "line", "words"),
    [
        ("SELECT 1;\nUSE other;\n", 2, "USE switches the database"),
        ("use other\nSELECT 1;\n", 1, "USE switches the database"),
        ("SELECT 1;\nsource other.sql\n", 2, "`source` is a command of the mysql client"),
        ("DELIMITER\nSELECT 1;\n", 1, "DELIMITER must be followed by a delimiter"),
        ("DELIMITER \\\\\n", 1, "contains a backslash"),
        ("DELIMITER $$\nCREATE PROCEDURE p() BEGIN SELECT 1; END\nDELIMITER ;\n", 3, "has not"),
    ],
)
def test_what_the_client_would_not_send_is_named_with_its_line(
    sql: str, line: int, words: str
) -> None:
    [problem] = split_mysql(sql).problems
    assert problem.line == line and words in problem.message


def test_delimiter_lines_are_honoured_exactly_as_the_client_does() -> None:
    sql = "delimiter ;;\nSELECT 1;;\nDELIMITER //   \nSELECT 2 //\nDELIMITER ;\nSELECT 3;"
    split = split_mysql(sql)
    assert [(s.line, s.sql) for s in split.statements] == [
        (2, "SELECT 1"),
        (4, "SELECT 2"),
        (6, "SELECT 3"),
    ]
    assert split.delimiter == ";"


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("CREATE TABLE t (x INT)", "CREATE TABLE"),
        ("create definer=`root`@`%` procedure p() begin end", "CREATE PROCEDURE"),
        ("CREATE UNIQUE INDEX i ON t (x)", "CREATE INDEX"),
        ("ALTER ONLINE TABLE t ADD y INT", "ALTER TABLE"),
        ("CREATE OR REPLACE VIEW v AS SELECT 1", "CREATE VIEW"),
        (
            "/*!50003 CREATE*/ /*!50003 TRIGGER x BEFORE INSERT ON t FOR EACH ROW SET @a = 1*/",
            "CREATE TRIGGER",
        ),
        ("RENAME TABLE a TO b", "RENAME TABLE"),
        ("TRUNCATE TABLE t", "TRUNCATE TABLE"),
        ("CREATE TEMPORARY TABLE t (x INT)", None),
        ("INSERT INTO t VALUES (1)", None),
        ("UPDATE t SET x = 1", None),
        ("SET @a = 1", None),
    ],
)
def test_statements_that_commit_themselves_are_known(sql: str, kind: str | None) -> None:
    assert implicit_commit(sql) == kind
