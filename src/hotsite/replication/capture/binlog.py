"""Capture from a MariaDB binlog: group the binlog's events into source transactions.

Events come from ``FastBinlogSource`` (our decoder, the default) or ``LibrarySource``
(python-mysql-replication); both resume by GTID as a MariaDB replica does. This module
decides what a transaction is, which DDL is replicated, and what the errors mean.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator

import pymysql

from hotsite.db import error_code, error_message, explain
from hotsite.dburl import DatabaseURL
from hotsite.errors import (
    DdlStoppedError,
    HotsiteError,
    PositionPurgedError,
    StatementLoggedError,
    UnsupportedEventError,
)
from hotsite.replication.capture.ddl import REPLICATE, STOP, classify
from hotsite.replication.capture.library import LibrarySource
from hotsite.replication.capture.stream import (
    FastBinlogSource,
    GtidEvent,
    QueryEvent,
    RowsEvent,
    XidEvent,
)
from hotsite.replication.gtid import Gtid, GtidState
from hotsite.replication.origins import MARKER_TABLES, Origin, note_marker, origin_of_ddl
from hotsite.replication.rowversions import entry_from_event, is_shadow
from hotsite.replication.schema import HEARTBEAT_TABLE, HOTSITE_SCHEMA
from hotsite.replication.transactions import RowChange, Transaction

POSITION_NOT_IN_BINLOG = 1236
# A transaction's rows are handed on in parts of about this many binlog bytes.
PART_BYTES = 2 << 20

_DML = re.compile(
    r"^\s*(?:/\*.*?\*/\s*)*(INSERT|REPLACE|UPDATE|DELETE|LOAD\s+(?:DATA|XML))\b", re.I | re.S
)
_NAME = r"(?:`(?:[^`]|``)+`|[\w$]+)"
# Tables a data-changing statement names (conservative: a miss stops the link).
_DML_TABLES = re.compile(
    r"\b(?:INTO|UPDATE|FROM|JOIN|TABLE)\s+(?:(?:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|IGNORE|QUICK)\s+)*"
    rf"(?:(?P<schema>{_NAME})\s*\.\s*)?(?P<table>{_NAME})",
    re.I,
)


def _tables_changed(tx: Transaction) -> list[str]:
    tables = sorted({f"{c.schema}.{c.table}" for c in tx.changes if c.schema != HOTSITE_SCHEMA})
    if not tables and tx.part:
        tables = ["the tables of its earlier parts"]
    return tables


def _exact(statement: str, query: str, raw: bytes) -> str | bytes:
    """The statement as the source ran it: its own bytes when they are not utf8 (a session
    with another client character set), so apply sends them unchanged."""
    if statement == query and raw and "\ufffd" in query:
        return raw
    return statement


def _unquote(name: str) -> str:
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


class BinlogCapture:
    def __init__(
        self,
        url: DatabaseURL,
        site: str,
        server_id: int,
        matches: Callable[[str, str], bool],
        start: GtidState,
        heartbeat_period: float = 0.5,
        decoder: str = "fast",
        project: str = "",
        ships: Callable[[str], bool] = lambda origin: False,
        target: str = "",
        notes: bool = True,
    ) -> None:
        self.url = url
        self.site = site
        self.server_id = server_id
        self.matches = matches
        self.position = start.copy()
        self.heartbeat_period = heartbeat_period
        self.decoder = decoder
        # A transaction applied here from elsewhere (origins.py) keeps its rows only when
        # ``ships(origin)`` says this link forwards that origin's transactions (_routed).
        self.project = project
        self.ships = ships
        self.target = target
        # A transaction this link does not ship still travels as an empty one (a note that
        # moves the target's applied position) when the target writes to no other site;
        # at a target that does, that note would itself be an applied transaction there,
        # sent back as a note, for ever: heartbeats move its position instead.
        self.notes = notes
        self._ddl_sessions: dict[int, Origin] = {}  # session → origin of its next DDL
        self._source: FastBinlogSource | LibrarySource | None = None

    def _wants(self, schema: str, table: str) -> bool:
        return bool(self.matches(schema, table)) or (
            schema == HOTSITE_SCHEMA
            and (table == HEARTBEAT_TABLE or table in MARKER_TABLES or is_shadow(schema, table))
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
        """Committed transactions in binlog order; None on idle heartbeats (to check ``stop``).

        A statement group without XID (DDL, flagged standalone) is finished only at the
        next event that is not one of its rows: ``CREATE TABLE … SELECT`` logs its rows
        after the DDL, in the same GTID group, and they belong to it.
        """
        tx: Transaction | None = None
        standalone = False
        try:
            self._source = source = self._open()
            for event in source.events():
                if stop.is_set():
                    return
                if event is None:
                    if tx is not None and standalone:
                        yield self._finish(tx)
                        tx = None
                    yield None
                elif type(event) is RowsEvent:
                    if (
                        tx is not None
                        and event.schema == HOTSITE_SCHEMA
                        and (event.table in MARKER_TABLES)
                    ):
                        for before, after in event.rows:
                            change = RowChange(event.kind, event.schema, event.table, before, after)
                            note_marker(tx, change, self.project, self._ddl_sessions)
                    elif tx is not None and is_shadow(event.schema, event.table):
                        for before, after in event.rows:
                            entry = entry_from_event(event.table, before, after)
                            if entry is not None:
                                tx.versions.append(entry)
                    elif tx is not None:
                        tx.changes.extend(
                            RowChange(event.kind, event.schema, event.table, before, after)
                            for before, after in event.rows
                        )
                        tx.size += event.size
                        if tx.size >= PART_BYTES:
                            yield self._part(tx)
                elif type(event) is GtidEvent:
                    if tx is not None:
                        if not standalone:
                            self._unfinished(tx)
                        yield self._finish(tx)
                    tx = Transaction(gtid=event.gtid, commit_ts=event.timestamp)
                    standalone = event.standalone
                elif tx is None:
                    continue  # the tail of a transaction that started before our position
                elif type(event) is XidEvent:
                    yield self._finish(tx)
                    tx = None
                elif type(event) is QueryEvent:
                    query = event.query.strip()
                    word = query[:12].upper()
                    if word == "COMMIT":
                        yield self._finish(tx)
                        tx = None
                    elif word == "ROLLBACK":
                        self._rolled_back(tx)
                        yield self._finish(tx)
                        tx = None
                    elif word.startswith("XA "):
                        if word.startswith(("XA COMMIT", "XA ROLLBACK")):
                            # The second phase of a prepared XA transaction: its changes
                            # were in the first, which stopped the link if it had any.
                            yield self._finish(tx)
                            tx = None
                    elif word != "BEGIN":
                        schema = event.schema.strip()
                        query, raw = self._note_ddl_origin(tx, query, event.raw, event.thread_id)
                        self._refuse_statement_dml(query, schema, tx.gtid)
                        statement = self._ddl_statement(query, schema, tx.gtid)
                        if statement is not None:
                            tx.ddl, tx.ddl_schema = (
                                _exact(statement, query, raw),
                                schema or None,
                            )
                            if event.context is not None:
                                tx.ddl_context = event.context.as_list()
        except pymysql.MySQLError as exc:
            raise self._explain(exc) from None
        except (OSError, EOFError) as exc:
            raise self._explain(exc) from None
        finally:
            self.close()

    def _note_ddl_origin(
        self, tx: Transaction, query: str, raw: bytes, session: int
    ) -> tuple[str, bytes]:
        """A DDL that apply ran carries its origin in a leading comment, or where the server
        rewrote the statement without it, in the origins row its session wrote just
        before (origins.py); the statement is returned without the comment."""
        announced = self._ddl_sessions.pop(session, None)
        origin, statement = origin_of_ddl(query)
        if origin is None:
            if announced is not None and tx.origin is None:
                announced.stamp(tx)
            return query, raw
        if origin.project == self.project:
            origin.stamp(tx)
        cut = len(query) - len(statement)  # the comment is ASCII: as many bytes as characters
        return statement, raw.lstrip()[cut:] if raw else raw

    def _routed(self, tx: Transaction) -> Transaction:
        """Empty a transaction that this link does not ship (applied here from its own
        target, or from a site the target hears from directly, or a repair). It travels
        as an empty note that moves the target's applied position (``notes``), or with
        only the settlements meant for the target; else it is not journaled at all (so
        nothing bounces between two sites), and the shipped position moves past it."""
        settlements = [s[1:] for s in tx.settlements if s[0] == self.target]
        if tx.origin is not None and not self.ships(tx.origin):
            tx.changes, tx.versions = [], []
            tx.ddl = tx.ddl_schema = tx.ddl_context = None
            tx.heartbeat_ts = None
            tx.skip = not settlements and not self.notes
            if settlements or self.notes:  # it travels (a note, or decisions), as ours
                tx.origin = tx.origin_gtid = tx.origin_first = None
        tx.settlements = settlements
        return tx

    def _part(self, tx: Transaction) -> Transaction:
        """Hand on the rows gathered so far as one part of ``tx``, which goes on with the
        next part: a transaction of millions of rows never sits in memory whole."""
        part = Transaction(
            gtid=tx.gtid,
            commit_ts=tx.commit_ts,
            changes=tx.changes,
            ddl=tx.ddl,
            ddl_schema=tx.ddl_schema,
            ddl_context=tx.ddl_context,
            part=tx.part,
            final=False,
            size=tx.size,
            origin=tx.origin,
            origin_gtid=tx.origin_gtid,
            origin_first=tx.origin_first,
            forced=tx.forced,
            settlements=tx.settlements,
            versions=tx.versions,
        )
        tx.changes, tx.size, tx.part, tx.settlements = [], 0, tx.part + 1, []
        tx.versions = []
        tx.ddl = tx.ddl_schema = tx.ddl_context = None  # the DDL runs once, with part 0
        return self._routed(part)

    def _unfinished(self, tx: Transaction) -> None:
        """A group that ended without XID or COMMIT: a prepared XA transaction (its XA
        PREPARE event ends it). Its outcome comes later, in another group, and a GTID
        position cannot hold "all of this domain but that one": replicating it exactly is
        not possible, and skipping it would lose its rows."""
        tables = _tables_changed(tx)
        if tables:
            raise UnsupportedEventError(
                f"site {self.site!r}: transaction {tx.gtid} is a prepared XA transaction that"
                f" changed {', '.join(tables[:5])}; XA transactions are not replicated",
                "commit such changes without XA (or exclude those tables from the link), then"
                " run 'hotsite snapshot' to reload the target",
            )

    def _rolled_back(self, tx: Transaction) -> None:
        """A group ending in ROLLBACK carries changes of non-transactional tables that the
        rollback could not undo, mixed with transactional ones it did: which of them
        happened is the engine's knowledge, not the binlog's."""
        tables = _tables_changed(tx)
        if tables:
            raise UnsupportedEventError(
                f"site {self.site!r}: transaction {tx.gtid} was rolled back after changing"
                f" non-transactional tables ({', '.join(tables[:5])}); its effect cannot be"
                " replicated exactly",
                "convert the link's tables to InnoDB (ALTER TABLE … ENGINE=InnoDB), then run"
                " 'hotsite snapshot' to reload the target",
            )

    def _finish(self, tx: Transaction) -> Transaction:
        self.position.advance(Gtid.parse(tx.gtid))
        if self._source is not None and self._source.reconnects:
            self._source.position = str(self.position)
        changes = tx.changes
        if (
            changes
            and changes[-1].table == HEARTBEAT_TABLE  # most are not: no scan of every change
            and all(c.schema == HOTSITE_SCHEMA and c.table == HEARTBEAT_TABLE for c in changes)
        ):
            after = tx.changes[-1].after or {}
            tx.heartbeat_ts = float(after.get("ts", 0))
        return self._routed(tx)

    def _ddl_statement(self, query: str, schema: str, gtid: str) -> str | None:
        """The statement to replicate for a DDL event (maybe rewritten to the link's
        tables); None to skip it; DdlStoppedError where replicating it is impossible."""
        decision = classify(query, schema, self.matches)
        if decision.action == STOP:
            shown = " ".join(query.split())
            shown = shown if len(shown) <= 200 else shown[:200] + "…"
            raise DdlStoppedError(
                f"site {self.site!r}: transaction {gtid} cannot be replicated ({decision.reason}):"
                f" {shown}",
                "make the link's tables patterns cover it (or not at all), or apply it to the"
                " target by hand and run 'hotsite snapshot' to reload the target past it",
            )
        return decision.statement if decision.action == REPLICATE else None

    def _refuse_statement_dml(self, query: str, schema: str, gtid: str) -> None:
        """A data change logged as a statement (a session with binlog_format=STATEMENT or
        MIXED) carries no row images: re-running its SQL could diverge, skipping it loses
        rows. Stop the link at it, unless it touches no replicated table."""
        if not _DML.match(query):
            return
        names = [
            (
                _unquote(m.group("schema")) if m.group("schema") else schema,
                _unquote(m.group("table")),
            )
            for m in _DML_TABLES.finditer(query)
        ]
        if names and not any(self.matches(s, t) for s, t in names if s != HOTSITE_SCHEMA):
            return  # other applications' tables, or hotsite's own heartbeat
        shown = ", ".join(f"{s}.{t}" for s, t in names) or "a replicated table"
        raise StatementLoggedError(
            f"site {self.site!r}: transaction {gtid} changed {shown} as a logged statement"
            " (binlog_format STATEMENT or MIXED in that session), not as row images; its rows"
            " cannot be replicated exactly, so the link stops here",
            "set binlog_format=ROW globally and make sure no session changes it, then run"
            " 'hotsite snapshot' to reload the target",
        )

    def _explain(self, exc: pymysql.MySQLError) -> HotsiteError:
        code = error_code(exc)
        if code == POSITION_NOT_IN_BINLOG:
            return PositionPurgedError(
                f"site {self.site!r}: the source no longer has position {self.position} in its binlog"
                f" ({error_message(exc)})",
                "the target cannot be caught up by streaming; run 'hotsite snapshot' to reload it",
            )
        return explain(exc, self.url, self.site)
