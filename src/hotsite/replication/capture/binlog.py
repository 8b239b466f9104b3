"""Capture from a MariaDB binlog: group the binlog's events into source transactions.

Events come from ``FastBinlogSource`` (our decoder, the default) or ``LibrarySource``
(python-mysql-replication); both resume by GTID as a MariaDB replica does. This module
decides what a transaction is, which DDL is replicated, and what the errors mean.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Callable, Iterator

import pymysql

from hotsite.config import DatabaseURL
from hotsite.db import explain
from hotsite.errors import HotsiteError, PositionPurgedError
from hotsite.replication.capture.library import LibrarySource
from hotsite.replication.capture.stream import (
    FastBinlogSource,
    GtidEvent,
    QueryEvent,
    RowsEvent,
    XidEvent,
)
from hotsite.replication.events import RowChange, Transaction
from hotsite.replication.gtid import Gtid, GtidState
from hotsite.replication.schema import HEARTBEAT_TABLE, HOTSITE_SCHEMA

POSITION_NOT_IN_BINLOG = 1236

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
        decoder: str = "fast",
    ) -> None:
        self.url = url
        self.site = site
        self.server_id = capture_server_id(link_name)
        self.matches = matches
        self.position = start.copy()
        self.heartbeat_period = heartbeat_period
        self.decoder = decoder
        self._source: FastBinlogSource | LibrarySource | None = None

    def _wants(self, schema: str, table: str) -> bool:
        return bool(self.matches(schema, table)) or (
            schema == HOTSITE_SCHEMA and table == HEARTBEAT_TABLE
        )

    def _open(self) -> FastBinlogSource | LibrarySource:
        source_class = LibrarySource if self.decoder == "library" else FastBinlogSource
        return source_class(
            self.url, self.server_id, str(self.position), self.heartbeat_period, self._wants
        )

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None

    def transactions(self, stop: threading.Event) -> Iterator[Transaction | None]:
        """Committed transactions in binlog order; None on idle heartbeats (to check ``stop``)."""
        tx: Transaction | None = None
        standalone = False
        try:
            self._source = source = self._open()
            for event in source.events():
                if stop.is_set():
                    return
                if event is None:
                    yield None
                elif type(event) is RowsEvent:
                    if tx is not None:
                        tx.changes.extend(
                            RowChange(event.kind, event.schema, event.table, before, after)
                            for before, after in event.rows
                        )
                elif type(event) is GtidEvent:
                    tx = Transaction(gtid=event.gtid, commit_ts=event.timestamp)
                    standalone = event.standalone
                elif tx is None:
                    continue  # the tail of a transaction that started before our position
                elif type(event) is XidEvent:
                    yield self._finish(tx)
                    tx = None
                elif type(event) is QueryEvent:
                    query = event.query.strip()
                    if query.upper() == "COMMIT":
                        yield self._finish(tx)
                        tx = None
                    elif query.upper() != "BEGIN":
                        schema = event.schema.strip()
                        if self._ddl_selected(query, schema):
                            tx.ddl, tx.ddl_schema = query, schema or None
                        if standalone:
                            yield self._finish(tx)
                            tx = None
        except pymysql.MySQLError as exc:
            raise self._explain(exc) from None
        except (OSError, EOFError) as exc:
            raise self._explain(exc) from None
        finally:
            self.close()

    def _finish(self, tx: Transaction) -> Transaction:
        self.position.advance(Gtid.parse(tx.gtid))
        if self._source is not None:
            self._source.position = str(self.position)
        if tx.changes and all(
            c.schema == HOTSITE_SCHEMA and c.table == HEARTBEAT_TABLE for c in tx.changes
        ):
            after = tx.changes[-1].after or {}
            tx.heartbeat_ts = float(after.get("ts", 0))
        return tx

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
