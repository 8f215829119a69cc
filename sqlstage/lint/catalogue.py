"""The rule catalogue: every rule's id, default severity and why it is dangerous.

Pure data (no parser import), so configuration checks and `--help` stay fast. docs/lint.md
mirrors this table; tests/test_lint_docs.py keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    title: str
    why: str


_RULES = (
    Rule(
        "add-column-not-null-no-default",
        "error",
        "ADD COLUMN ... NOT NULL without a DEFAULT",
        "Fails with 'column contains null values' as soon as the table has a row: it passes on "
        "an empty dev database and breaks in production. All PostgreSQL versions.",
    ),
    Rule(
        "add-column-volatile-default",
        "error",
        "ADD COLUMN with a volatile default (or any default before PostgreSQL 11)",
        "A volatile default (random(), gen_random_uuid(), clock_timestamp(), nextval(), a serial "
        "type) or a STORED generated column is computed for every existing row: the table is "
        "rewritten under an ACCESS EXCLUSIVE lock that blocks reads and writes. PostgreSQL 11+ "
        "adds a column with a constant default instantly; PostgreSQL 10 and older rewrite the "
        "table for any non-null default.",
    ),
    Rule(
        "set-not-null",
        "error",
        "ALTER COLUMN ... SET NOT NULL on an existing table",
        "Scans the whole table for NULLs while holding ACCESS EXCLUSIVE: no reads or writes "
        "until it finishes. PostgreSQL 12+ skips the scan when a validated "
        "CHECK (column IS NOT NULL) constraint exists; older versions always scan.",
    ),
    Rule(
        "add-constraint-without-not-valid",
        "error",
        "ADD FOREIGN KEY / CHECK constraint without NOT VALID",
        "Validates every existing row while holding the lock: SHARE ROW EXCLUSIVE on both tables "
        "for a foreign key (writes blocked), ACCESS EXCLUSIVE for a CHECK. NOT VALID adds the "
        "constraint instantly (new rows are checked); VALIDATE CONSTRAINT then checks old rows "
        "under SHARE UPDATE EXCLUSIVE, which lets reads and writes continue. All versions.",
    ),
    Rule(
        "add-unique-without-index",
        "error",
        "ADD PRIMARY KEY / UNIQUE without a concurrently built index",
        "Builds the constraint's index while holding ACCESS EXCLUSIVE on the table: no reads "
        "or writes until the index is built. Build the index CONCURRENTLY first and attach it "
        "with USING INDEX, which is instant. All versions.",
    ),
    Rule(
        "create-index-without-concurrently",
        "error",
        "CREATE INDEX without CONCURRENTLY on an existing table",
        "Takes a SHARE lock: every INSERT, UPDATE and DELETE on the table waits until the index "
        "is built, minutes on a large table. CONCURRENTLY builds it without blocking writes. "
        "All versions.",
    ),
    Rule(
        "drop-index-without-concurrently",
        "warning",
        "DROP INDEX without CONCURRENTLY",
        "Takes ACCESS EXCLUSIVE on the index's table: it waits behind running queries and every "
        "query on the table queues behind it. DROP INDEX CONCURRENTLY waits without blocking "
        "others. All versions.",
    ),
    Rule(
        "concurrently-in-transaction",
        "error",
        "A statement that cannot run in a transaction, inside one",
        "CREATE/DROP/REINDEX ... CONCURRENTLY, VACUUM, ALTER SYSTEM and CREATE/DROP DATABASE "
        "fail with 'cannot run inside a transaction block'. sqlstage runs a migration in one "
        "transaction unless every statement in it is of this kind or its first line is "
        "'-- sqlstage:no-transaction'. All versions.",
    ),
    Rule(
        "alter-column-type",
        "error",
        "ALTER COLUMN ... TYPE on an existing table",
        "Rewrites the table and rebuilds its indexes under ACCESS EXCLUSIVE (only "
        "binary-compatible changes such as varchar(n) to text or to a longer varchar skip the "
        "rewrite). Running code may also break on the new type. All versions.",
    ),
    Rule(
        "rename-column",
        "error",
        "RENAME COLUMN",
        "Application code that is already running still uses the old name: its queries fail "
        "from the moment the migration commits until every instance runs new code. "
        "Expand and contract instead. All versions.",
    ),
    Rule(
        "rename-table",
        "error",
        "RENAME a table",
        "Application code that is already running still uses the old name: its queries fail "
        "from the moment the migration commits until every instance runs new code. A view "
        "under the old name keeps old code working during the switch. All versions.",
    ),
    Rule(
        "drop-column",
        "warning",
        "DROP COLUMN",
        "Code deployed before this migration still reads or writes the column (SELECT * and "
        "ORMs included) and fails once it is gone; the data cannot be rolled back. Drop it in a "
        "migration that runs only after the code that stopped using it is live everywhere. "
        "All versions.",
    ),
    Rule(
        "drop-table",
        "warning",
        "DROP TABLE",
        "Code deployed before this migration still uses the table and fails once it is gone; "
        "the data cannot be rolled back. Drop it in a migration that runs only after the code "
        "that stopped using it is live everywhere. All versions.",
    ),
    Rule(
        "drop-cascade",
        "error",
        "DROP ... CASCADE",
        "Silently drops every object that depends on the target (views, foreign keys, "
        "defaults, policies) without naming them. Without CASCADE, PostgreSQL refuses and "
        "lists the dependents. All versions.",
    ),
    Rule(
        "truncate",
        "error",
        "TRUNCATE",
        "Deletes every row at once under ACCESS EXCLUSIVE and is not MVCC-safe: concurrent "
        "transactions may see the table empty. Almost never what a schema migration on "
        "production data should do. All versions.",
    ),
    Rule(
        "update-without-where",
        "warning",
        "UPDATE without WHERE",
        "Rewrites every row in one transaction: every row stays locked against other writers "
        "until it commits, and the table bloats by its own size. Backfill in batches. "
        "All versions.",
    ),
    Rule(
        "delete-without-where",
        "error",
        "DELETE without WHERE",
        "Deletes every row of the table. If that is meant, say so with a waiver; if not, a "
        "WHERE clause is missing. All versions.",
    ),
    Rule(
        "backfill-with-ddl",
        "error",
        "UPDATE of a table in the same migration as DDL on it",
        "A migration is one transaction: the ALTER TABLE's ACCESS EXCLUSIVE lock is held until "
        "the whole backfill commits, so every query on the table waits for the backfill. "
        "Change the schema in one migration and backfill in batches in the next. All versions.",
    ),
    Rule(
        "alter-enum-add-value-in-transaction",
        "error",
        "ALTER TYPE ... ADD VALUE inside a transaction (PostgreSQL 11 and older)",
        "PostgreSQL 11 and older refuse ALTER TYPE ... ADD VALUE inside a transaction block, "
        "and sqlstage runs a migration in one transaction. PostgreSQL 12+ allows it, but the "
        "new value cannot be used until the transaction commits.",
    ),
    Rule(
        "vacuum-full",
        "error",
        "VACUUM FULL",
        "Rewrites the whole table under ACCESS EXCLUSIVE: no reads or writes until it is done. "
        "Use plain VACUUM, or pg_repack for an online rewrite, outside migrations. "
        "All versions.",
    ),
    Rule(
        "cluster",
        "error",
        "CLUSTER",
        "Rewrites the whole table in index order under ACCESS EXCLUSIVE: no reads or writes "
        "until it is done. Use pg_repack for an online rewrite, outside migrations. "
        "All versions.",
    ),
    Rule(
        "transaction-control",
        "error",
        "BEGIN / COMMIT / ROLLBACK in a migration",
        "sqlstage runs each migration in a transaction of its own, together with its history "
        "row: a COMMIT ends it early and leaves the rest outside any transaction, a BEGIN or "
        "ROLLBACK breaks it. apply refuses such a file before anything runs, with the same "
        "words. Savepoints are fine. A file whose first line is '-- sqlstage:no-transaction' "
        "manages transactions itself. All versions.",
    ),
    Rule(
        "concurrently-if-not-exists",
        "warning",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS",
        "A CREATE INDEX CONCURRENTLY that fails or is interrupted leaves its index behind, "
        "INVALID: never used by queries, yet still maintained on every write. IF NOT EXISTS "
        "then skips it on the next run, which records the migration applied without a usable "
        "index. Without IF NOT EXISTS the re-run stops and sqlstage names the index to drop "
        "(DROP INDEX CONCURRENTLY). All versions.",
    ),
    Rule(
        "missing-lock-timeout",
        "warning",
        "A table lock without lock_timeout",
        "A statement that needs a strong lock waits behind any running query on the table, and "
        "every later query queues behind it: one slow report can stall the whole application. "
        "With lock_timeout the migration gives up fast instead and can be retried. sqlstage "
        "sets it for every migration it runs in an environment with a lock_timeout (protected "
        "ones have 5s by default), so the rule fires only when a protected environment has none "
        '(lock_timeout = "0"), or, in a project with no protected environment, any one has '
        "none. The same in `lint` and in every `apply`. All versions.",
    ),
    Rule(
        "prefer-bigint-identity",
        "warning",
        "serial / integer primary key filled from a sequence",
        "A 32-bit counter runs out at 2,147,483,647 (a 16-bit one at 32,767), and widening the "
        "key later rewrites the table and every referencing one. serial types also leave the "
        "sequence outside the column's ownership rules; bigint GENERATED ALWAYS AS IDENTITY "
        "avoids both (PostgreSQL 10+). bigserial, and an integer key the application assigns "
        "(no serial, identity or nextval() default), are fine.",
    ),
    Rule(
        "prefer-text",
        "warning",
        "char(n) / varchar(n)",
        "Lowering the limit later, or changing char(n), rewrites the table under ACCESS "
        "EXCLUSIVE, and char(n) pads with spaces. text with a CHECK on its length stores the "
        "same and the limit can be changed with NOT VALID + VALIDATE, without a rewrite. "
        "All versions.",
    ),
    Rule(
        "prefer-timestamptz",
        "warning",
        "timestamp without time zone",
        "timestamp stores wall-clock time with no zone: values shift when a server, session or "
        "client changes its TimeZone, and comparisons across zones are wrong. timestamptz "
        "stores an instant in the same 8 bytes. All versions.",
    ),
    Rule(
        "syntax-error",
        "error",
        "The migration does not parse as PostgreSQL",
        "The server would refuse the migration; nothing else in the file was checked.",
    ),
    Rule(
        "bad-waiver",
        "warning",
        "A '-- sqlstage:allow' waiver that is not honoured",
        "A waiver must name known rule ids and give a reason: "
        "'-- sqlstage:allow create-index-without-concurrently table has 40 rows'.",
    ),
)

#: MySQL/MariaDB (sqlstage.lint.rules_mysql)
MYSQL_RULES = (
    Rule(
        "mysql-alter-copies-table",
        "error",
        "ALTER TABLE that copies the table (ALGORITHM=COPY)",
        "The server builds a new copy of the table row by row and swaps it in; writes wait "
        "for the whole copy (LOCK=SHARED), and replicas replay it after the primary finished. "
        "Changing a column's type, CONVERT TO CHARACTER SET, adding a foreign key while "
        "foreign_key_checks is on, adding a CHECK, dropping the primary key and changing the "
        "engine all copy.",
    ),
    Rule(
        "mysql-alter-without-algorithm",
        "warning",
        "ALTER TABLE without ALGORITHM=INSTANT / INPLACE, LOCK=NONE",
        "Without an ALGORITHM clause the server picks the best algorithm it can and silently "
        "falls back to copying the table when it cannot use INSTANT or INPLACE (an older "
        "server, a change it has to rebuild for). Saying the algorithm makes it refuse instead.",
    ),
    Rule(
        "mysql-ddl-mixed-with-dml",
        "warning",
        "DDL and DML in one migration",
        "MySQL commits every DDL statement on its own, with whatever ran before it, so such a "
        "migration cannot be undone as a unit: sqlstage runs it statement by statement, and if "
        "the data change fails, the DDL stays applied and the migration is half done until "
        "`repair --resume`.",
    ),
    Rule(
        "mysql-compound-without-delimiter",
        "error",
        "BEGIN ... END body without a DELIMITER line",
        "The mysql client, and sqlstage, which splits as it does, end a statement at the first "
        "`;`, so a procedure, function, trigger or event whose body holds `;` is cut in half "
        "and the server gets a syntax error, after the statements before it committed.",
    ),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in (*_RULES, *MYSQL_RULES)}
