"""The reference event source: python-mysql-replication, adapted to ``stream``'s events.

Slower than ``FastBinlogSource`` (DESIGN.md: ~11k rows/s) but it knows more of the
binlog (compressed events, MySQL's binary JSON): selected with ``decoder: library``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import HeartbeatLogEvent, MariadbGtidEvent, XidEvent
from pymysqlreplication.event import QueryEvent as LibraryQueryEvent
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from hotsite.db import connection_settings
from hotsite.dburl import DatabaseURL
from hotsite.replication.capture.query_context import QueryContext
from hotsite.replication.capture.stream import (
    FL_STANDALONE,
    Event,
    GtidEvent,
    QueryEvent,
    RowsEvent,
)
from hotsite.replication.capture.stream import XidEvent as HotsiteXid
from hotsite.replication.transactions import DELETE, INSERT, UPDATE


class LibrarySource:
    # The library reconnects by itself, from the position it holds: set it per transaction.
    reconnects = True

    def __init__(
        self,
        url: DatabaseURL,
        server_id: int,
        position: str,
        heartbeat_period: float,
        wants: Callable[[str, str], bool],
    ) -> None:
        self.wants = wants
        self._stream: BinLogStreamReader | None = BinLogStreamReader(
            # The same settings as every other connection: ?socket= included.
            connection_settings=connection_settings(url),
            server_id=server_id,
            blocking=True,
            resume_stream=True,
            auto_position=position,
            is_mariadb=True,
            only_events=[
                MariadbGtidEvent,
                LibraryQueryEvent,
                XidEvent,
                WriteRowsEvent,
                UpdateRowsEvent,
                DeleteRowsEvent,
                HeartbeatLogEvent,
            ],
            slave_heartbeat=heartbeat_period,
            enable_logging=False,
        )

    @property
    def position(self) -> str:
        return str(self._stream.auto_position) if self._stream else ""

    @position.setter
    def position(self, value: str) -> None:
        # The library reconnects by itself after a lost connection, from the position it
        # was opened at; keeping that current means it never replays.
        if self._stream is not None:
            self._stream.auto_position = value

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.close()
            except Exception:  # closing a broken stream must not hide the real error
                pass
            self._stream = None

    def events(self) -> Iterator[Event]:
        assert self._stream is not None
        while True:
            event = self._stream.fetchone()
            if event is None or isinstance(event, HeartbeatLogEvent):
                yield None
            elif isinstance(event, MariadbGtidEvent):
                standalone = bool(event.flags & FL_STANDALONE)
                yield GtidEvent(event.gtid, float(event.timestamp), standalone)
            elif isinstance(event, XidEvent):
                yield HotsiteXid()
            elif isinstance(event, LibraryQueryEvent):
                context = QueryContext(
                    getattr(event, "sql_mode", None),
                    getattr(event, "character_set_client", None),
                    getattr(event, "collation_connection", None),
                    getattr(event, "collation_server", None),
                )
                raw = event.query if isinstance(event.query, bytes) else b""
                thread_id = int(getattr(event, "slave_proxy_id", 0) or 0)
                yield QueryEvent(_text(event.schema), _text(event.query), raw, context, thread_id)
            elif self.wants(event.schema, event.table):
                if isinstance(event, WriteRowsEvent):
                    rows = [(None, row["values"]) for row in event.rows]
                    yield RowsEvent(INSERT, event.schema, event.table, rows, _size(event))
                elif isinstance(event, UpdateRowsEvent):
                    rows = [(row["before_values"], row["after_values"]) for row in event.rows]
                    yield RowsEvent(UPDATE, event.schema, event.table, rows, _size(event))
                elif isinstance(event, DeleteRowsEvent):
                    rows = [(row["values"], None) for row in event.rows]
                    yield RowsEvent(DELETE, event.schema, event.table, rows, _size(event))


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value or "")


def _size(event: object) -> int:
    return int(getattr(event, "event_size", 0) or 0)
