"""Reads at known replication positions: the source in a consistent snapshot together
with the binlog position of that snapshot, the target in a snapshot together with the
source position its applier had reached (``hotsite_applied``, written in the same
transaction as the rows, so the snapshot sees rows and position together).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pymysql

from hotsite.db import Connection, connect, error_code, explain
from hotsite.dburl import DatabaseURL
from hotsite.errors import DatabaseError, NotCaughtUpError
from hotsite.replication.gtid import GtidState
from hotsite.replication.schema import APPLIED_TABLE, HOTSITE_SCHEMA

_LOCK_BUSY = {1205, 1213}  # lock wait timeout (NOWAIT), deadlock


class LockBusy(Exception):
    """A row or the position row is locked by the applier: roll back and try again."""


@dataclass(frozen=True)
class Applied:
    """The target's applied position: the source GTID state and the journal entry it ends at."""

    gtid: GtidState
    journal_seq: int = 0
    last_gtid: str = ""


class Site:
    """One connection to one site's database; driver errors become one-line errors."""

    def __init__(self, url: DatabaseURL, name: str) -> None:
        self.url = url
        self.name = name
        self.conn: Connection = connect(url, name, timeout=10)
        self.in_snapshot = False
        self.query("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")

    def query(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        except pymysql.MySQLError as exc:
            if error_code(exc) in _LOCK_BUSY:
                raise LockBusy(str(exc)) from None
            raise explain(exc, self.url, self.name) from None

    def execute(self, sql: str, args: Any = None, many: bool = False) -> int:
        """Run a write (``many``: once per row of ``args``); returns affected rows."""
        try:
            with self.conn.cursor() as cur:
                return (cur.executemany(sql, args) or 0) if many else cur.execute(sql, args)
        except pymysql.MySQLError as exc:
            if error_code(exc) in _LOCK_BUSY:
                raise LockBusy(str(exc)) from None
            raise explain(exc, self.url, self.name) from None

    def end(self) -> None:
        if self.in_snapshot:
            self.query("COMMIT")
            self.in_snapshot = False

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # already broken: nothing to release
            pass


class SourceSite(Site):
    """The authoritative side: reads in a snapshot whose binlog position is known."""

    def __init__(self, url: DatabaseURL, name: str) -> None:
        super().__init__(url, name)
        self.position = GtidState()
        self._binlog_offset: tuple[str, int] | None = None
        self.snapshot_started = 0.0
        self.lookup_seconds = 0.0

    def begin(self) -> GtidState:
        """Open a consistent snapshot; return the GTID position it corresponds to.

        MariaDB takes the snapshot under the commit-order lock and reports the binlog
        offset it matches (``binlog_snapshot_file/position``); ``BINLOG_GTID_POS`` turns
        that into a GTID state. No lock is taken on any table.
        """
        self.end()
        started = time.monotonic()
        self.query("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        self.in_snapshot = True
        status = dict(self.query("SHOW STATUS LIKE 'binlog_snapshot_%'"))
        file, offset = status.get("Binlog_snapshot_file"), status.get("Binlog_snapshot_position")
        if not file:
            raise DatabaseError(
                f"site {self.name!r} did not report a binlog snapshot position",
                "verify needs log_bin enabled on the source",
            )
        where = (str(file), int(offset or 0))
        if where != self._binlog_offset:  # same offset, same position: skip the lookup
            rows = self.query("SELECT BINLOG_GTID_POS(%s, %s)", where)
            self.position = GtidState.parse(str(rows[0][0] or "") if rows else "")
            self._binlog_offset = where
        self.snapshot_started = time.monotonic()
        self.lookup_seconds = self.snapshot_started - started
        return self.position

    def fresh(self, max_age: float) -> GtidState:
        """The current snapshot if younger than ``max_age`` seconds, else a new one."""
        if self.in_snapshot and time.monotonic() - self.snapshot_started < max_age:
            return self.position
        return self.begin()


class TargetSite(Site):
    """The side fed by hotsite's applier: reads in a snapshot at or past a source position."""

    def __init__(
        self, url: DatabaseURL, name: str, origin: str, link_key: str, wait_timeout: float
    ) -> None:
        super().__init__(url, name)
        self.origin = origin
        self.link_key = link_key
        self.wait_timeout = wait_timeout

    def applied(self, lock: bool = False) -> Applied:
        try:
            rows = self.query(
                f"SELECT gtid_state, journal_seq, last_gtid FROM {HOTSITE_SCHEMA}.{APPLIED_TABLE}"
                f" WHERE link_key = %s AND snapshot_state = ''{' FOR UPDATE' if lock else ''}",
                (self.link_key,),
            )
        except DatabaseError:
            if self.query(
                "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
                " AND TABLE_NAME = %s",
                (HOTSITE_SCHEMA, APPLIED_TABLE),
            ):
                raise
            rows = []  # hotsite never applied anything here
        if not rows:
            raise NotCaughtUpError(
                f"site {self.name!r} has no replication position from {self.origin!r}",
                "run 'hotsite replicate' (or 'hotsite snapshot') for this link first",
            )
        return Applied(GtidState.parse(str(rows[0][0])), int(rows[0][1]), str(rows[0][2]))

    def wait_for(self, goal: GtidState) -> Applied:
        """Poll until the applier has reached ``goal``; NotCaughtUpError after the timeout."""
        deadline = time.monotonic() + self.wait_timeout
        pause = 0.001
        while True:
            applied = self.applied()
            if applied.gtid.reached(goal):
                return applied
            if time.monotonic() > deadline:
                raise NotCaughtUpError(
                    f"site {self.name!r} did not reach the source position {goal} within"
                    f" {self.wait_timeout:g}s (it has applied {applied.gtid or 'nothing'},"
                    f" {applied.gtid.behind(goal)} transactions behind)",
                    "verify compares at a common position: keep 'hotsite replicate' running"
                    " for this link, or raise --wait-timeout",
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def begin(self, goal: GtidState) -> Applied:
        """Wait for ``goal``, then open a snapshot; return the applied position it sees."""
        self.end()
        self.wait_for(goal)
        self.query("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        self.in_snapshot = True
        return self.applied()
