"""Row changes onto the target, and the changes whose target row was not as expected.

A *mismatch* is a change whose target row is not as the source's before-image implies:
an INSERT of a key the target already has, an UPDATE or DELETE of a key it does not
have. The target then had diverged before this change (someone wrote to it, or it was
restored); apply counts and reports each one, and makes the row the change names equal
to the source's after-image. It never writes any other row: a change that would collide
with another target row on a unique key stops the link (``UniqueKeyCollision``).

Two ways to apply a group of changes:

- **collapsed** (tables whose only unique key is the primary key): each key's changes
  collapse to its final state, written with one multi-row upsert and one delete per
  table. Mismatches are found with one ``SELECT ... WHERE pk IN (...)`` per table and
  group, compared with what each key's first change in the group implies (first change
  an INSERT: absent; an UPDATE or DELETE: present): counted by the server first, the
  keys themselves read only when a count is off. An upsert can only overwrite the row
  of its own key here, as there is no other unique key to collide on.
- **in order** (tables with other unique keys, where collapsing could reorder two rows
  swapping a unique value): change by change, plain INSERTs (never upserts, which would
  rewrite whichever row a unique value collides with), UPDATEs and DELETEs by primary key
  whose affected-row counts (``CLIENT.FOUND_ROWS``: rows matched, not rows changed) tell
  a missing row.

hotsite's own replicated rows (the source's heartbeat) are not counted: no snapshot
copies them, so the first heartbeat at a new target always finds its row missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pymysql

from hotsite.db import error_code, error_message
from hotsite.errors import ApplyError
from hotsite.replication.apply import statements as sql
from hotsite.replication.schema import HOTSITE_SCHEMA, TableInfo
from hotsite.replication.transactions import DELETE, INSERT, Key, Row, RowChange

DUPLICATE_KEY = 1062
_SELECT_CHUNK = 5000
_DELETE_CHUNK = 1000
_SAVEPOINT = "hotsite_run"
_KEY_IN_MESSAGE = re.compile(r"for key '([^']*)'\s*$")

INSERT_OF_EXISTING = "insert of a key the target already has"
UPDATE_OF_MISSING = "update of a row the target does not have"
DELETE_OF_MISSING = "delete of a row the target does not have"
MOVE_ONTO_EXISTING = "key change onto a key the target already has"
_EXPECT_PRESENT = (UPDATE_OF_MISSING, DELETE_OF_MISSING)  # the others expect no row


@dataclass(frozen=True)
class Mismatch:
    """One change that found its target row not as the source had it (no row values)."""

    table: str  # schema.table
    key: str  # the primary key, e.g. "id=5"
    what: str


class UniqueKeyCollision(ApplyError):
    """A change would overwrite another target row holding the same unique value."""


def describe_key(columns: tuple[str, ...], values: Key) -> str:
    """``id=5`` or ``(shop, num)=(1, 7)``; long values cut, so a key never shows a whole value."""

    def short(value: Any) -> str:
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."

    if len(columns) == 1:
        return f"{columns[0]}={short(values[0])}"
    return f"({', '.join(columns)})=({', '.join(short(v) for v in values)})"


def duplicate_key_name(exc: BaseException) -> str | None:
    """The unique key a duplicate-key error names (never the duplicated value), else None."""
    if not isinstance(exc, pymysql.MySQLError) or error_code(exc) != DUPLICATE_KEY:
        return None
    found = _KEY_IN_MESSAGE.search(error_message(exc))
    return found.group(1).rsplit(".", 1)[-1] if found else "?"


def _same_insert(a: RowChange, b: RowChange) -> bool:
    return (
        a.table == b.table and a.schema == b.schema and tuple(a.after or {}) == tuple(b.after or {})
    )


def _normalized(key: Key) -> Key:
    # The server compares keys by collation: 'Abc ' finds 'abc' under the default
    # case-insensitive, space-padded collations. Only the count depends on this.
    return tuple(v.rstrip(" ").casefold() if isinstance(v, str) else v for v in key)


def _counted_as_expected(
    chunk: tuple[TableInfo, dict[Key, str], list[Key], bool], count: Any
) -> bool:
    """Whether the target holds all of a chunk's keys expected present, or none of those
    expected absent (RowWriter._chunks)."""
    return int(count) == _expected_count(chunk)


def _expected_count(chunk: tuple[TableInfo, dict[Key, str], list[Key], bool]) -> int:
    """How many of a chunk's keys the target should hold: all of them, or none."""
    _, _, keys, wanted = chunk
    return len(keys) if wanted else 0


