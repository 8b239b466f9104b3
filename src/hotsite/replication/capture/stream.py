"""Read a MariaDB binlog as a replica does, and turn it into a few simple events.

Two sources produce the same events: ``FastBinlogSource`` (COM_BINLOG_DUMP on a pymysql
connection, decoded by ``rowformat``) and ``LibrarySource`` (python-mysql-replication, the
reference). ``BinlogCapture`` groups either into transactions.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pymysql

from hotsite.db import connection_settings, open_connection
from hotsite.dburl import DatabaseURL
from hotsite.errors import DatabaseUnavailable, HotsiteError, SourceSettingsError
from hotsite.replication.capture.query_context import QueryContext, parse_status_vars
from hotsite.replication.capture.rowformat import (
    PartialRowImage,
    TableMap,
    UnsupportedColumn,
    decode_rows,
    parse_table_map,
)
from hotsite.replication.transactions import DELETE, INSERT, UPDATE, ChangeKind

COM_BINLOG_DUMP = 0x12
_HEADER = struct.Struct("<IBIIIH")  # timestamp, type, server_id, size, log_pos, flags
_HEADER_SIZE = 19
QUERY, XID, TABLE_MAP, HEARTBEAT = 2, 16, 19, 27
WRITE_V1, UPDATE_V1, DELETE_V1, WRITE_V2, UPDATE_V2, DELETE_V2 = 23, 24, 25, 30, 31, 32
MARIADB_GTID = 162
# MariaDB's compressed events (log_bin_compress=ON): 165 query, 166-171 rows.
COMPRESSED = frozenset(range(165, 172))
_ROWS = {
    WRITE_V1: (INSERT, False),
    UPDATE_V1: (UPDATE, False),
    DELETE_V1: (DELETE, False),
    WRITE_V2: (INSERT, True),
    UPDATE_V2: (UPDATE, True),
    DELETE_V2: (DELETE, True),
}
_QUERY_POST_HEADER = struct.Struct("<IIBHH")  # thread, exec time, schema len, error, vars len
_GTID_POST_HEADER = struct.Struct("<QIB")  # seq_no, domain_id, flags


@dataclass(slots=True)
class GtidEvent:
    gtid: str
    timestamp: float
    standalone: bool  # a statement without XID (DDL) follows


@dataclass(slots=True)
class QueryEvent:
    schema: str
    query: str
    raw: bytes = b""  # the statement's bytes, in the session's client character set
    context: QueryContext | None = None
    thread_id: int = 0  # the session that ran it (apply names its own: origins.py)


@dataclass(slots=True)
class XidEvent:
    pass


@dataclass(slots=True)
class RowsEvent:
    kind: ChangeKind
    schema: str
    table: str
    rows: list[tuple[Any, Any]]  # (before, after) images; None where there is none
    size: int = 0  # bytes of the event: what bounds a transaction's parts and the queue


Event = GtidEvent | QueryEvent | XidEvent | RowsEvent | None  # None: heartbeat (idle)

FL_STANDALONE = 1  # MariaDB GTID flag: a statement without XID (DDL) follows


class FastBinlogSource:
    """COM_BINLOG_DUMP from a GTID position; events decoded by ``rowformat``.

    ``wants(schema, table)`` is asked once per table map, so rows of tables the link does
    not replicate are never decoded.
    """

    # It reads its position once, when it opens: capture opens a new source after an
    # error, so it needs no position kept up to date per transaction.
    reconnects = False

    def __init__(
        self,
        url: DatabaseURL,
        server_id: int,
        position: str,
        heartbeat_period: float,
        wants: Callable[[str, str], bool],
    ) -> None:
        self.url = url
        self.server_id = server_id
        self.position = position
        self.heartbeat_period = heartbeat_period
        self.wants = wants
        self._conn: pymysql.connections.Connection | None = None
        self._maps_by_bytes: dict[bytes, TableMap] = {}
        self._maps: dict[int, TableMap | None] = {}
        self._checksum = 0

    def open(self) -> None:
        # A silent link is noticed: the server sends a heartbeat every period.
        read_timeout = max(10.0, self.heartbeat_period * 10)
        conn = open_connection(
            **connection_settings(self.url, read_timeout=read_timeout), autocommit=True
        )
        with conn.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.binlog_checksum")
            row = cur.fetchone()
            self._checksum = 4 if row and str(row[0]).upper() != "NONE" else 0
            # One statement, not six: over a WAN each costs the link's start a round trip.
            cur.execute(
                "SET @master_binlog_checksum = @@GLOBAL.binlog_checksum,"
                " @master_heartbeat_period = %s,"
                " @mariadb_slave_capability = 4,"  # a GTID-aware replica
                " @slave_connect_state = %s,"
                " @slave_gtid_strict_mode = 1,"
                " @slave_gtid_ignore_duplicates = 0",
                (int(self.heartbeat_period * 1e9), self.position),
            )
        # binlog position 4 and an empty file name: the server starts from the GTID state.
        payload = struct.pack("<IHI", 4, 0, self.server_id)
        conn._execute_command(COM_BINLOG_DUMP, payload)  # pymysql has no public API for it
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # closing a broken connection must not hide the real error
                pass
            self._conn = None

    def events(self) -> Iterator[Event]:
        if self._conn is None:
            self.open()
        conn = self._conn
        assert conn is not None
        checksum = self._checksum
        for data in _packets(conn):
            if data[0] == 0xFE and len(data) < 9:
                return  # EOF: the server ended the stream
            event_end = len(data) - checksum
            # An event followed by its own CRC-32 (little-endian) has the CRC-32 residue:
            # one pass over the bytes, no slice of the stored checksum to compare.
            if checksum and zlib.crc32(data[1:]) != _CRC32_RESIDUE:
                raise DatabaseUnavailable(
                    "a binlog event arrived corrupted (CRC32 mismatch)",
                    "check the network path to the source; capture restarts from its position",
                )
            timestamp, kind, server_id, _, _, _ = _HEADER.unpack_from(data, 1)
            body = data[1 + _HEADER_SIZE : event_end]
            if kind in _ROWS:
                event = self._rows(kind, body)
                if event is not None:
                    yield event
            elif kind == TABLE_MAP:
                self._table_map(body)
            elif kind == MARIADB_GTID:
                seq, domain, flags = _GTID_POST_HEADER.unpack_from(body, 0)
                yield GtidEvent(
                    f"{domain}-{server_id}-{seq}", float(timestamp), bool(flags & FL_STANDALONE)
                )
            elif kind == XID:
                yield XidEvent()
            elif kind == QUERY:
                yield _query(body)
            elif kind == HEARTBEAT:
                yield None
            elif kind in COMPRESSED:
                raise HotsiteError(
                    "the source writes compressed binlog events (log_bin_compress=ON)",
                    "set log_bin_compress=OFF on the source, or use 'decoder: library' in the link",
                )

    def _table_map(self, body: bytes) -> None:
        # MariaDB writes the same table map before every transaction: parse each once.
        table = self._maps_by_bytes.get(body)
        if table is None:
            if len(self._maps_by_bytes) > 10_000:
                self._maps_by_bytes.clear()
            schema_len = body[8]
            schema = body[9 : 9 + schema_len].decode()
            table_len = body[10 + schema_len]
            name = body[11 + schema_len : 11 + schema_len + table_len].decode()
            if not self.wants(schema, name):
                self._maps[int.from_bytes(body[0:6], "little")] = None
                return
            try:
                table = parse_table_map(body)
            except UnsupportedColumn as exc:
                raise HotsiteError(
                    f"table {schema}.{name}: capture cannot decode {exc}",
                    "use 'decoder: library' in the replication link",
                ) from None
            if not table.named:
                raise SourceSettingsError(
                    f"table {schema}.{name}: the source logged its changes without column"
                    " names (binlog_row_metadata is no longer FULL); the link stops here",
                    "set binlog_row_metadata=FULL on the source (SET GLOBAL and its"
                    " configuration file), then run 'hotsite snapshot' to reload the target",
                )
            self._maps_by_bytes[body] = table
        self._maps[table.table_id] = table

    def _rows(self, kind: int, body: bytes) -> RowsEvent | None:
        table = self._maps.get(int.from_bytes(body[0:6], "little"))
        if table is None:
            return None  # a table this link does not replicate
        change, version2 = _ROWS[kind]
        try:
            rows: list[tuple[Any, Any]] = decode_rows(body, table, change == UPDATE, version2)
        except PartialRowImage:
            raise SourceSettingsError(
                f"table {table.schema}.{table.table}: the source logged a change without"
                " every column (binlog_row_image is no longer FULL); the link stops here",
                "set binlog_row_image=FULL on the source (SET GLOBAL and its configuration"
                " file), then run 'hotsite snapshot' to reload the target",
            ) from None
        if change == DELETE:
            rows = [(image, None) for _, image in rows]
        return RowsEvent(change, table.schema, table.table, rows, len(body))


# zlib.crc32(message + crc32(message).to_bytes(4, "little")) for any message.
_CRC32_RESIDUE = 0x2144DF1C
_MAX_PACKET = 0xFFFFFF  # a payload this long goes on in the next packet


def _packets(conn: pymysql.connections.Connection) -> Iterator[bytes]:
    """The payloads of the binlog stream's packets, read from the connection's buffered
    socket file directly: pymysql's ``_read_packet`` costs a few µs of objects and checks
    per packet, and a source transaction is ~10 packets (GTID, table maps, rows events,
    XID), a large share of capture's time on a backlog. A lost connection raises as
    pymysql would (CR_SERVER_LOST), an error packet as the server's error."""
    conn._sock.settimeout(conn._read_timeout)
    conn._current_timeout = conn._read_timeout
    read = conn._rfile.read
    while True:
        parts: list[bytes] = []
        while True:
            header = read(4)
            if len(header) < 4:
                raise _lost(conn)
            length = header[0] | header[1] << 8 | header[2] << 16
            payload = read(length)
            if len(payload) < length:
                raise _lost(conn)
            if length < _MAX_PACKET and not parts:
                break
            parts.append(payload)
            if length < _MAX_PACKET:
                payload = b"".join(parts)
                break
        if payload[:1] == b"\xff":
            pymysql.err.raise_mysql_exception(payload)
        yield payload


def _lost(conn: pymysql.connections.Connection) -> pymysql.err.OperationalError:
    conn._force_close()
    return pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")


def _query(body: bytes) -> QueryEvent:
    thread_id, _, schema_len, _, vars_len = _QUERY_POST_HEADER.unpack_from(body, 0)
    start = _QUERY_POST_HEADER.size + vars_len
    schema = body[start : start + schema_len].decode("utf8", "replace")
    raw = body[start + schema_len + 1 :]
    query = raw.decode("utf8", "replace")
    if len(raw) > 12 and raw[:5].upper() not in (b"BEGIN", b"COMMI", b"XA ST", b"XA EN"):
        # Only statements that may be DDL need their session (cheap, but not per commit).
        context = parse_status_vars(body[_QUERY_POST_HEADER.size : start])
        return QueryEvent(schema, query, raw, context, thread_id)
    return QueryEvent(schema, query, raw, thread_id=thread_id)
