"""Undoing an errant tail on the old primary: the inverse of every row change, newest
first, in one transaction, or nothing at all.

Each inverse change is checked against the row as the tail left it, by the server
(``<=>`` on every column): an insert is undone by deleting exactly the row it wrote, an
update by writing its before-image over exactly its after-image, a delete by inserting
its before-image where no row holds that key. A row that is not as the tail left it
(changed since), a DDL statement, a table without a primary key or an image without
every column makes undoing impossible: ``CannotUndo`` says which, the transaction is
rolled back, and the caller re-snapshots the site instead.

The undo carries the marker of hotsite's repairs (``hotsite_repair``), in the same
transaction: capture knows it is hotsite's own and no link ships it anywhere (origins.py).
"""

from __future__ import annotations

import time
from typing import Any

import pymysql

from hotsite.db import prepare_writer
from hotsite.errors import HotsiteError
from hotsite.replication.apply.statements import db_value
from hotsite.replication.conflicts.log import ensure_conflicts_table
from hotsite.replication.errant.export import Keys, log_entries
from hotsite.replication.errant.tail import ErrantTail
from hotsite.replication.schema import (
    HOTSITE_SCHEMA,
    REPAIR_TABLE,
    SchemaError,
    TableInfo,
    describe,
    ensure_repair_table,
    quote,
)
from hotsite.replication.transactions import ChangeKind, RowChange

UNDO_ORIGIN = "(failback)"  # the repair marker's origin: shipped nowhere, like a repair


class CannotUndo(HotsiteError):
    """The tail cannot be undone row by row: the site must be re-snapshotted."""


def table_infos(conn: Any, tail: ErrantTail) -> dict[tuple[str, str], TableInfo]:
    """The tables the tail changed, as they are now; CannotUndo for one without a key."""
    infos: dict[tuple[str, str], TableInfo] = {}
    for tx in tail.transactions:
        for change in tx.changes:
            name = (change.schema, change.table)
            if name not in infos:
                try:
                    infos[name] = describe(conn, *name)
                except SchemaError as exc:
                    raise CannotUndo(exc.message) from None
    return infos


def keys_of(infos: dict[tuple[str, str], TableInfo]) -> Keys:
    return {name: info.primary_key for name, info in infos.items()}


def undo_tail(conn: Any, tail: ErrantTail, project: str, link_key: str) -> int:
    """Undo the tail in one transaction with its conflict log entries and the marker;
    returns the row changes undone. ``conn``: autocommit off, CLIENT.FOUND_ROWS on (an
    update that rewrites identical values still counts as the one row it matched)."""
    if tail.problem:
        raise CannotUndo(f"the tail could not be read whole: {tail.problem}")
    for tx in tail.transactions:
        if tx.ddl is not None:
            raise CannotUndo(f"transaction {tx.gtid} of the tail is DDL")
    infos = table_infos(conn, tail)
    prepare_writer(conn)
    ensure_repair_table(conn)
    with conn.cursor() as cur:
        cur.execute("SET SESSION innodb_lock_wait_timeout = 5")
        ensure_conflicts_table(cur)  # DDL commits: before the transaction, never in it
        cur.execute("START TRANSACTION")
        try:
            undone = 0
            for tx in reversed(tail.transactions):
                for change in reversed(tx.changes):
                    _undo(cur, infos[(change.schema, change.table)], change, tx.gtid)
                    undone += 1
            log_entries(cur, tail, project, link_key, "undone", keys_of(infos))
            cur.execute(
                f"INSERT INTO {HOTSITE_SCHEMA}.{REPAIR_TABLE} (origin, table_name,"
                " origin_position, rows_written, rows_deleted, repaired_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (UNDO_ORIGIN, "(errant tail)", str(tail.end), undone, 0, time.time()),
            )
        except BaseException:
            conn.rollback()
            raise
    conn.commit()
    return undone


def _undo(cur: Any, info: TableInfo, change: RowChange, gtid: str) -> None:
    columns = [c.name for c in info.columns if not c.generated]
    image = change.after if change.kind != ChangeKind.DELETE else change.before
    if image is None or any(c not in image for c in columns):
        raise CannotUndo(f"{info.label}: transaction {gtid} has no full row image")
    if change.kind == ChangeKind.INSERT:
        where, args = _exactly(columns, image)
        cur.execute(f"DELETE FROM {info.qualified} WHERE {where}", args)
        matched = cur.rowcount
    elif change.kind == ChangeKind.UPDATE:
        before = change.before or {}
        if any(c not in before for c in columns):
            raise CannotUndo(f"{info.label}: transaction {gtid} has no full before-image")
        where, args = _exactly(columns, image)
        sets = ", ".join(f"{quote(c)} = %s" for c in columns)
        cur.execute(
            f"UPDATE {info.qualified} SET {sets} WHERE {where}",
            [db_value(before[c]) for c in columns] + args,
        )
        matched = cur.rowcount
    else:
        marks = ", ".join(["%s"] * len(columns))
        try:
            cur.execute(
                f"INSERT INTO {info.qualified} ({', '.join(quote(c) for c in columns)})"
                f" VALUES ({marks})",
                [db_value(image[c]) for c in columns],
            )
            matched = 1
        except pymysql.err.IntegrityError:
            matched = 0
    if matched != 1:
        key = ", ".join(f"{c}={image.get(c)!r}" for c in info.primary_key)
        raise CannotUndo(
            f"{info.label} row ({key}) is no longer as transaction {gtid} left it (changed since)"
        )


def _exactly(columns: list[str], image: dict[str, Any]) -> tuple[str, list[Any]]:
    """Every column equal to the image, NULLs included (``<=>``)."""
    where = " AND ".join(f"{quote(c)} <=> %s" for c in columns)
    return where, [db_value(image[c]) for c in columns]
