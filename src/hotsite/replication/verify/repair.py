"""Repair: make differing rows on the target equal to the authoritative source, safely
while replication runs.

Each batch of keys is one target transaction that

1. re-reads the source rows in a snapshot at position P_s (never the image seen while
   comparing: it may be stale by now), and waits until the applier has reached P_s;
2. locks the target rows and then the applier's position row (``hotsite_applied``,
   ``FOR UPDATE``) without waiting (``innodb_lock_wait_timeout = 0``): the applier
   cannot commit while we hold it, and we never wait on the applier, so no deadlock
   can make the applier the victim;
3. writes only keys that no source transaction in (P_s, P_t] touched (the source row is
   then the same at P_t, the target's position); touched keys go to the next round;
4. records the repair in ``hotsite.hotsite_repair`` in the same transaction — the
   marker by which capture recognises it and does not send it back the other way.

Rows are deleted and re-inserted (not upserted): an upsert would update whichever row
holds a conflicting unique value, and deleting all keys of the batch first lets rows
that swapped a unique value be repaired together.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hotsite.db import prepare_writer
from hotsite.errors import HotsiteError
from hotsite.replication import rowversions
from hotsite.replication.gtid import GtidState
from hotsite.replication.schema import (
    HOTSITE_SCHEMA,
    REPAIR_TABLE,
    TableInfo,
    ensure_repair_table,
    quote,
)
from hotsite.replication.transactions import Key
from hotsite.replication.verify import sql
from hotsite.replication.verify.inflight import JournalReader, normalize, touched_keys
from hotsite.replication.verify.positions import LockBusy, Site, SourceSite, TargetSite

BATCH = 500


class RepairIncomplete(HotsiteError):
    """Rows kept changing, or stayed locked, for every round of a repair."""


class Repairer:
    def __init__(
        self, source: SourceSite, target: TargetSite, journal: JournalReader, rounds: int = 20
    ) -> None:
        self.source = source
        self.target = target
        self.journal = journal
        self.rounds = rounds
        target.query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")  # no gap locks
        _prepare_writer(target)

    def repair(self, shape: TableInfo, keys: list[Key]) -> int:
        """Make ``keys`` on the target what they are on the source; returns rows fixed."""
        return _in_batches(self._repair_batch, shape, keys)

    def _repair_batch(self, shape: TableInfo, keys: list[Key]) -> int:
        pending = list(keys)
        done = 0
        for attempt in range(self.rounds):
            if attempt:
                time.sleep(min(0.5, 0.01 * 2**attempt))
            try:
                fixed, pending = self._round(shape, pending)
            except LockBusy:
                self.target.query("ROLLBACK")
                continue
            done += fixed
            if not pending:
                return done
        raise RepairIncomplete(
            f"{shape.label}: {len(pending)} rows could not be repaired: they kept changing or"
            f" stayed locked for {self.rounds} attempts",
            "run 'hotsite verify --repair' again when the write load is lower",
        )

    def _round(self, shape: TableInfo, keys: list[Key]) -> tuple[int, list[Key]]:
        source, target = self.source, self.target
        where, args = sql.keys_in(shape.primary_key, keys)
        positions = [[c.name for c in shape.columns].index(k) for k in shape.primary_key]
        position = source.begin()
        images = source.query(sql.rows_sql(shape, where), args)
        versions = rowversions.read_rows(source.query, shape.schema, shape.name, where, args)
        source.end()
        target.wait_for(position)
        target.query("START TRANSACTION")
        target.query(f"SELECT 1 FROM {shape.qualified} WHERE {where} FOR UPDATE", args)
        applied = target.applied(lock=True)
        window = self.journal.window(position, applied)
        touched = touched_keys(window, shape)
        if touched is None:
            target.query("ROLLBACK")
            return 0, keys
        now = [k for k in keys if normalize(k) not in touched]
        later = [k for k in keys if normalize(k) in touched]
        rows = [row for row in images if normalize(tuple(row[i] for i in positions)) not in touched]
        if versions is not None:
            width = len(shape.primary_key)  # a shadow row starts with the key
            versions = [v for v in versions if normalize(tuple(v[:width])) not in touched]
        if now:
            where, args = sql.keys_in(shape.primary_key, now)
            _replace(
                target, shape, where, args, rows, self.source.name, str(applied.gtid), versions
            )
        target.query("COMMIT")
        return len(now), later


class ReverseRepairer:
    """``--from`` the link's target: write the target's rows into the link's source.

    Per batch, in one source transaction: lock the source rows (REPEATABLE READ, so
    missing keys get gap locks and cannot be inserted meanwhile; without waiting), read
    the source's binlog position P — every change to those rows is in it, and none can
    follow while we hold the locks — wait for the target to apply P, read its rows in a
    snapshot, write them, add the marker, commit. The application's writes to those
    rows wait for the replication lag at most. The repair itself is replicated to the
    target like any source transaction, and changes nothing there.
    """

    def __init__(self, source: Site, target: TargetSite, rounds: int = 20) -> None:
        self.source = source
        self.target = target
        self.rounds = rounds
        _prepare_writer(source)

    def repair(self, shape: TableInfo, keys: list[Key]) -> int:
        return _in_batches(self._repair_batch, shape, keys)

    def _repair_batch(self, shape: TableInfo, keys: list[Key]) -> int:
        where, args = sql.keys_in(shape.primary_key, keys)
        for attempt in range(self.rounds):
            if attempt:
                time.sleep(min(0.5, 0.01 * 2**attempt))
            try:
                self.source.query("START TRANSACTION")
                self.source.query(f"SELECT 1 FROM {shape.qualified} WHERE {where} FOR UPDATE", args)
                position = GtidState.parse(
                    str(self.source.query("SELECT @@GLOBAL.gtid_binlog_pos")[0][0] or "")
                )
                self.target.begin(position)
                images = self.target.query(sql.rows_sql(shape, where), args)
                versions = rowversions.read_rows(
                    self.target.query, shape.schema, shape.name, where, args
                )
                self.target.end()
                _replace(
                    self.source,
                    shape,
                    where,
                    args,
                    images,
                    self.target.name,
                    str(position),
                    versions,
                )
                self.source.query("COMMIT")
                return len(keys)
            except LockBusy:
                self.source.query("ROLLBACK")
            except BaseException:
                self.source.query("ROLLBACK")
                self.target.end()
                raise
        raise RepairIncomplete(
            f"{shape.label}: {len(keys)} rows could not be repaired on site"
            f" {self.source.name!r}: they stayed locked for {self.rounds} attempts",
            "run 'hotsite verify --repair' again when the write load is lower",
        )


def _prepare_writer(site: Site) -> None:
    """Session settings of the side a repair writes to: never wait on a lock (the
    applier must not be the deadlock victim), write rows exactly as read (as every
    writer of replicated rows: ``db.prepare_writer``)."""
    site.query("SET SESSION innodb_lock_wait_timeout = 0")
    # the row-version triggers leave a repair's writes to it: it copies the versions
    site.query(f"SET {rowversions.APPLY_VARIABLE} = 1")
    prepare_writer(site.conn)
    ensure_repair_table(site.conn)


def _in_batches(
    repair_batch: Callable[[TableInfo, list[Key]], int], shape: TableInfo, keys: list[Key]
) -> int:
    """Repair ``keys`` BATCH at a time; returns the rows fixed."""
    return sum(
        repair_batch(shape, keys[start : start + BATCH]) for start in range(0, len(keys), BATCH)
    )


def _replace(
    site: Site,
    shape: TableInfo,
    where: str,
    args: list[Any],
    rows: list[Any],
    origin: str,
    position: str,
    versions: list[Any] | None = None,
) -> None:
    """Delete the keys, insert the authoritative rows and their row versions, add the
    marker: one transaction's worth of writes (the caller commits)."""
    deleted = site.execute(f"DELETE FROM {shape.qualified} WHERE {where}", args)
    if rows:
        columns = ", ".join(quote(c.name) for c in shape.columns)
        marks = ", ".join(["%s"] * len(shape.columns))
        try:
            site.execute(
                f"INSERT INTO {shape.qualified} ({columns}) VALUES ({marks})",
                [list(r) for r in rows],
                many=True,
            )
        except HotsiteError as exc:
            site.query("ROLLBACK")
            raise HotsiteError(
                f"{shape.label}: repair failed: {exc.message}",
                "a row outside the differences may hold one of its unique values",
            ) from None
    rowversions.replace_rows(
        site.query, site.execute, shape.schema, shape.name, where, args, versions or []
    )
    site.execute(
        f"INSERT INTO {HOTSITE_SCHEMA}.{REPAIR_TABLE} (origin, table_name, origin_position,"
        " rows_written, rows_deleted, repaired_at) VALUES (%s, %s, %s, %s, %s, %s)",
        (origin, shape.label, position, len(rows), deleted, time.time()),
    )
