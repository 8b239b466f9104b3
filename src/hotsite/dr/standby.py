"""Which links a site agent runs under an active-standby ``dr:``: those that carry the
record's primary's writes, into a site that is a consistent standby of it.

Links may be listed both ways (``primary→dr``, ``dr→primary``); a link runs only when
its source is the record's primary (``Routes.running_from``). And not straight after a
failover: the site failed away from may hold an errant tail, and applying the new
primary's writes on top of it would mix the two histories — ``hotsite failback`` deals
with the tail first and runs the link itself. So a link into a site runs when the
record is still at its first epoch (no move yet), or when the site carries the
**standby mark** of that link at the record's epoch: written by the moves that leave
it consistent — a relocate (it had applied everything before the switch) and a
failback that stays — never by a failover. A mark is a row of the site's own
``hotsite.hotsite_standby`` written outside the binlog, like a fence row: it belongs to
that server. The mark of an older epoch is stale: a failover came since.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import pymysql

from hotsite.errors import HotsiteError
from hotsite.topology import Routes

STANDBY_TABLE = "hotsite.hotsite_standby"
FIRST_EPOCH = 1  # the record as dr.primary made it: no move has been made


def write_mark(conn: Any, link_key: str, epoch: int) -> None:
    """``conn``'s server is a consistent standby of ``link_key``'s source at ``epoch``."""
    with conn.cursor() as cur:
        with contextlib.suppress(pymysql.err.OperationalError, pymysql.err.InternalError):
            cur.execute("SET SESSION sql_log_bin = 0")  # a mark never replicates
        try:
            cur.execute("CREATE DATABASE IF NOT EXISTS hotsite")
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {STANDBY_TABLE} (link_key VARCHAR(255) PRIMARY KEY,"
                " epoch BIGINT NOT NULL, since DOUBLE NOT NULL) ENGINE=InnoDB"
            )
            cur.execute(
                f"REPLACE INTO {STANDBY_TABLE} (link_key, epoch, since) VALUES (%s, %s, %s)",
                (link_key, epoch, time.time()),
            )
        finally:
            with contextlib.suppress(pymysql.MySQLError):
                cur.execute("SET SESSION sql_log_bin = 1")


def read_mark(conn: Any, link_key: str) -> int | None:
    with conn.cursor() as cur:
        try:
            cur.execute(f"SELECT epoch FROM {STANDBY_TABLE} WHERE link_key = %s", (link_key,))
        except pymysql.err.ProgrammingError as exc:  # 1146 no table, 1049 no schema
            if exc.args[0] not in (1146, 1049):
                raise
            return None
        row = cur.fetchone()
    return None if row is None else int(row[0])


class LinkGate:
    """Whether a link may run now: (True | False | None for unknown, why)."""

    def __init__(
        self,
        source: str,
        target: str,
        link_key: str,
        routes: Routes,
        record: Callable[[], dict[str, Any]],
        connect_target: Callable[[], Any],
    ) -> None:
        self.source, self.target, self.link_key = source, target, link_key
        self.routes = routes
        self._record = record
        self._connect = connect_target

    def __call__(self) -> tuple[bool | None, str]:
        try:
            record = self._record()
        except HotsiteError as exc:
            return None, f"cannot read the record ({exc.message})"
        primary, epoch = record.get("primary"), int(record.get("epoch") or 0)
        if (self.source, self.target) not in self.routes.running_from(str(primary)):
            return False, f"waits: {self.source} is not the primary ({primary} is, epoch {epoch})"
        if epoch <= FIRST_EPOCH:
            return True, ""
        try:
            conn = self._connect()
        except HotsiteError as exc:
            return None, f"cannot read {self.target}'s standby mark ({exc.message})"
        try:
            mark = read_mark(conn, self.link_key)
        except pymysql.MySQLError as exc:
            return None, f"cannot read {self.target}'s standby mark ({exc.args[-1]})"
        finally:
            conn.close()
        if mark == epoch:
            return True, ""
        return False, (
            f"waits for 'hotsite failback': {self.target} is not marked a consistent standby"
            f" of {self.source} at epoch {epoch} (a failover came since)"
        )
