"""SQL for applying row images: upserts, deletes by key, ordered inserts/updates, and
the one existence query per table and batch that finds rows not as the source had them.

Statements are built once per (table, columns) and cached: the apply loop only binds
values. Multi-row forms send a whole run of changes in one round trip; the collapsed
path writes its values as literals itself (``row_literal``), faster than the driver.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

from hotsite.replication.schema import TableInfo, quote

# Like pymysql's executemany: multi-row statements stay far under max_allowed_packet.
MAX_STATEMENT = 1_000_000


def db_value(value: Any) -> Any:
    """A journaled value as the driver should send it (JSON documents as text)."""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


@lru_cache(maxsize=4096)
def upsert_parts(table: str, columns: tuple[str, ...]) -> tuple[str, str]:
    """An upsert around its VALUES rows: ``INSERT ... VALUES `` and `` ON DUPLICATE ...``."""
    cols = ", ".join(quote(c) for c in columns)
    updates = ", ".join(f"{quote(c)} = VALUES({quote(c)})" for c in columns)
    return f"INSERT INTO {table} ({cols}) VALUES ", f" ON DUPLICATE KEY UPDATE {updates}"


def row_literal(conn: Any, values: Iterable[Any]) -> str:
    """``(1, 'a', NULL)``: a row's values as SQL literals, escaped as the driver does
    (``conn.escape``) but with integers and NULLs written directly: that per-value
    escaping dominated the Python side of collapsed apply."""
    parts = []
    escape = conn.escape
    for value in values:
        kind = type(value)
        if kind is int:
            parts.append(str(value))
        elif value is None:
            parts.append("NULL")
        elif kind is dict or kind is list:
            parts.append(escape(json.dumps(value)))
        else:
            parts.append(escape(value))
    return "(" + ", ".join(parts) + ")"


def multi_row(prefix: str, rows: list[str], suffix: str) -> Iterator[str]:
    """Statements of many rows each, none much over MAX_STATEMENT characters."""
    start, size = 0, len(prefix) + len(suffix)
    for end, row in enumerate(rows):
        if end > start and size + len(row) + 2 > MAX_STATEMENT:
            yield prefix + ", ".join(rows[start:end]) + suffix
            start, size = end, len(prefix) + len(suffix)
        size += len(row) + 2
    if start < len(rows):
        yield prefix + ", ".join(rows[start:]) + suffix


@lru_cache(maxsize=4096)
def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    cols = ", ".join(quote(c) for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    return f"INSERT INTO {table} ({cols}) VALUES ({marks})"


@lru_cache(maxsize=4096)
def update_sql(table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    sets = ", ".join(f"{quote(c)} = %s" for c in columns)
    where = " AND ".join(f"{quote(c)} <=> %s" for c in key)
    return f"UPDATE {table} SET {sets} WHERE {where}"


@lru_cache(maxsize=4096)
def delete_one_sql(table: str, key: tuple[str, ...]) -> str:
    where = " AND ".join(f"{quote(c)} <=> %s" for c in key)
    return f"DELETE FROM {table} WHERE {where}"


def delete_many(info: TableInfo, keys: list[tuple[Any, ...]]) -> tuple[str, list[Any] | None]:
    """One DELETE for many keys: ``WHERE pk IN (...)`` or ``WHERE (a, b) IN ((..), (..))``."""
    where, args = key_in(info, keys)
    return f"DELETE FROM {info.qualified} WHERE {where}", args


def key_in(info: TableInfo, keys: list[tuple[Any, ...]]) -> tuple[str, list[Any] | None]:
    """``pk IN (...)`` for many keys. Integer keys (the common case) are written into the
    statement as literals: escaping each through the driver costs more than the query."""
    cols = ", ".join(quote(c) for c in info.primary_key)
    if all(type(v) is int for key in keys for v in key):
        if len(info.primary_key) == 1:
            return f"{cols} IN ({', '.join([str(k[0]) for k in keys])})", None
        rows = ", ".join("(" + ", ".join(map(str, key)) + ")" for key in keys)
        return f"({cols}) IN ({rows})", None
    if len(info.primary_key) == 1:
        return f"{cols} IN ({', '.join(['%s'] * len(keys))})", [db_value(k[0]) for k in keys]
    tuple_marks = "(" + ", ".join(["%s"] * len(info.primary_key)) + ")"
    sql = f"({cols}) IN ({', '.join([tuple_marks] * len(keys))})"
    return sql, [db_value(v) for key in keys for v in key]


def select_keys(info: TableInfo, keys: list[tuple[Any, ...]]) -> tuple[str, list[Any] | None]:
    """The primary keys of the target rows among ``keys``: one ``WHERE pk IN (...)``."""
    where, args = key_in(info, keys)
    cols = ", ".join(quote(c) for c in info.primary_key)
    return f"SELECT {cols} FROM {info.qualified} WHERE {where}", args


def count_keys(
    info: TableInfo, key_sets: list[list[tuple[Any, ...]]]
) -> tuple[str, list[Any] | None]:
    """How many of each set of keys the target has, in one round trip and one row:
    ``SELECT (SELECT COUNT(*) ... WHERE pk IN (...)), (...)``. The server compares
    the keys with the columns' own collation."""
    return count_keys_of([(info, keys) for keys in key_sets])


