"""MySQL/MariaDB statements, split exactly as the `mysql`/`mariadb` command-line client splits
a file fed to it (`mariadb DB < file.sql`).

The client, not the server, decides where a statement ends: it reads the file line by line,
sends everything up to the current delimiter (`;` until a `DELIMITER` line changes it), strips
comments other than `/*! ... */` and `/*M! ... */`, and runs its own commands (`DELIMITER`,
`USE`, `source`, `\\g`, ...) itself. This module is a port of that loop (client/mysql.cc,
`read_and_execute` and `add_line`, MariaDB 10.11), so that sqlstage sends the server the same
statements, byte for byte, that `mariadb < file` would:

    >>> split = split_mysql("DELIMITER $$\\nCREATE PROCEDURE p() BEGIN SELECT 1; END$$\\n")
    >>> [(s.line, s.sql) for s in split.statements]
    [(2, 'CREATE PROCEDURE p() BEGIN SELECT 1; END')]

Where the client would do something sqlstage cannot (a client command, a bad `DELIMITER`) or
something the author surely did not mean (a `BEGIN ... END` body cut at its first `;` because
no `DELIMITER` line came before it), the split says so in `problems`, with the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from sqlstage.sqltext import Statement

DEFAULT_DELIMITER = ";"
#: the client's my_isspace (latin1): what counts as blank around commands and statements
_SPACE = " \t\n\v\f\r"

ProblemKind = Literal["client-command", "delimiter", "compound-without-delimiter"]


@dataclass(frozen=True)
class Problem:
    """Something in the file the client would not send to the server as written."""

    kind: ProblemKind
    line: int
    message: str
    fix: str


@dataclass(frozen=True)
class MysqlSplit:
    """The statements the client would send, in order, and what else it would do."""

    statements: tuple[Statement, ...]
    problems: tuple[Problem, ...] = ()
    #: the delimiter in force at the end of the file
    delimiter: str = DEFAULT_DELIMITER

    @property
    def compounds_without_delimiter(self) -> tuple[Problem, ...]:
        """Compound statements (`BEGIN ... END` bodies) that the missing `DELIMITER` cut."""
        return tuple(p for p in self.problems if p.kind == "compound-without-delimiter")


@dataclass(frozen=True)
class _Command:
    name: str
    takes_params: bool


#: the client's own commands, by long name and by the letter after a backslash (`\\g`)
_COMMANDS = {
    "?": _Command("?", True),
    "clear": _Command("clear", False),
    "connect": _Command("connect", True),
    "delimiter": _Command("delimiter", True),
    "edit": _Command("edit", False),
    "ego": _Command("ego", False),
    "exit": _Command("exit", False),
    "go": _Command("go", False),
    "help": _Command("help", True),
    "nopager": _Command("nopager", False),
    "notee": _Command("notee", False),
    "pager": _Command("pager", True),
    "print": _Command("print", False),
    "prompt": _Command("prompt", True),
    "quit": _Command("quit", False),
    "rehash": _Command("rehash", False),
    "source": _Command("source", True),
    "status": _Command("status", False),
    "system": _Command("system", True),
    "tee": _Command("tee", True),
    "use": _Command("use", True),
    "charset": _Command("charset", True),
    "warnings": _Command("warnings", False),
    "nowarning": _Command("nowarning", False),
    "sandbox": _Command("sandbox", False),
}
_SHORT = {
    "?": "?", "c": "clear", "r": "connect", "d": "delimiter", "e": "edit", "G": "ego",
    "q": "quit", "g": "go", "h": "help", "n": "nopager", "t": "notee", "P": "pager",
    "p": "print", "R": "prompt", "#": "rehash", ".": "source", "s": "status", "!": "system",
    "T": "tee", "u": "use", "C": "charset", "W": "warnings", "w": "nowarning", "-": "sandbox",
}  # fmt: skip
#: commands that only change how the client prints: harmless, sqlstage does nothing for them
_HARMLESS = frozenset({"warnings", "nowarning", "nopager", "notee", "rehash", "print", "sandbox"})


def split_mysql(text: str, backslash_escapes: bool = True) -> MysqlSplit:
    """Split a file as `mariadb DB < file` would. `backslash_escapes=False` is for a server in
    `NO_BACKSLASH_ESCAPES` mode, where `\\` inside a string is an ordinary character.

    >>> [s.sql for s in split_mysql("select 'a;b' # c;\\n; -- d;\\nselect `e;`").statements]
    ["select 'a;b'", 'select `e;`']
    """
    scanner = _Client(backslash_escapes)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line does not start another
    for number, line in enumerate(lines, start=1):
        if number == 1 and line.startswith("\ufeff"):
            line = line[1:]  # the client skips a UTF-8 byte order mark
        if scanner.read_line(line.removesuffix("\r"), number):
            break  # `exit` or `quit`
    scanner.end_of_file()
    return MysqlSplit(tuple(scanner.statements), tuple(scanner.problems), scanner.delimiter)


def mysql_statements(text: str) -> list[Statement]:
    """Just the statements of `split_mysql`."""
    return list(split_mysql(text).statements)


@dataclass
class _Client:
    """The client's reading state across lines (`glob_buffer`, `in_string`, `ml_comment`)."""

    backslash_escapes: bool
    delimiter: str = DEFAULT_DELIMITER
    buffer: list[str] = field(default_factory=list)
    in_string: str = ""
    ml_comment: bool = False
    start_line: int = 0
    line: int = 0
    statements: list[Statement] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def buffer_empty(self) -> bool:
        return not any(self.buffer)

    def read_line(self, line: str, number: int) -> bool:
        """One line of input; True when the client would stop reading (`exit`)."""
        self.line = number
        if not self.ml_comment and not self.in_string:
            command = self._find_command(line)
            if command is not None and self.buffer_empty:
                return self._run(command, line)
            if command is not None and command.name == "delimiter":
                self.problems.append(_delimiter_inside_statement(self.start_line, number))
        return self._add_line(line)

    def end_of_file(self) -> None:
        """In batch mode the client sends what is left even without a delimiter."""
        self._go()

    # -- add_line ---------------------------------------------------------------------
    def _add_line(self, line: str) -> bool:
        if not line and self.buffer_empty:
            return False
        out: list[str] = []
        need_space = ss_comment = False
        pos, end = 0, len(line)

        def flush() -> None:
            self._append("".join(out))
            out.clear()

        while pos < end:
            char = line[pos]
            following = line[pos + 1 : pos + 2]
            if char in _SPACE and not out and self.buffer_empty:
                pos += 1  # blanks before a statement are dropped
                continue
            if not self.ml_comment and char == "\\" and self._backslash_counts():
                pos += 1
                if pos >= end:
                    break  # a backslash at the end of a line is dropped
                char = line[pos]
                if self.in_string or char == "N":  # an escape, or \N (NULL)
                    out.append("\\" + char)
                    pos += 1
                    continue
                name = _SHORT.get(char)
                if name is None:  # the client complains and keeps both characters
                    out.append("\\" + char)
                    pos += 1
                    continue
                flush()
                if self._run(_COMMANDS[name], line[pos - 1 :]):
                    return True
                if _COMMANDS[name].takes_params:
                    pos = self._skip_params(line, pos, ss_comment)
                pos += 1
            elif (
                not self.ml_comment and not self.in_string and line.startswith(self.delimiter, pos)
            ):
                pos += len(self.delimiter)
                flush()
                command = self._find_command("".join(self.buffer))
                if command is not None:
                    if self._run(command, "".join(self.buffer)):
                        return True
                    self.buffer.clear()
                else:
                    self._go()
            elif not self.ml_comment and not self.in_string and self._line_comment(line, pos, out):
                flush()
                break
            elif not self.in_string and line.startswith("/*", pos) and not _executable(line, pos):
                pos += 2
                self.ml_comment = True
                flush()
            elif self.ml_comment and not ss_comment and char == "*" and following == "/":
                pos += 2
                self.ml_comment = False
                flush()
                need_space = True
            else:
                if not self.in_string and line.startswith("/*!", pos):
                    ss_comment = True
                elif not self.in_string and ss_comment and char == "*" and following == "/":
                    ss_comment = False
                if char == self.in_string:
                    self.in_string = ""
                elif not self.ml_comment and not self.in_string and char in "'\"`":
                    self.in_string = char
                if not self.ml_comment:
                    if need_space and char not in _SPACE:
                        out.append(" ")
                    need_space = False
                    out.append(char)
                pos += 1
        if out or not self.buffer_empty:
            rest = "".join(out)
            if not _is_delimiter_command(rest) or self.in_string or self.ml_comment:
                rest += "\n"
            if not self.ml_comment:
                self._append(rest)
        return False

    def _backslash_counts(self) -> bool:
        """Whether a backslash here is the client's escape or command character."""
        if self.in_string == "`":
            return False
        return not (self.in_string and not self.backslash_escapes)

    def _line_comment(self, line: str, pos: int, out: list[str]) -> bool:
        """`#`, or `--` followed by a blank or the end of the line (or, at the very start of
        a statement, `--` followed by anything: mysqldump writes such lines)."""
        if line[pos] == "#":
            return True
        if not line.startswith("--", pos):
            return False
        third = line[pos + 2 : pos + 3]
        return not third or third in _SPACE or (not out and self.buffer_empty)

    def _skip_params(self, line: str, pos: int, ss_comment: bool) -> int:
        """After `\\d $$` and the like: the parameters run to the end of a `/*! */` comment or
        to the next delimiter; returns the position of their last character."""
        if ss_comment:
            found = line.find("*/", pos + 1)
            return (len(line) if found < 0 else found) - 1
        found = line.find(self.delimiter, pos + 1)
        return len(line) - 1 if found < 0 else found + len(self.delimiter) - 1

    def _append(self, text: str) -> None:
        if text and self.buffer_empty:
            self.start_line = self.line
        self.buffer.append(text)

    # -- com_go and the client's commands ---------------------------------------------
    def _go(self) -> None:
        """Send the buffer as one statement (trailing blanks and control characters go)."""
        sql = "".join(self.buffer)
        self.buffer.clear()
        end = len(sql)
        while end and (sql[end - 1].isspace() or not sql[end - 1].isprintable()):
            end -= 1
        if end:
            statement = Statement(sql[:end], self.start_line)
            self.statements.append(statement)
            cut = _cut_compound(statement)
            if cut is not None:
                self.problems.append(cut)

    def _find_command(self, text: str) -> _Command | None:
        """The client's `find_command(char *name)`: a line (or a finished buffer) that is one
        of its own commands, e.g. `DELIMITER $$` or `use app`."""
        name = text.lstrip(_SPACE)
        if "\\g" in name or (self.delimiter in name and not _is_delimiter_command(name)):
            return None
        word_end = min((i for i in (name.find(" "), name.find("\t")) if i >= 0), default=-1)
        word = name if word_end < 0 else name[:word_end]
        has_args = word_end >= 0 and bool(name[word_end:].strip(_SPACE))
        command = _COMMANDS.get(word.lower())
        if command is None:
            return None
        if has_args and not (command.takes_params and _get_arg(name) is not None):
            return None
        return command

    def _run(self, command: _Command, text: str) -> bool:
        """Do what the client does for one of its commands; True for `exit`/`quit`."""
        if command.name == "delimiter":
            self._set_delimiter(text)
        elif command.name in ("go", "ego"):
            self._go()
        elif command.name not in _HARMLESS:
            self.problems.append(_client_command(command.name, self.line))
            self.buffer.clear()
        return command.name in ("exit", "quit")

    def _set_delimiter(self, text: str) -> None:
        value = _get_arg(text)
        if not value:
            self.problems.append(
                Problem(
                    "delimiter",
                    self.line,
                    "DELIMITER must be followed by a delimiter (the mysql client ignores this "
                    "line and keeps the delimiter it had)",
                    "write the delimiter after it, e.g. `DELIMITER $$`, or remove the line",
                )
            )
        elif "\\" in value:
            self.problems.append(
                Problem(
                    "delimiter",
                    self.line,
                    f"DELIMITER {value} contains a backslash, which the mysql client refuses "
                    "(it ignores this line and keeps the delimiter it had)",
                    "use a delimiter without a backslash, e.g. `DELIMITER $$` or `DELIMITER //`",
                )
            )
        else:
            self.delimiter = value


