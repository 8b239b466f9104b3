"""Capture from a MariaDB binlog with python-mysql-replication.

The library reads the binlog as a replica would (COM_BINLOG_DUMP, resumed by GTID) and
decodes row images; we group its events into source transactions. DESIGN.md measured
the library at ~11k rows/s, so this module is the only place that knows it: a faster
decoder can replace it behind ``BinlogCapture.transactions`` and be tested against it.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import HeartbeatLogEvent, MariadbGtidEvent, QueryEvent, XidEvent
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from hotsite.config import DatabaseURL
from hotsite.db import explain
from hotsite.errors import HotsiteError, PositionPurgedError
from hotsite.replication.events import DELETE, INSERT, UPDATE, RowChange, Transaction
from hotsite.replication.gtid import Gtid, GtidState
from hotsite.replication.schema import HEARTBEAT_TABLE, HOTSITE_SCHEMA

POSITION_NOT_IN_BINLOG = 1236
_FL_STANDALONE = 1  # MariaDB GTID flag: a statement with no XID (DDL) follows

_DDL = re.compile(r"^\s*(CREATE|ALTER|DROP|RENAME|TRUNCATE)\b", re.I)
# The first table a DDL statement names, optionally schema-qualified and quoted.
_DDL_TABLE = re.compile(
    r"^\s*(?:CREATE|ALTER|DROP|RENAME|TRUNCATE)\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?"
    r"(?:ONLINE\s+|IGNORE\s+)?TABLE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"
    r"(?:`?(?P<schema>[\w$]+)`?\s*\.\s*)?`?(?P<table>[\w$]+)`?",
    re.I,
)
_DDL_OBJECTS = re.compile(
    r"^\s*(?:CREATE|ALTER|DROP|RENAME|TRUNCATE)\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?"
    r"(?:ONLINE\s+|IGNORE\s+)?(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?(TABLE|INDEX|VIEW)\b",
    re.I,
)


def capture_server_id(link_name: str) -> int:
    """A replica server_id stable per link, so a restarted capture replaces its old session."""
    return 1_000_000 + zlib.crc32(link_name.encode()) % 1_000_000


class BinlogCapture:
    def __init__(
        self,
        url: DatabaseURL,
        site: str,
        link_name: str,
        matches: Callable[[str, str], bool],
        start: GtidState,
        heartbeat_period: float = 0.5,
    ) -> None:
        self.url = url
        self.site = site
        self.server_id = capture_server_id(link_name)
        self.matches = matches
        self.position = start.copy()
        self.heartbeat_period = heartbeat_period
        self._stream: BinLogStreamReader | None = None

    def _open(self) -> BinLogStreamReader:
        return BinLogStreamReader(
            connection_settings={
                "host": self.url.host,
                "port": self.url.port,
                "user": self.url.user,
                "passwd": self.url.password,
                "connect_timeout": 5,
            },
            server_id=self.server_id,
            blocking=True,
            resume_stream=True,
            auto_position=str(self.position),
            is_mariadb=True,
            only_events=[
                MariadbGtidEvent,
                QueryEvent,
                XidEvent,
                WriteRowsEvent,
                UpdateRowsEvent,
                DeleteRowsEvent,
                HeartbeatLogEvent,
            ],
            slave_heartbeat=self.heartbeat_period,
            enable_logging=False,
        )

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.close()
            except Exception:  # closing a broken stream must not hide the real error
                pass
            self._stream = None

    def transactions(self, stop: threading.Event) -> Iterator[Transaction | None]:
        """Committed transactions in binlog order; None on idle heartbeats (to check ``stop``)."""
        self._stream = stream = self._open()
        tx: Transaction | None = None
        standalone = False
        try:
            while not stop.is_set():
                event = stream.fetchone()
                if event is None:
                    yield None
                    continue
                if isinstance(event, HeartbeatLogEvent):
                    yield None
                elif isinstance(event, MariadbGtidEvent):
                    tx = Transaction(gtid=event.gtid, commit_ts=float(event.timestamp))
                    standalone = bool(event.flags & _FL_STANDALONE)
                elif tx is None:
                    continue  # the tail of a transaction that started before our position
                elif isinstance(event, XidEvent):
                    yield self._finish(tx)
                    tx = None
                elif isinstance(event, QueryEvent):
                    query = _text(event.query)
                    if query.upper() == "COMMIT":
                        yield self._finish(tx)
                        tx = None
                    elif query.upper() != "BEGIN":
                        schema = _text(event.schema)
                        if self._ddl_selected(query, schema):
                            tx.ddl, tx.ddl_schema = query, schema or None
                        if standalone:
                            yield self._finish(tx)
                            tx = None
                else:
                    self._add_rows(tx, event)
        except pymysql.MySQLError as exc:
            raise self._explain(exc) from None
        finally:
            self.close()

    def _finish(self, tx: Transaction) -> Transaction:
        self.position.advance(Gtid.parse(tx.gtid))
        if self._stream is not None:
            # The library reconnects by itself after a lost connection, from the position
            # it was opened at; keep that position current so it never replays.
            self._stream.auto_position = str(self.position)
        if tx.changes and all(
            c.schema == HOTSITE_SCHEMA and c.table == HEARTBEAT_TABLE for c in tx.changes
        ):
            after = tx.changes[-1].after or {}
            tx.heartbeat_ts = float(after.get("ts", 0))
        return tx

    def _add_rows(self, tx: Transaction, event: Any) -> None:
        schema, table = event.schema, event.table
        if not (
            self.matches(schema, table) or (schema == HOTSITE_SCHEMA and table == HEARTBEAT_TABLE)
        ):
            return
        changes = tx.changes
        if isinstance(event, WriteRowsEvent):
            changes.extend(
                RowChange(INSERT, schema, table, None, row["values"]) for row in event.rows
            )
        elif isinstance(event, UpdateRowsEvent):
            changes.extend(
                RowChange(UPDATE, schema, table, row["before_values"], row["after_values"])
                for row in event.rows
            )
        elif isinstance(event, DeleteRowsEvent):
            changes.extend(
                RowChange(DELETE, schema, table, row["values"], None) for row in event.rows
            )

    def _ddl_selected(self, query: str, schema: str) -> bool:
        if not _DDL.match(query) or not _DDL_OBJECTS.match(query):
            return False  # users, grants, databases, routines: site-specific, not replicated
        named = _DDL_TABLE.match(query)
        if named:
            return bool(self.matches(named.group("schema") or schema, named.group("table")))
        # CREATE INDEX ... ON t, views: decide by the schema the statement ran in.
        return bool(schema) and self.matches(schema, "*")

    def _explain(self, exc: pymysql.MySQLError) -> HotsiteError:
        code = exc.args[0] if exc.args else None
        if code == POSITION_NOT_IN_BINLOG:
            return PositionPurgedError(
                f"site {self.site!r}: the source no longer has position {self.position} in its binlog"
                f" ({exc.args[1] if len(exc.args) > 1 else exc})",
                "the target cannot be caught up by streaming; run 'hotsite snapshot' to reload it",
            )
        return explain(exc, self.url, self.site)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").strip()
    return str(value or "").strip()
