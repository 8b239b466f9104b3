"""DDL at the target: did a statement take effect before a crash? A schema fingerprint says.

DDL commits by itself, so its position cannot be written in the same transaction. Before
running one, apply records a fingerprint of the target schemas it may touch together
with the statement's GTID (``ddl_in_progress``). Replayed after a crash, the statement
is skipped when the fingerprint changed (it took effect) and run when it did not.
Comparing fingerprints instead of guessing from error codes matters for statements that
succeed twice with different results: ``RENAME TABLE a TO t, b TO a, t TO b`` swaps the
tables back, ``ALTER TABLE t ADD INDEX (c)`` adds a second index ``c_2``.

The fingerprint hashes the structural rows of information_schema (SCHEMATA, TABLES,
COLUMNS, STATISTICS: never row counts, sizes or times, which change with data) and
InnoDB's table ids (``INNODB_SYS_TABLES``), which tell two tables of the same shape
apart: a swap of identical tables changes nothing else. Reading the ids needs the
PROCESS privilege; without it such a swap cannot be seen (everything else still is).
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Callable
from typing import Any

import pymysql

from hotsite.db import error_code

# ddl_fingerprint of a statement that failed at the target: run it again on restart
# (the user may have fixed the target), never take a changed schema for its effect.
DDL_FAILED = "failed"
_STATEMENT_SHOWN = 200

_QUERIES = (
    "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION, CREATE_OPTIONS,"
    " TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ({})"
    " ORDER BY TABLE_SCHEMA, TABLE_NAME",
    "SELECT TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE,"
    " COLUMN_DEFAULT, COLLATION_NAME, EXTRA, COLUMN_COMMENT FROM information_schema.COLUMNS"
    " WHERE TABLE_SCHEMA IN ({}) ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
    "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, NON_UNIQUE, COLUMN_NAME,"
    " SUB_PART, INDEX_TYPE FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN ({})"
    " ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
)
_NO_TABLE_IDS = "0" * 32
# no PROCESS privilege; no such table (MySQL calls it INNODB_TABLES)
_TABLE_IDS_UNREADABLE = {1227, 1109, 1146}
_TABLE_IDS = (
    "SELECT NAME, TABLE_ID FROM information_schema.INNODB_SYS_TABLES"
    " WHERE SUBSTRING_INDEX(NAME, '/', 1) IN ({}) ORDER BY NAME"
)


def schema_matcher(patterns: list[str], default_schema: str) -> Callable[[str], bool]:
    """Whether a schema holds tables a link's patterns ('app.*', 'app.orders') may select."""
    schemas = [p.split(".", 1)[0].lower() for p in patterns] or [default_schema.lower()]
    return lambda schema: any(fnmatch.fnmatchcase(schema.lower(), s) for s in schemas)


def fingerprint(cur: Any, ddl_schema: str | None, replicated: Callable[[str], bool]) -> str:
    """The structure of the DDL's default schema and the link's schemas: 32 hex digits
    for information_schema's rows, then 32 for InnoDB's table ids (zeros when this user
    may not read them), so that a change of privileges alone never reads as a change."""
    cur.execute(
        "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME"
        " FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME"
    )
    schemata = [row for row in cur.fetchall() if row[0] == ddl_schema or replicated(row[0])]
    structure = hashlib.sha256(repr(schemata).encode())
    table_ids = _NO_TABLE_IDS
    names = [row[0] for row in schemata]
    if names:
        marks = ", ".join(["%s"] * len(names))
        for query in _QUERIES:
            cur.execute(query.format(marks), names)
            structure.update(repr(cur.fetchall()).encode())
        try:
            cur.execute(_TABLE_IDS.format(marks), names)
            table_ids = hashlib.sha256(repr(cur.fetchall()).encode()).hexdigest()[:32]
        except pymysql.MySQLError as exc:
            if error_code(exc) not in _TABLE_IDS_UNREADABLE:
                raise
    return structure.hexdigest()[:32] + table_ids


def took_effect(before: str, now: str) -> bool:
    """Whether the schema changed between two fingerprints (table ids compared only when
    both could be read)."""
    if before[:32] != now[:32]:
        return True
    return _NO_TABLE_IDS not in (before[32:], now[32:]) and before[32:] != now[32:]


def still_running(cur: Any, ddl: str) -> bool:
    """Whether an earlier session (ours, before a lost connection) still runs the statement:
    its effect cannot be judged until it ends."""
    cur.execute(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
        " WHERE INFO = %s AND ID <> CONNECTION_ID()",
        (ddl,),
    )
    row = cur.fetchone()
    return bool(row and row[0])


def shown(ddl: str) -> str:
    """The statement on one line, cut to about 200 characters for an error message."""
    text = re.sub(r"\s+", " ", ddl).strip()
    return text if len(text) <= _STATEMENT_SHOWN else text[: _STATEMENT_SHOWN - 3] + "..."


def source_session(context: list[int | None] | None) -> list[tuple[str, int]]:
    """``SET SESSION`` assignments for a DDL's source session (numbers, as the server
    takes them: the sql_mode bit set, collation ids)."""
    if not context:
        return []
    names = ("sql_mode", "character_set_client", "collation_connection", "collation_server")
    return [(name, value) for name, value in zip(names, context, strict=False) if value is not None]


def text(ddl: str | bytes | None) -> str:
    """A DDL statement as text for messages and checks (its bytes may not be utf8)."""
    if isinstance(ddl, bytes):
        return ddl.decode("utf8", "replace")
    return ddl or ""