def count_keys_of(
    key_sets: list[tuple[TableInfo, list[tuple[Any, ...]]]],
) -> tuple[str, list[Any] | None]:
    """``count_keys`` over sets of keys of several tables: still one row."""
    counts, args = _key_counts(key_sets)
    return "SELECT " + ", ".join(counts), args


def keys_counted_as(
    key_sets: list[tuple[TableInfo, list[tuple[Any, ...]], int]],
) -> tuple[str, list[Any] | None]:
    """A condition true when each set of keys counts as expected on the target."""
    counts, args = _key_counts([(info, keys) for info, keys, _ in key_sets])
    expected = [int(n) for _, _, n in key_sets]
    return " AND ".join(f"{c} = {n}" for c, n in zip(counts, expected, strict=True)), args


def _key_counts(
    key_sets: list[tuple[TableInfo, list[tuple[Any, ...]]]],
) -> tuple[list[str], list[Any] | None]:
    """Per set of keys, the subquery that counts those the target has; their arguments."""
    parts: list[str] = []
    args: list[Any] = []
    for info, keys in key_sets:
        where, key_args = key_in(info, keys)
        parts.append(f"(SELECT COUNT(*) FROM {info.qualified} WHERE {where})")
        args += key_args or []
    return parts, args or None


# Where a batch's existence check stands (WriteBatch.check): the writes after it are taken
# back to it when the check says so.
CHECK_SAVEPOINT = "hotsite_check"
# The error a failed guard raises (WriteBatch.guard): MariaDB's SIGNAL, with this text.
GUARD_ERROR = (1644, "hotsite_check")


class WriteBatch:
    """A cursor that only collects write statements (their values escaped as ``execute``
    would), then sends them as multi-statements of at most ``limit`` characters each:
    a group's writes (origin row, deletes, upserts, position) cost one round trip
    instead of one each, which is most of a small group's apply time on a busy target
    (each round trip waits for the server's thread to be scheduled). Needs a connection
    opened with ``CLIENT.MULTI_STATEMENTS``; the statements' results are only checked
    for errors (none of them is read)."""

    def __init__(self, cur: Any, limit: int = MAX_STATEMENT) -> None:
        self.cur = cur
        self.limit = limit
        self.statements: list[str] = []
        self._check_at: int | None = None  # the index of the one query whose row is read
        self.checked: tuple[Any, ...] | None = None  # that row, once sent

    def execute(self, statement: str, args: Any = None) -> None:
        self.statements.append(self.cur.mogrify(statement, args))

    def check(self, statement: str, args: Any = None) -> None:
        """A query whose one row ``send`` keeps in ``checked``, run where it stands among
        the writes, after a savepoint: ``undo`` takes back every write queued after it
        (when its row says they must be made another way)."""
        self.statements.append(f"SAVEPOINT {CHECK_SAVEPOINT}")
        self._check_at = len(self.statements)
        self.statements.append(self.cur.mogrify(statement, args))

    def guard(self, condition: str, args: Any = None) -> None:
        """Like ``check``, but the server judges: where ``condition`` is false it raises
        GUARD_ERROR there, and nothing after it runs (a multi-statement stops at its
        first error), the COMMIT at the end included. So the writes and the commit of a
        group travel in one round trip. MariaDB's anonymous block (``BEGIN NOT ATOMIC``),
        not MySQL's."""
        self.statements.append(f"SAVEPOINT {CHECK_SAVEPOINT}")
        self.statements.append(
            "BEGIN NOT ATOMIC IF NOT (" + self.cur.mogrify(condition, args) + ") THEN"
            f" SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{GUARD_ERROR[1]}'; END IF; END"
        )

    def undo(self) -> None:
        self.cur.execute(f"ROLLBACK TO SAVEPOINT {CHECK_SAVEPOINT}")

    def send(self) -> None:
        chunk: list[str] = []
        size = 0
        first = 0  # the index of the chunk's first statement
        for index, statement in enumerate(self.statements):
            if chunk and size + len(statement) > self.limit:
                self._run(chunk, first)
                chunk, size, first = [], 0, index
            chunk.append(statement)
            size += len(statement) + 2
        if chunk:
            self._run(chunk, first)
        self.statements = []

    def _run(self, chunk: list[str], first: int) -> None:
        self.cur.execute(";\n".join(chunk))
        index = first
        while True:  # each statement's result, an error raised where it failed
            if index == self._check_at:
                self.checked = self.cur.fetchone()
            index += 1
            if not self.cur.nextset():
                break
