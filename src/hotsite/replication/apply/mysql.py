"""Apply journaled transactions to a MariaDB/MySQL target, exactly once.

Consecutive source transactions are grouped into one target transaction when apply is
behind, and the position reached (``hotsite.hotsite_applied``) is written in that same
target transaction: after a crash of anything, apply resumes from that row with
nothing lost and nothing applied twice. Within a group, each key's changes collapse to
its final state (one multi-row upsert and one delete per table), which keeps the target
consistent at every group boundary. Tables with unique keys besides the primary key
are applied change by change instead, because collapsing could reorder two rows that
swap a unique value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pymysql

from hotsite.config import DatabaseURL
from hotsite.db import connect, explain
from hotsite.errors import ApplyError, HotsiteError
from hotsite.logs import get_logger
from hotsite.replication.apply import statements as sql
from hotsite.replication.events import DELETE, INSERT, RowChange, Transaction
from hotsite.replication.gtid import Gtid, GtidState
from hotsite.replication.journal import JournalEntry
from hotsite.replication.schema import (
    APPLIED_TABLE,
    HOTSITE_SCHEMA,
    TableInfo,
    describe,
    ensure_hotsite_schema,
    quote,
)

log = get_logger(__name__)

# DDL errors that mean "this statement already took effect" when it is replayed after
# a crash between the DDL and the position update (DDL commits on its own in MySQL).
_ALREADY_APPLIED_DDL_ERRORS = {1050, 1051, 1054, 1060, 1061, 1091, 1146, 1022, 1826}
_DELETE_CHUNK = 1000


@dataclass
class AppliedPosition:
    gtid_state: GtidState
    last_gtid: str
    journal_seq: int
    transactions: int
    ddl_in_progress: str


class MySQLApplier:
    def __init__(self, url: DatabaseURL, site: str, origin: str, link_key: str) -> None:
        self.url = url
        self.site = site
        self.origin = origin
        self.link_key = link_key
        self.conn: Any = None
        self.position = AppliedPosition(GtidState(), "", 0, 0, "")
        self._tables: dict[tuple[str, str], TableInfo] = {}

    # --- connection and position -------------------------------------------------

    def open(self) -> AppliedPosition | None:
        """Connect and read the applied position; None when nothing was ever applied."""
        self.close()
        self.conn = connect(self.url, self.site, autocommit=True)
        with self.conn.cursor() as cur:
            # Checks already ran on the source; zero must stay zero in AUTO_INCREMENT columns.
            cur.execute("SET SESSION foreign_key_checks = 0")
            cur.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO')")
        ensure_hotsite_schema(self.conn)
        self.conn.autocommit(False)
        position = read_applied(self.conn, self.link_key)
        self.conn.commit()
        if position:
            self.position = position
        self._tables.clear()
        return position

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # already broken: nothing to release
                pass
            self.conn = None

    # --- applying ------------------------------------------------------------------

    def apply(self, entries: list[JournalEntry]) -> list[Transaction]:
        """Apply entries in order; returns the transactions applied (skipping duplicates)."""
        applied: list[Transaction] = []
        group: list[Transaction] = []
        last_seq = self.position.journal_seq
        try:
            for entry in entries:
                tx = entry.transaction()
                gtid = Gtid.parse(tx.gtid)
                if self.position.gtid_state.covers(gtid):
                    continue  # applied before a crash or a journal rebuild
                if tx.ddl is not None:
                    if group:
                        self._commit_group(group, last_seq)
                        applied += group
                        group = []
                    self._apply_ddl(tx, entry.seq)
                    applied.append(tx)
                else:
                    group.append(tx)
                last_seq = entry.seq
            if group:
                self._commit_group(group, last_seq)
                applied += group
        except pymysql.MySQLError as exc:
            self._rollback()
            raise self._explain(exc) from None
        return applied

    def _commit_group(self, group: list[Transaction], last_seq: int) -> None:
        changes = [change for tx in group for change in tx.changes]
        with self.conn.cursor() as cur:
            if changes:
                if self._collapsible(changes):
                    self._apply_collapsed(cur, changes)
                else:
                    self._apply_in_order(cur, changes)
            state = self.position.gtid_state.copy()
            for tx in group:
                state.advance(Gtid.parse(tx.gtid))
            self._write_position(cur, state, group[-1], last_seq, len(group), "")
        self.conn.commit()
        self._advance(state, group[-1].gtid, last_seq, len(group), "")

    def _apply_ddl(self, tx: Transaction, seq: int) -> None:
        state = self.position.gtid_state.copy()
        state.advance(Gtid.parse(tx.gtid))
        replaying = self.position.ddl_in_progress == tx.gtid
        with self.conn.cursor() as cur:
            # Mark the DDL before running it: DDL commits by itself, so after a crash we
            # must know whether an "already exists" error means replay or divergence.
            self._write_position(
                cur, self.position.gtid_state, None, self.position.journal_seq, 0, tx.gtid
            )
            self.conn.commit()
            try:
                if tx.ddl_schema:
                    cur.execute(f"USE {quote(tx.ddl_schema)}")
                cur.execute(tx.ddl)
            except pymysql.MySQLError as exc:
                code = exc.args[0] if exc.args else None
                if not (replaying and code in _ALREADY_APPLIED_DDL_ERRORS):
                    raise
                log.info("ddl already applied before a crash", gtid=tx.gtid)
            self._tables.clear()
            self._write_position(cur, state, tx, seq, 1, "")
        self.conn.commit()
        self._advance(state, tx.gtid, seq, 1, "")

    def _advance(self, state: GtidState, gtid: str, seq: int, count: int, ddl: str) -> None:
        p = self.position
        self.position = AppliedPosition(state, gtid, seq, p.transactions + count, ddl)

    def _write_position(
        self, cur: Any, state: GtidState, last: Transaction | None, seq: int, count: int, ddl: str
    ) -> None:
        cur.execute(
            f"INSERT INTO {HOTSITE_SCHEMA}.{APPLIED_TABLE}"
            " (link_key, origin, gtid_state, last_gtid, journal_seq, transactions, source_commit_ts, applied_at,"
            " ddl_in_progress) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON DUPLICATE KEY UPDATE gtid_state = VALUES(gtid_state), last_gtid = VALUES(last_gtid),"
            " journal_seq = VALUES(journal_seq), transactions = VALUES(transactions),"
            " source_commit_ts = VALUES(source_commit_ts), applied_at = VALUES(applied_at),"
            " ddl_in_progress = VALUES(ddl_in_progress)",
            (
                self.link_key,
                self.origin,
                str(state),
                last.gtid if last else self.position.last_gtid,
                seq,
                self.position.transactions + count,
                last.commit_ts if last else 0,
                time.time(),
                ddl,
            ),
        )

    # --- row changes ---------------------------------------------------------------

    def _table(self, schema: str, table: str) -> TableInfo:
        key = (schema, table)
        info = self._tables.get(key)
        if info is None:
            try:
                info = describe(self.conn, schema, table)
            except HotsiteError as exc:
                raise ApplyError(
                    f"site {self.site!r}: cannot apply to {schema}.{table}: {exc.message}",
                    "run 'hotsite snapshot' to reload the target",
                ) from None
            self._tables[key] = info
        return info

    def _collapsible(self, changes: list[RowChange]) -> bool:
        tables = {(c.schema, c.table) for c in changes}
        return not any(self._table(s, t).has_other_unique_keys for s, t in tables)

    def _apply_collapsed(self, cur: Any, changes: list[RowChange]) -> None:
        final: dict[tuple[str, str], dict[tuple[Any, ...], dict[str, Any] | None]] = {}
        for change in changes:
            info = self._table(change.schema, change.table)
            rows = final.setdefault((change.schema, change.table), {})
            pk = info.primary_key
            if change.kind == INSERT:
                after = change.after or {}
                rows[tuple(after[c] for c in pk)] = after
            elif change.kind == DELETE:
                before = change.before or {}
                rows[tuple(before[c] for c in pk)] = None
            else:
                before, after = change.before or {}, change.after or {}
                old_key, new_key = tuple(before[c] for c in pk), tuple(after[c] for c in pk)
                if old_key != new_key:
                    rows[old_key] = None
                rows[new_key] = after
        for (schema, table), rows in final.items():
            info = self._table(schema, table)
            deleted = [key for key, row in rows.items() if row is None]
            for start in range(0, len(deleted), _DELETE_CHUNK):
                statement, args = sql.delete_many(info, deleted[start : start + _DELETE_CHUNK])
                cur.execute(statement, args)
            by_columns: dict[tuple[str, ...], list[list[Any]]] = {}
            for row in rows.values():
                if row is not None:
                    by_columns.setdefault(tuple(row), []).append(
                        [sql.db_value(v) for v in row.values()]
                    )
            for columns, values in by_columns.items():
                cur.executemany(sql.upsert_sql(info.qualified, columns), values)

    def _apply_in_order(self, cur: Any, changes: list[RowChange]) -> None:
        run: list[list[Any]] = []
        run_sql = ""
        for change in changes:
            info = self._table(change.schema, change.table)
            if change.kind == INSERT:
                row = change.after or {}
                statement = sql.upsert_sql(info.qualified, tuple(row))
                args = [sql.db_value(v) for v in row.values()]
            elif change.kind == DELETE:
                before = change.before or {}
                statement = sql.delete_one_sql(info.qualified, info.primary_key)
                args = [sql.db_value(before[c]) for c in info.primary_key]
            else:
                before, after = change.before or {}, change.after or {}
                statement = sql.update_sql(info.qualified, tuple(after), info.primary_key)
                args = [sql.db_value(v) for v in after.values()]
                args += [sql.db_value(before[c]) for c in info.primary_key]
            if statement != run_sql and run:
                cur.executemany(run_sql, run)
                run = []
            run_sql = statement
            run.append(args)
        if run:
            cur.executemany(run_sql, run)

    # --- errors --------------------------------------------------------------------

    def _rollback(self) -> None:
        try:
            self.conn.rollback()
        except Exception:  # the connection is gone; the server rolled back for us
            pass

    def _explain(self, exc: pymysql.MySQLError) -> HotsiteError:
        error = explain(exc, self.url, self.site)
        if error.recoverable:
            return error
        return ApplyError(
            f"site {self.site!r}: the target refused a replicated change: {error.message}"
        )


def read_applied(conn: Any, link_key: str) -> AppliedPosition | None:
    """The link's applied position on the target; None when it has none (or a snapshot
    is still loading the target)."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT gtid_state, last_gtid, journal_seq, transactions, ddl_in_progress"
            f" FROM {HOTSITE_SCHEMA}.{APPLIED_TABLE} WHERE link_key = %s AND snapshot_state = ''",
            (link_key,),
        )
        row = cur.fetchone()
    if row is None:
        return None
    return AppliedPosition(GtidState.parse(row[0]), row[1], int(row[2]), int(row[3]), row[4])