def _is_delimiter_command(text: str) -> bool:
    return text[:9].lower() == "delimiter" and len(text) >= 9


def _executable(line: str, pos: int) -> bool:
    """`/*! ... */` and `/*M! ... */` are SQL to the server, not comments."""
    return line.startswith("/*!", pos) or line.startswith("/*M!", pos)


def _get_arg(text: str) -> str | None:
    """The client's `get_arg(line, GET)`: the first argument of a command, unquoted.

    >>> _get_arg("DELIMITER $$"), _get_arg("delimiter ';'"), _get_arg("\\\\d //")
    ('$$', ';', '//')
    """
    i = 0
    while i < len(text) and text[i] in _SPACE:
        i += 1
    short = text.startswith("\\", i)
    if short:
        i += 2
    else:
        while i < len(text) and text[i] not in _SPACE:
            i += 1
    if i >= len(text):
        return None
    while i < len(text) and text[i] in _SPACE:
        i += 1
    quote = text[i] if i < len(text) and text[i] in "'\"`" else ""
    i += bool(quote)
    value: list[str] = []
    while i < len(text):
        char, following = text[i], text[i + 1 : i + 2]
        escaped = char == "\\" and following and (short or quote != "`")
        doubled = not short and quote and char == quote and following == quote
        if escaped or doubled:
            value.append(following)
            i += 2
            continue
        if char == (quote or " "):
            quote = ""
            break
        value.append(char)
        i += 1
    return "".join(value) if value and not quote else None


