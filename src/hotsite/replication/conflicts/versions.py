"""The apply side of row versions (rowversions.py): what each incoming transaction says
about the versions of its keys, and the target's shadow rows read and written.

A transaction's shadow row events are folded per key into one *span*: the version the
key had when the transaction first changed it, and the version it left. Apply needs no
more: the changes of one key within one transaction are the origin's own sequence, and
collapse as they always did; across transactions a key's chain holds when each span
starts where the one before ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hotsite.replication.apply import statements as sql
from hotsite.replication.rowversions import (
    LIFE_COLUMN,
    NUMBER_COLUMN,
    SITE_COLUMN,
    VERSION_COLUMNS,
    Version,
    VersionEntry,
    has_shadow,
    qualified_shadow,
    shadow_name,
)
from hotsite.replication.schema import SYSTEM_SCHEMAS, TableInfo, quote

Key = tuple[Any, ...]
TableName = tuple[str, str]
_CHUNK = 2000
_RESCAN_AFTER = 5.0  # seconds between scans of the target for an unknown shadow


@dataclass
class Span:
    base: Version | None  # the key's version when the transaction first changed it
    new: Version  # the version it left
    deleted: bool  # the key ends deleted (a tombstone)
    life: int  # deletions and re-creations of the key so far (rowversions.LIFE_COLUMN)
    base_life: int = 0  # the life of the version it was made on


@dataclass(frozen=True)
class Held:
    """A key's version at the target, as its shadow row says."""

    version: Version
    life: int


def _version(value: list[Any] | None) -> Version | None:
    return (str(value[0]), int(value[1])) if value else None


def newest(a: Held | None, b: Held) -> Held:
    """The greater of two versions, the same at every site (a merge takes it)."""
    if a is None:
        return b
    return b if (b.life, b.version[1], b.version[0]) > (a.life, a.version[1], a.version[0]) else a


class ShadowBook:
    """The target's shadows: which table each is for, which exist, reads and writes."""

    def __init__(self, table: Callable[[str, str], TableInfo]) -> None:
        self.table = table
        self._tables: dict[str, TableName] = {}  # shadow -> table
        self._present: dict[TableName, bool] = {}
        self._scanned = 0.0

    def forget(self) -> None:
        """After a DDL: tables and shadows may have come or gone."""
        self._tables.clear()
        self._present.clear()
        self._scanned = 0.0

    # --- what the transaction says -------------------------------------------------

    def spans(self, cur: Any, entries: list[VersionEntry]) -> dict[tuple[str, str, Key], Span]:
        """The transaction's spans by (schema, table, key)."""
        spans: dict[tuple[str, str, Key], Span] = {}
        for shadow, key_row, base, new, deleted, life in entries:
            name = self._table_of(cur, shadow)
            if name is None:
                continue  # a table this site does not have (yet): apply says so
            info = self.table(*name)
            if any(c not in key_row for c in info.primary_key):
                continue  # the shadow is of another key than the table's now
            key = tuple(key_row[c] for c in info.primary_key)
            span = spans.get((*name, key))
            if span is None:
                made = _version(new) or ("", 0)
                was = int(base[2]) if base else 0
                spans[(*name, key)] = Span(_version(base), made, bool(deleted), int(life), was)
            else:
                span.new, span.deleted = _version(new) or span.new, bool(deleted)
                span.life = int(life)
        return spans

    def _table_of(self, cur: Any, shadow: str) -> TableName | None:
        found = self._tables.get(shadow)
        if found is None and time.monotonic() - self._scanned > _RESCAN_AFTER:
            self._scanned = time.monotonic()
            cur.execute(
                "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES"
                " WHERE TABLE_TYPE = 'BASE TABLE'"
            )
            for schema, table in cur.fetchall():
                if schema not in SYSTEM_SCHEMAS:
                    self._tables[shadow_name(schema, table)] = (schema, table)
            found = self._tables.get(shadow)
        return found

    def note(self, schema: str, table: str) -> None:
        self._tables.setdefault(shadow_name(schema, table), (schema, table))

    # --- the target's shadow rows ---------------------------------------------------

    def present(self, cur: Any, info: TableInfo) -> bool:
        name = (info.schema, info.name)
        if name not in self._present:
            self._present[name] = has_shadow(cur, *name)
        return self._present[name]

    def lock(self, cur: Any, info: TableInfo, keys: list[Key]) -> dict[Key, Held]:
        """The target's version of each key (absent: none), locked for this transaction."""
        shadow = self._qualified(info)
        names = ", ".join(
            [*(quote(c) for c in info.primary_key), SITE_COLUMN, NUMBER_COLUMN, LIFE_COLUMN]
        )
        found: dict[Key, Held] = {}
        width = len(info.primary_key)
        for start in range(0, len(keys), _CHUNK):
            where, args = sql.key_in(info, keys[start : start + _CHUNK])
            cur.execute(f"SELECT {names} FROM {shadow} WHERE {where} FOR UPDATE", args)
            for values in cur.fetchall():
                version = (str(values[width]), int(values[width + 1]))
                found[normalized(tuple(values[:width]))] = Held(version, int(values[width + 2]))
        return found

    def write(self, cur: Any, info: TableInfo, versions: dict[Key, tuple[Held, bool]]) -> None:
        """Set the target's version of each key (and its tombstone flag)."""
        if not versions:
            return
        columns = (*info.primary_key, *VERSION_COLUMNS)
        prefix, suffix = sql.upsert_parts(self._qualified(info), columns)
        rows = [
            sql.row_literal(
                cur.connection,
                [*key, held.version[0], held.version[1], int(deleted), held.life],
            )
            for key, (held, deleted) in versions.items()
        ]
        for statement in sql.multi_row(prefix, rows, suffix):
            cur.execute(statement)

    def _qualified(self, info: TableInfo) -> str:
        return qualified_shadow(info.schema, info.name)


def normalized(key: Key) -> Key:
    """A key as the server compares it: trailing spaces and case do not count (the
    default collations), so rows read back match the keys they were asked for."""
    return tuple(v.rstrip(" ").casefold() if isinstance(v, str) else v for v in key)