class RowWriter:
    def __init__(self, site: str, table: Callable[[str, str], TableInfo]) -> None:
        self.site = site
        self.table = table

    # --- collapsed (primary key only) ----------------------------------------------

    def apply_collapsed(
        self, cur: Any, changes: list[RowChange], writes: Any = None
    ) -> list[Mismatch]:
        """``writes``: where the deletes and upserts go, when not ``cur``: a cursor that
        collects them, sent with the group's other writes in one round trip (mysql.py).
        The existence counts of every table are read first, in one statement."""
        final, first = self._collapse(changes)
        mismatches = self._check_existence(cur, self._expected(final, first))
        self._queue_writes(cur, cur if writes is None else writes, final)
        return mismatches

    def queue_collapsed(
        self, cur: Any, changes: list[RowChange], writes: sql.WriteBatch, guarded: bool = False
    ) -> Callable[[], bool]:
        """``apply_collapsed`` in the same round trip as the writes: the existence counts
        go into ``writes`` ahead of the deletes and upserts (after a savepoint: see
        ``WriteBatch.check``). The function returned says, once ``writes`` was sent,
        whether every count was as expected; when one was not, the caller takes the
        writes back to the savepoint and applies the group with ``apply_collapsed``,
        which finds the keys (the common case saves a round trip per group).
        ``guarded``: the server compares the counts itself (``WriteBatch.guard``), and a
        count that is off stops the batch with GUARD_ERROR instead."""
        final, first = self._collapse(changes)
        chunks = self._chunks(self._expected(final, first))
        if chunks and guarded:
            expected = [(chunk[0], chunk[2], _expected_count(chunk)) for chunk in chunks]
            writes.guard(*sql.keys_counted_as(expected))
        elif chunks:
            writes.check(*sql.count_keys_of([(info, keys) for info, _, keys, _ in chunks]))
        self._queue_writes(cur, writes, final)
        if guarded:
            return lambda: True  # a batch sent whole: every count was as expected

        def as_expected() -> bool:
            counts = writes.checked if chunks else ()
            return all(
                _counted_as_expected(chunk, count)
                for chunk, count in zip(chunks, counts or (), strict=True)
            )

        return as_expected

    def _collapse(
        self, changes: list[RowChange]
    ) -> tuple[dict[tuple[str, str], dict[Key, Row | None]], dict[tuple[str, str], dict[Key, str]]]:
        """Each key's final row (None: deleted), and per key what its first change in
        the group implies the target holds before it."""
        final: dict[tuple[str, str], dict[Key, Row | None]] = {}
        # per key, its first change in the group: what the target must hold before it
        first: dict[tuple[str, str], dict[Key, str]] = {}
        for change in changes:
            name = (change.schema, change.table)
            pk = self.table(*name).primary_key
            rows = final.setdefault(name, {})
            expect = first.setdefault(name, {})
            if change.kind == INSERT:
                after = change.after or {}
                key = tuple(after[c] for c in pk)
                expect.setdefault(key, INSERT_OF_EXISTING)
                rows[key] = after
            elif change.kind == DELETE:
                before = change.before or {}
                key = tuple(before[c] for c in pk)
                expect.setdefault(key, DELETE_OF_MISSING)
                rows[key] = None
            else:
                before, after = change.before or {}, change.after or {}
                old_key, new_key = tuple(before[c] for c in pk), tuple(after[c] for c in pk)
                expect.setdefault(old_key, UPDATE_OF_MISSING)
                if old_key != new_key:
                    expect.setdefault(new_key, MOVE_ONTO_EXISTING)
                    rows[old_key] = None
                rows[new_key] = after
        return final, first

    def _expected(
        self,
        final: dict[tuple[str, str], dict[Key, Row | None]],
        first: dict[tuple[str, str], dict[Key, str]],
    ) -> list[tuple[TableInfo, dict[Key, str]]]:
        return [(self.table(*name), first[name]) for name in final]

    def _queue_writes(
        self, cur: Any, out: Any, final: dict[tuple[str, str], dict[Key, Row | None]]
    ) -> None:
        for name, rows in final.items():
            info = self.table(*name)
            deleted = [key for key, row in rows.items() if row is None]
            for start in range(0, len(deleted), _DELETE_CHUNK):
                statement, args = sql.delete_many(info, deleted[start : start + _DELETE_CHUNK])
                out.execute(statement, args)
            by_columns: dict[tuple[str, ...], list[str]] = {}
            literal = sql.row_literal
            for row in rows.values():
                if row is not None:
                    by_columns.setdefault(tuple(row), []).append(
                        literal(cur.connection, row.values())
                    )
            for columns, values in by_columns.items():
                prefix, suffix = sql.upsert_parts(info.qualified, columns)
                for statement in sql.multi_row(prefix, values, suffix):
                    out.execute(statement)

    def _check_existence(
        self, cur: Any, tables: list[tuple[TableInfo, dict[Key, str]]]
    ) -> list[Mismatch]:
        """Mismatches among the group's first changes per key. One statement counts, for
        every table, the keys expected present and those expected absent; only when a
        count is off are the keys themselves fetched (the common case parses a few
        numbers, not rows, in one round trip whatever the number of tables)."""
        chunks = self._chunks(tables)
        if not chunks:
            return []
        statement, args = sql.count_keys_of([(info, keys) for info, _, keys, _ in chunks])
        cur.execute(statement, args)
        counts = cur.fetchone()
        mismatches: list[Mismatch] = []
        for chunk, count in zip(chunks, counts, strict=True):
            if not _counted_as_expected(chunk, count):
                info, expect, keys, wanted = chunk
                mismatches += self._find_mismatches(cur, info, keys, wanted, expect)
        return mismatches

    @staticmethod
    def _chunks(
        tables: list[tuple[TableInfo, dict[Key, str]]],
    ) -> list[tuple[TableInfo, dict[Key, str], list[Key], bool]]:
        """The key sets to count: per table, those expected present and those expected
        absent, in chunks of at most _SELECT_CHUNK keys."""
        chunks: list[tuple[TableInfo, dict[Key, str], list[Key], bool]] = []
        for info, expect in tables:
            if info.schema == HOTSITE_SCHEMA:
                continue  # see the module: hotsite's own rows are not counted
            present = [k for k, what in expect.items() if what in _EXPECT_PRESENT]
            absent = [k for k, what in expect.items() if what not in _EXPECT_PRESENT]
            chunks += [
                (info, expect, keys[start : start + _SELECT_CHUNK], wanted)
                for keys, wanted in ((present, True), (absent, False))
                for start in range(0, len(keys), _SELECT_CHUNK)
            ]
        return chunks

    def _find_mismatches(
        self, cur: Any, info: TableInfo, keys: list[Key], wanted: bool, expect: dict[Key, str]
    ) -> list[Mismatch]:
        statement, args = sql.select_keys(info, keys)
        cur.execute(statement, args)
        found = {_normalized(row) for row in cur.fetchall()}
        name = f"{info.schema}.{info.name}"
        return [
            Mismatch(name, describe_key(info.primary_key, key), expect[key])
            for key in keys
            if (_normalized(key) in found) != wanted
        ]

    # --- in source order (other unique keys) -----------------------------------------

    def apply_in_order(self, cur: Any, changes: list[RowChange]) -> list[Mismatch]:
        mismatches: list[Mismatch | None] = []
        run: list[RowChange] = []  # consecutive INSERTs into one table with the same columns
        for change in changes:
            info = self.table(change.schema, change.table)
            if change.kind == INSERT:
                if run and not _same_insert(run[-1], change):
                    mismatches += self._insert_run(cur, run)
                    run = []
                run.append(change)
                continue
            if run:
                mismatches += self._insert_run(cur, run)
                run = []
            if change.kind == DELETE:
                mismatches.append(self._delete_one(cur, info, change))
            else:
                mismatches.append(self._update_one(cur, info, change))
        if run:
            mismatches += self._insert_run(cur, run)
        return [m for m in mismatches if m is not None]

    def _insert_run(self, cur: Any, run: list[RowChange]) -> list[Mismatch | None]:
        info = self.table(run[0].schema, run[0].table)
        if len(run) == 1:
            return [self._insert_one(cur, info, run[0])]
        # One multi-row INSERT; pymysql may split it into several statements, so a
        # savepoint lets a duplicate key anywhere in it be retried row by row.
        cur.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            cur.executemany(
                sql.insert_sql(info.qualified, tuple(run[0].after or {})),
                [[sql.db_value(v) for v in (c.after or {}).values()] for c in run],
            )
            return []
        except pymysql.MySQLError as exc:
            if duplicate_key_name(exc) is None:
                raise
        cur.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        return [self._insert_one(cur, info, change) for change in run]

    def _insert_one(
        self, cur: Any, info: TableInfo, change: RowChange, counted: bool = False
    ) -> Mismatch | None:
        after = change.after or {}
        try:
            cur.execute(
                sql.insert_sql(info.qualified, tuple(after)),
                [sql.db_value(v) for v in after.values()],
            )
            return None
        except pymysql.MySQLError as exc:
            key_name = duplicate_key_name(exc)
            if key_name is None:
                raise
            if key_name != "PRIMARY":
                raise self._collision(info, after, key_name) from None
        # The target already has a row with this key: the row the change names.
        key = tuple(after[c] for c in info.primary_key)
        self._execute(
            cur,
            info,
            after,
            sql.update_sql(info.qualified, tuple(after), info.primary_key),
            [*(sql.db_value(v) for v in after.values()), *(sql.db_value(v) for v in key)],
        )
        return None if counted else self._mismatch(info, key, INSERT_OF_EXISTING)

    def _update_one(self, cur: Any, info: TableInfo, change: RowChange) -> Mismatch | None:
        before, after = change.before or {}, change.after or {}
        pk = info.primary_key
        old_key, new_key = tuple(before[c] for c in pk), tuple(after[c] for c in pk)
        statement = sql.update_sql(info.qualified, tuple(after), pk)
        args = [*(sql.db_value(v) for v in after.values()), *(sql.db_value(v) for v in old_key)]
        mismatch = None
        try:
            matched = cur.execute(statement, args)
        except pymysql.MySQLError as exc:
            key_name = duplicate_key_name(exc)
            if key_name is None:
                raise
            if key_name != "PRIMARY":
                raise self._collision(info, after, key_name) from None
            # The key moves onto a key the target has and the source had not: that
            # target row is the one the change names by its new key.
            cur.execute(sql.delete_one_sql(info.qualified, pk), [sql.db_value(v) for v in new_key])
            mismatch = self._mismatch(info, new_key, MOVE_ONTO_EXISTING)
            matched = self._execute(cur, info, after, statement, args)
        if matched:
            return mismatch
        self._insert_one(cur, info, change, counted=True)
        return mismatch or self._mismatch(info, old_key, UPDATE_OF_MISSING)

    def _delete_one(self, cur: Any, info: TableInfo, change: RowChange) -> Mismatch | None:
        before = change.before or {}
        key = tuple(before[c] for c in info.primary_key)
        deleted = cur.execute(
            sql.delete_one_sql(info.qualified, info.primary_key), [sql.db_value(v) for v in key]
        )
        return None if deleted else self._mismatch(info, key, DELETE_OF_MISSING)

    def _execute(
        self, cur: Any, info: TableInfo, after: dict[str, Any], statement: str, args: list[Any]
    ) -> int:
        """Run a write of the row ``after``; a duplicate key on any key is a collision."""
        try:
            return int(cur.execute(statement, args))
        except pymysql.MySQLError as exc:
            key_name = duplicate_key_name(exc)
            if key_name is None:
                raise
            raise self._collision(info, after, key_name) from None

    @staticmethod
    def _mismatch(info: TableInfo, key: Key, what: str) -> Mismatch | None:
        if info.schema == HOTSITE_SCHEMA:
            return None  # hotsite's own rows (heartbeats): no snapshot copies them
        return Mismatch(f"{info.schema}.{info.name}", describe_key(info.primary_key, key), what)

    def _collision(self, info: TableInfo, after: dict[str, Any], key_name: str) -> ApplyError:
        key = describe_key(info.primary_key, tuple(after[c] for c in info.primary_key))
        return UniqueKeyCollision(
            f"site {self.site!r}: {info.schema}.{info.name}: the change to row {key} collides"
            f" with another target row on unique key {key_name!r}; nothing was overwritten",
            f"the target has diverged from the source: fix or delete that other row on"
            f" {self.site!r} and run 'hotsite replicate' again, or run 'hotsite snapshot'",
        )