def _delimiter_inside_statement(start: int, line: int) -> Problem:
    return Problem(
        "delimiter",
        line,
        f"DELIMITER inside the statement that starts on line {start}: that statement has not "
        "ended with the current delimiter, so the mysql client sends this line to the server "
        "as part of it",
        "end the statement before it with the delimiter in force (e.g. `END$$`)",
    )


def _client_command(name: str, line: int) -> Problem:
    if name == "use":
        return Problem(
            "client-command",
            line,
            "USE switches the database the rest of the file runs in; sqlstage keeps its "
            "history in the database the environment's URL names and runs every migration there",
            "remove the USE line and point the environment's URL at that database",
        )
    return Problem(
        "client-command",
        line,
        f"`{name}` is a command of the mysql client itself, not SQL, and sqlstage cannot run it",
        "remove it; a migration holds only SQL (and DELIMITER lines)",
    )


# -- compound statements cut by a missing DELIMITER -------------------------------------
_COMPOUND_HEAD = re.compile(
    r"""\s*(?:CREATE\s+(?:OR\s+REPLACE\s+)?
            (?:DEFINER\s*=\s*(?:CURRENT_USER(?:\s*\(\s*\))?|\S+)\s+)?
            (?:AGGREGATE\s+)?
            (?P<kind>PROCEDURE|FUNCTION|TRIGGER|EVENT)\b
          |(?P<block>BEGIN\s+NOT\s+ATOMIC)\b)""",
    re.IGNORECASE | re.VERBOSE,
)
_TOKEN = re.compile(
    r"'(?:\\.|''|[^'\\])*'?|\"(?:\\.|\"\"|[^\"\\])*\"?|`(?:``|[^`])*`?|[A-Za-z_][A-Za-z0-9_$]*",
    re.DOTALL,
)
_LOOP_ENDS = frozenset({"IF", "LOOP", "WHILE", "REPEAT", "FOR"})


def _cut_compound(statement: Statement) -> Problem | None:
    """A CREATE PROCEDURE/FUNCTION/TRIGGER/EVENT (or `BEGIN NOT ATOMIC`) whose `BEGIN` is not
    closed by its `END`: the delimiter ended it inside its body."""
    head = _COMPOUND_HEAD.match(statement.sql)
    if head is None or _open_blocks(statement.sql[head.end() :], bool(head["block"])) <= 0:
        return None
    kind = (head["kind"] or "BEGIN NOT ATOMIC").upper()
    what = f"CREATE {kind}" if head["kind"] else kind
    return Problem(
        "compound-without-delimiter",
        statement.line,
        f"{what} has a BEGIN ... END body with `;` inside, but no DELIMITER line before it: "
        "the mysql client (and sqlstage, which splits as it does) ends the statement at the "
        "first `;` of the body, so the server gets half of it",
        "put `DELIMITER $$` on the line before it, end it with `END$$`, and add "
        "`DELIMITER ;` after it",
    )


def _open_blocks(body: str, opened: bool) -> int:
    """BEGIN ... END (and CASE ... END) depth at the end of `body`."""
    words = [t.upper() for t in _TOKEN.findall(body) if t[0] not in "'\"`"]
    depth = int(opened)
    for index, word in enumerate(words):
        after = words[index + 1] if index + 1 < len(words) else ""
        if word == "BEGIN" or (word == "CASE" and words[index - 1 : index] != ["END"]):
            depth += 1
        elif word == "END" and after not in _LOOP_ENDS:
            depth -= 1
    return depth


# -- statements MySQL commits on its own ------------------------------------------------
_VERSIONED = re.compile(r"/\*M?!\d*|\*/")
_DEFINER = re.compile(r"\bDEFINER\s*=\s*(?:'[^']*'|`[^`]*`|\"[^\"]*\"|[^\s@]+)(?:@\S+)?", re.I)
_WORD = re.compile(r"[A-Za-z_]+")
#: words between CREATE/ALTER/DROP and the kind of object
_MODIFIERS = frozenset(
    [
        "OR",
        "REPLACE",
        "ALGORITHM",
        "UNDEFINED",
        "MERGE",
        "TEMPTABLE",
        "SQL",
        "SECURITY",
        "INVOKER",
        "UNIQUE",
        "FULLTEXT",
        "SPATIAL",
        "ONLINE",
        "OFFLINE",
        "IGNORE",
        "AGGREGATE",
        "TEMPORARY",
        "IF",
        "NOT",
        "EXISTS",
    ]
)
_DDL = frozenset({"CREATE", "ALTER", "DROP"})
#: statements (by first word) that commit the transaction they run in, whatever follows
_COMMITTING = frozenset(
    [
        "RENAME",
        "TRUNCATE",
        "GRANT",
        "REVOKE",
        "LOCK",
        "UNLOCK",
        "ANALYZE",
        "CACHE",
        "CHECK",
        "FLUSH",
        "OPTIMIZE",
        "REPAIR",
        "RESET",
        "INSTALL",
        "UNINSTALL",
        "CHANGE",
    ]
)


def implicit_commit(sql: str) -> str | None:
    """What the statement is (`CREATE TABLE`) when MySQL/MariaDB commits it implicitly, with
    the transaction it ran in (all DDL does); None for statements a transaction can hold.

    >>> implicit_commit("alter table t add x int"), implicit_commit("insert into t values (1)")
    ('ALTER TABLE', None)
    >>> implicit_commit("CREATE TEMPORARY TABLE t (x int)") is None
    True
    """
    head = _DEFINER.sub(" ", _VERSIONED.sub(" ", sql[:300]))
    words = [w.upper() for w in _WORD.findall(head)[:8]]
    if not words:
        return None
    verb = words[0]
    if verb in _DDL:
        rest = [w for w in words[1:] if w not in _MODIFIERS]
        if "TEMPORARY" in words[1:4] and rest[:1] == ["TABLE"]:
            return None  # temporary tables do not commit
        return f"{verb} {rest[0]}" if rest else verb
    if verb in _COMMITTING or (verb == "LOAD" and words[1:2] == ["INDEX"]):
        return " ".join(words[:2])
    if verb == "SET" and words[1:2] in (["PASSWORD"], ["AUTOCOMMIT"]):
        return f"SET {words[1]}"
    return None


def transaction_control(sql: str) -> str | None:
    """`COMMIT` (or `START TRANSACTION`, `XA`, `SET autocommit`, ...) when the statement would
    begin or end the transaction a migration runs in, else None.

    >>> [transaction_control(s) for s in ("commit", "rollback to savepoint a", "begin not atomic")]
    ['COMMIT', None, None]
    """
    words = sql.split(None, 2)
    first = words[0].upper().rstrip(";") if words else ""
    second = words[1].upper() if len(words) > 1 else ""
    if first == "BEGIN" and second == "NOT":
        return None  # BEGIN NOT ATOMIC ... END: a compound statement, not a transaction
    if first == "ROLLBACK" and second.startswith("TO"):
        return None  # ROLLBACK TO SAVEPOINT stays inside the transaction
    if first == "START" and second == "TRANSACTION":
        return "START TRANSACTION"
    if first == "XA":
        return "XA"
    if first == "SET" and re.match(r"SET\s+(@@(SESSION\.)?)?autocommit\b", sql, re.I):
        return "SET autocommit"
    return first if first in {"BEGIN", "COMMIT", "END", "ROLLBACK"} else None
