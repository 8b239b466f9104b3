"""Apply journaled transactions to a MariaDB/MySQL target, exactly once.

Consecutive source transactions are grouped into one target transaction when apply is
behind, and the position reached (``hotsite.hotsite_applied``) is written in that same
target transaction: after a crash of anything, apply resumes from that row with
nothing lost and nothing applied twice. How rows are written, and how changes that find
the target diverged are counted (``mismatches``, in the same row), is in rows.py; how a
DDL statement interrupted by a crash is told apart from one that never ran, in ddl.py.

Errors say what to do (errors.py): a lock wait or deadlock on the target, or the target
going away, is recoverable (the agent retries); anything else the target refuses stops
the link.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pymysql
from pymysql.constants import CLIENT

from hotsite.db import connect, error_reason, prepare_writer
from hotsite.dburl import DatabaseURL
from hotsite.errors import ApplyError, HotsiteError, JournalError
from hotsite.faults import fault_point
from hotsite.logs import get_logger
from hotsite.replication.apply import ddl as ddl_check
from hotsite.replication.apply import statements as sql
from hotsite.replication.apply.errors import (
    TargetBusy,
    explain_target_error,
    oversized_row,
    without_values,
)
from hotsite.replication.apply.origin_book import OriginBook
from hotsite.replication.apply.prepare import prepare
from hotsite.replication.apply.rows import Mismatch, RowWriter
from hotsite.replication.conflicts import log as conflict_log
from hotsite.replication.conflicts.writer import ConflictWriter
from hotsite.replication.gtid import Gtid, GtidState
from hotsite.replication.journal import JournalEntry
from hotsite.replication.origins import ddl_comment, ensure_origin_tables, write_ddl_session
from hotsite.replication.rowversions import APPLY_VARIABLE
from hotsite.replication.schema import (
    APPLIED_TABLE,
    HOTSITE_SCHEMA,
    NoPrimaryKey,
    TableInfo,
    describe,
    ensure_hotsite_schema,
    quote,
)
from hotsite.replication.transactions import RowChange, Transaction

log = get_logger(__name__)

_MISMATCHES_LOGGED = 10  # per group; the rest are summed up in one line


@dataclass
class AppliedPosition:
    gtid_state: GtidState
    last_gtid: str
    journal_seq: int
    transactions: int
    ddl_in_progress: str
    ddl_fingerprint: str = ""
    mismatches: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # changes left out, per table


class MySQLApplier:
    def __init__(
        self,
        url: DatabaseURL,
        site: str,
        origin: str,
        link_key: str,
        replicated_schema: Callable[[str], bool] | None = None,
        warn: Callable[[str], None] | None = None,
        conflicts: Callable[[Callable[[str, str], TableInfo]], ConflictWriter] | None = None,
    ) -> None:
        self.url = url
        self.site = site
        self.origin = origin
        self.link_key = link_key
        self.warn = warn  # where the agent collects warnings for 'hotsite status'
        # which target schemas a DDL fingerprint covers besides the DDL's own
        self.replicated_schema = replicated_schema or (lambda schema: schema == url.database)
        self.conn: Any = None
        self.position = AppliedPosition(GtidState(), "", 0, 0, "")
        self._tables: dict[tuple[str, str], TableInfo] = {}
        self._keyless: set[tuple[str, str]] = set()
        self._rows = RowWriter(site, self._table)
        self.project = link_key.split("/", 1)[0]
        self.origins = OriginBook(self.project, origin, site)
        # At a site that takes writes itself (both directions), changes go through the
        # conflict writer; conflicts counted per table for 'hotsite status'.
        self._conflicts = conflicts(self._table) if conflicts else None
        self.conflict_counts: dict[str, int] = {}
        self.parked = 0
        self._pending_conflicts: list[Any] = []  # written, not yet committed
        self._parts_origin: GtidState | None = None
        # A transaction that travels in parts, written but not committed yet:
        # (gtid, its last part written, the mismatches found so far).
        self._open_parts: tuple[str, int, list[Mismatch]] | None = None
        self.max_packet = 0
        # MariaDB judges a group's existence counts itself (WriteBatch.guard): its writes
        # and COMMIT go in one round trip. Set when the target is known (open).
        self._guarded = False

    # --- connection and position -------------------------------------------------

    def open(self) -> AppliedPosition | None:
        """Connect and read the applied position; None when nothing was ever applied."""
        self.close()
        # FOUND_ROWS: an UPDATE reports the rows it matched, so 0 means "no such row".
        # MULTI_STATEMENTS: a group's writes travel in one round trip (sql.WriteBatch).
        self.conn = connect(
            self.url,
            self.site,
            autocommit=True,
            client_flag=CLIENT.FOUND_ROWS | CLIENT.MULTI_STATEMENTS,
        )
        try:
            prepare_writer(self.conn)
            with self.conn.cursor() as cur:
                # The session a DDL's own (from the source) is swapped with, and back.
                cur.execute(
                    "SET @hotsite_sql_mode = @@SESSION.sql_mode,"
                    " @hotsite_client = @@SESSION.character_set_client,"
                    " @hotsite_connection = @@SESSION.collation_connection,"
                    " @hotsite_server = @@SESSION.collation_server"
                )
                # row-version triggers leave this session's writes to it (rowversions.py)
                cur.execute(f"SET {APPLY_VARIABLE} = 1")
                cur.execute("SELECT @@GLOBAL.max_allowed_packet, VERSION()")
                packet, version = cur.fetchone()
                self.max_packet = int(packet)
                self._guarded = "mariadb" in str(version).lower()
                _keep_in_lists_as_ranges(cur)
            ensure_hotsite_schema(self.conn)
            with self.conn.cursor() as cur:
                ensure_origin_tables(cur)
                conflict_log.ensure_conflicts_table(cur)
            self.conn.autocommit(False)
            position = read_applied(self.conn, self.link_key)
            with self.conn.cursor() as cur:
                self.origins.load(cur)
                self.conflict_counts = conflict_log.counts_by_table(
                    cur, self.project, self.link_key
                )
                self.parked = conflict_log.parked_count(cur, self.project, self.link_key)
            self.conn.commit()
        except pymysql.MySQLError as exc:  # the target went away again while we set up
            self.close()
            raise self._explain(exc) from None
        if position:
            self.position = position
        self._tables.clear()
        self._keyless.clear()
        self._open_parts = None  # the server rolled back whatever was open
        return position

    def tables_changed(self) -> None:
        """Tables (and their row-version shadows) came or went: read them again."""
        self._tables.clear()
        self._keyless.clear()
        if self._conflicts is not None:
            self._conflicts.shadows.forget()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # already broken: nothing to release
                pass
            self.conn = None

    # --- applying ------------------------------------------------------------------

    def apply(self, entries: list[JournalEntry]) -> list[Transaction]:
        """Apply entries in order; returns the transactions applied (skipping duplicates).

        A transaction in parts may stay open when the entries end before its last part;
        the next call goes on with it (a reconnect rolls it back and starts it again).
        """
        applied: list[Transaction] = []
        group: list[Transaction] = []
        group_origin: str | None = None  # the origin of the group's counted transactions
        last_seq = self.position.journal_seq
        try:
            for entry in entries:
                tx = entry.transaction()
                gtid = Gtid.parse(tx.gtid)
                if self.position.gtid_state.covers(gtid):
                    continue  # applied before a crash or a journal rebuild
                if tx.part == 0:
                    self.origins.drop_if_applied(tx)
                if tx.ddl is None:
                    self._prepare(tx)  # (after the DDL, for a DDL with rows)
                if self._open_parts is not None or tx.part or not tx.final:
                    if group:
                        self._commit_group(group, last_seq)
                        applied += group
                        group, group_origin = [], None
                    if self._apply_part(tx, entry.seq):
                        applied.append(tx)
                elif tx.ddl is not None:
                    if group:
                        self._commit_group(group, last_seq)
                        applied += group
                        group, group_origin = [], None
                    self._apply_ddl(tx, entry.seq, rows_follow=bool(tx.changes))
                    if tx.changes:  # CREATE TABLE … SELECT: its rows, with the position
                        self._prepare(tx)
                        self._commit_group([tx], entry.seq)
                    applied.append(tx)
                else:
                    if group and self._starts_new_group(group, group_origin, tx):
                        self._commit_group(group, last_seq)
                        applied += group
                        group, group_origin = [], None
                    group.append(tx)
                    if group_origin is None and OriginBook.counts(tx):
                        group_origin = self.origins.origin_of(tx)
                last_seq = entry.seq
            if group:
                self._commit_group(group, last_seq)
                applied += group
        except pymysql.MySQLError as exc:
            self._rollback()
            raise self._oversized(entries, exc) or self._explain(exc) from None
        except HotsiteError:
            self._rollback()
            raise
        return applied

    def _starts_new_group(
        self, group: list[Transaction], group_origin: str | None, tx: Transaction
    ) -> bool:
        """A target transaction carries one origin (its origin row says which), and a
        resolution (written as it is everywhere) travels alone, as do the settlements of
        conflicts decided at the source (in order with the source's own changes).

        ``group_origin`` is the origin of the group's counted transactions (one, as this
        keeps it), noted as the group grows: comparing with every member instead made a
        group of 2,000 cost 0.3 s, about half of apply's time on a backlog."""
        if tx.forced or group[-1].forced or tx.settlements or group[-1].settlements:
            return True
        if not OriginBook.counts(tx):
            return False
        return group_origin is not None and self.origins.origin_of(tx) != group_origin

    def _prepare(self, tx: Transaction) -> None:
        for table in prepare(tx, self._table_with_key, self.position.skipped):
            message = (
                f"site {self.site!r}: table {table} has no primary key: its changes are not"
                " replicated (counted in 'hotsite status'); add a primary key or leave the"
                " table out of replication.tables"
            )
            log.warning("changes left out", message=message)
            if self.warn is not None:
                self.warn(message)

    def _apply_part(self, tx: Transaction, seq: int) -> bool:
        """Write one part of a big transaction into the open target transaction; commit it
        with the position at its final part (True then)."""
        if tx.part == 0:
            if self._open_parts is not None:
                raise self._broken_parts(tx, "a new transaction began before the last ended")
            if tx.ddl is not None:
                self._apply_ddl(tx, seq, rows_follow=True)
                self._prepare(tx)
            with self.conn.cursor() as cur:
                self._parts_origin = self.origins.mark(cur, self.origins.origin_of(tx), [tx])
            self._open_parts = (tx.gtid, 0, [])
        elif self._open_parts is None or self._open_parts[:2] != (tx.gtid, tx.part - 1):
            raise self._broken_parts(tx, f"part {tx.part} does not follow the parts before it")
        gtid, _, mismatches = self._open_parts
        with self.conn.cursor() as cur:
            mismatches = mismatches + self._write_changes(cur, tx.changes, tx, [tx])
        self._open_parts = (gtid, tx.part, mismatches)
        if not tx.final:
            return False
        self._open_parts = None
        with self.conn.cursor() as cur:
            state = self.position.gtid_state.copy()
            state.advance(Gtid.parse(tx.gtid))
            total = self.position.mismatches + len(mismatches)
            self._write_position(cur, state, tx, seq, 1, mismatches=total)
        fault_point("apply.before_commit")
        self.conn.commit()
        fault_point("apply.after_commit")
        self._advance(state, tx.gtid, seq, 1, mismatches=total)
        self.origins.committed(self.origins.origin_of(tx), self._parts_origin)
        self._conflicts_committed()
        if mismatches:
            self._report(mismatches)
        return True

    def _broken_parts(self, tx: Transaction, why: str) -> HotsiteError:
        return JournalError(
            f"journal of {self.origin}->{self.site}: transaction {tx.gtid} is not whole ({why})",
            "move the journal aside: the target's own position rebuilds it",
        )

    def _oversized(
        self, entries: list[JournalEntry], exc: pymysql.MySQLError
    ) -> HotsiteError | None:
        return oversized_row(entries, exc, self.max_packet, self.site)

    def _commit_group(self, group: list[Transaction], last_seq: int) -> None:
        changes = [change for tx in group for change in tx.changes]
        counted = [tx for tx in group if OriginBook.counts(tx)]
        origin = self.origins.origin_of(counted[0]) if counted else self.origin
        state = self.position.gtid_state.copy()
        for tx in group:
            state.advance(Gtid.parse(tx.gtid))
        with self.conn.cursor() as cur:
            if self._conflicts is None and (not changes or self._collapsible(changes)):
                writes = sql.WriteBatch(cur, self._batch_limit())
                origin_state = self.origins.mark(
                    writes, origin, group
                )  # first: capture reads it first
                mismatches, committed = self._write_collapsed(
                    cur, writes, changes, group, state, last_seq
                )
            else:
                committed = False
                origin_state = self.origins.mark(cur, origin, group)
                mismatches = self._write_changes(
                    cur, changes, counted[-1] if counted else None, group
                )
                if self._conflicts is not None:
                    for tx in group:
                        if tx.settlements:
                            self._conflicts.settle(cur, tx.settlements)
                self._write_position(
                    cur, state, group[-1], last_seq, len(group),
                    mismatches=self.position.mismatches + len(mismatches),
                )  # fmt: skip
        total = self.position.mismatches + len(mismatches)
        if not committed:
            fault_point("apply.before_commit")
            self.conn.commit()
        fault_point("apply.after_commit")
        self._advance(state, group[-1].gtid, last_seq, len(group), mismatches=total)
        self.origins.committed(origin, origin_state)
        self._conflicts_committed()
        if mismatches:
            self._report(mismatches)

    def _write_collapsed(
        self, cur: Any, writes: sql.WriteBatch, changes: list[RowChange],
        group: list[Transaction], state: GtidState, last_seq: int,
    ) -> tuple[list[Mismatch], bool]:  # fmt: skip
        """A group of collapsible changes in one round trip: its origin row (queued in
        ``writes`` already), the existence counts, the deletes and upserts, the position
        — and on MariaDB the COMMIT too, behind the server's own judgement of the counts
        (``WriteBatch.guard``). Where a count is off (the target had diverged: rare), the
        writes are taken back to the counts' savepoint and made again after the keys were
        found, with the mismatches counted in the position; the target transaction is the
        same one, committed by the caller. Returns the mismatches, and whether the group
        is committed already."""
        as_expected = self._rows.queue_collapsed(cur, changes, writes, guarded=self._guarded)
        self._write_position(
            writes, state, group[-1], last_seq, len(group), mismatches=self.position.mismatches
        )
        if self._guarded:
            writes.execute("COMMIT")
            fault_point("apply.before_commit")  # nothing sent yet: the crash loses nothing
            try:
                writes.send()
                return [], True
            except pymysql.err.OperationalError as exc:
                if tuple(exc.args[:2]) != sql.GUARD_ERROR:
                    raise
        else:
            writes.send()
            if as_expected():
                return [], False
        writes.undo()
        again = sql.WriteBatch(cur, self._batch_limit())
        mismatches = self._rows.apply_collapsed(cur, changes, again)
        total = self.position.mismatches + len(mismatches)
        self._write_position(again, state, group[-1], last_seq, len(group), mismatches=total)
        again.send()
        return mismatches, False

    def _write_changes(
        self,
        cur: Any,
        changes: list[RowChange],
        tx: Transaction | None,
        group: list[Transaction],
    ) -> list[Mismatch]:
        """Write a group's changes: through the conflict writer at a site that takes
        writes itself (with each transaction's row versions), else as they are."""
        if self._conflicts is not None and tx is not None:
            if tx.forced:  # a resolution made by hand: taken as it is, settles parked ones
                self._settle_parked(cur, changes)
                self._conflicts.take_versions(cur, [v for t in group for v in t.versions])
            elif changes or any(t.versions for t in group):
                own = [c for c in changes if c.schema == HOTSITE_SCHEMA]
                theirs = [
                    ([c for c in t.changes if c.schema != HOTSITE_SCHEMA], t.versions)
                    for t in group
                ]
                result = self._conflicts.apply(
                    cur, theirs, self.origins.origin_of(tx), OriginBook.origin_gtid(tx)
                )
                self._pending_conflicts.append(result)
                changes = own
        if not changes:
            return []
        if self._collapsible(changes):
            return self._rows.apply_collapsed(cur, changes)
        return self._rows.apply_in_order(cur, changes)

    def _batch_limit(self) -> int:
        """Characters per multi-statement: well inside the server's max_allowed_packet."""
        return (
            min(sql.MAX_STATEMENT, self.max_packet // 2) if self.max_packet else sql.MAX_STATEMENT
        )

    def _settle_parked(self, cur: Any, changes: list[RowChange]) -> None:
        keys: dict[str, list[dict[str, Any]]] = {}
        for change in changes:
            info = self._table(change.schema, change.table)
            row = change.after or change.before or {}
            keys.setdefault(f"{change.schema}.{change.table}", []).append(
                {c: row.get(c) for c in info.primary_key}
            )
        for table, rows in keys.items():
            ids = conflict_log.parked_on_keys(cur, self.project, table, rows)
            conflict_log.mark_resolved(cur, self.project, ids, "resolved at another site")

    def _conflicts_committed(self) -> None:
        for result in self._pending_conflicts:
            for table, count in result.conflicts.items():
                self.conflict_counts[table] = self.conflict_counts.get(table, 0) + count
            self.parked += result.parked
        self._pending_conflicts = []

    def _report(self, mismatches: list[Mismatch]) -> None:
        for m in mismatches[:_MISMATCHES_LOGGED]:
            log.warning(
                "target row not as the source had it; the source's row was written",
                site=self.site,
                table=m.table,
                key=m.key,
                change=m.what,
            )
        if len(mismatches) > _MISMATCHES_LOGGED:
            log.warning(
                "more target rows not as the source had them",
                site=self.site,
                more=len(mismatches) - _MISMATCHES_LOGGED,
                total=self.position.mismatches,
            )

    def _apply_ddl(self, tx: Transaction, seq: int, rows_follow: bool = False) -> None:
        """Run a DDL statement exactly once. With ``rows_follow`` (CREATE TABLE … SELECT, or
        the first part of a big transaction) its rows come next, in the target transaction
        that writes the position; until then the DDL's mark stays, so a crash in between
        finds the statement done (its fingerprint changed) and goes on with the rows."""
        state = self.position.gtid_state.copy()
        state.advance(Gtid.parse(tx.gtid))
        p = self.position
        # A fingerprint taken before an earlier attempt that may have run the statement.
        before = p.ddl_fingerprint if p.ddl_in_progress == tx.gtid else ""
        if before == ddl_check.DDL_FAILED:
            before = ""  # it failed before: run it again (the user may have fixed the target)
        with self.conn.cursor() as cur:
            took_effect = False
            if before:
                if ddl_check.still_running(cur, ddl_check.text(self._ddl_sql(tx))):
                    raise TargetBusy(
                        f"site {self.site!r}: DDL {tx.gtid} from before a lost connection is"
                        " still running on the target",
                        "waiting for it to end before judging whether it took effect",
                    )
                took_effect = ddl_check.took_effect(before, self._fingerprint(cur, tx))
            if took_effect:
                log.warning("ddl took effect before a crash; not run again", gtid=tx.gtid)
            else:
                if not before:
                    # Mark the DDL and fingerprint the schema before running it: DDL commits
                    # by itself, so after a crash this row tells whether it took effect.
                    fingerprint = self._fingerprint(cur, tx)
                    self._write_ddl_mark(cur, tx.gtid, fingerprint)
                    self.conn.commit()
                fault_point("apply.ddl.before_run")
                write_ddl_session(
                    cur,
                    self.project,
                    self.origins.origin_of(tx),
                    OriginBook.origin_gtid(tx),
                    tx.origin_first,
                )
                self.conn.commit()
                self._run_ddl(cur, tx)
            self._tables.clear()
            self._keyless.clear()
            if rows_follow:
                return
            fault_point("apply.ddl.before_position")
            origin = self.origins.origin_of(tx)
            origin_state = self.origins.mark(cur, origin, [tx])
            self._write_position(cur, state, tx, seq, 1, mismatches=p.mismatches)
        self.conn.commit()
        self._advance(state, tx.gtid, seq, 1, mismatches=p.mismatches)
        self.origins.committed(origin, origin_state)

    def _ddl_sql(self, tx: Transaction) -> str | bytes:
        """The statement with its origin in a leading comment, which the binlog keeps: the
        capture at this site knows it for an applied one (origins.py)."""
        comment = ddl_comment(
            self.project, self.origins.origin_of(tx), OriginBook.origin_gtid(tx), tx.origin_first
        )
        ddl = tx.ddl or ""
        return comment.encode() + ddl if isinstance(ddl, bytes) else comment + ddl

    def _run_ddl(self, cur: Any, tx: Transaction) -> None:
        try:
            if tx.ddl_schema:
                cur.execute(f"USE {quote(tx.ddl_schema)}")
            session = ddl_check.source_session(tx.ddl_context)
            if session:
                # The statement means what its session on the source made it mean.
                cur.execute("SET SESSION " + ", ".join(f"{n} = %s" for n, _ in session),
                            [value for _, value in session])  # fmt: skip
            try:
                cur.execute(self._ddl_sql(tx))
            finally:
                if session:
                    cur.execute(
                        "SET SESSION sql_mode = @hotsite_sql_mode,"
                        " character_set_client = @hotsite_client,"
                        " collation_connection = @hotsite_connection,"
                        " collation_server = @hotsite_server"
                    )
        except pymysql.MySQLError as exc:
            error = self._explain(exc)
            if error.recoverable:
                raise error from None
            # Stays stopped on every restart: the statement is tried again, and refused
            # again, until the target is fixed (or reloaded by a snapshot).
            self._write_ddl_mark(cur, tx.gtid, ddl_check.DDL_FAILED)
            self.conn.commit()
            raise ApplyError(
                f"site {self.site!r}: the target refused DDL {tx.gtid}"
                f" {ddl_check.shown(ddl_check.text(tx.ddl))!r}: {without_values(error_reason(exc))}",
                f"fix the target schema so that this statement can run on {self.site!r}, then"
                " run 'hotsite replicate' again (it retries the statement); or run"
                " 'hotsite snapshot' to reload the target",
            ) from None

    def _fingerprint(self, cur: Any, tx: Transaction) -> str:
        return ddl_check.fingerprint(cur, tx.ddl_schema, self.replicated_schema)

    def _write_ddl_mark(self, cur: Any, gtid: str, fingerprint: str) -> None:
        p = self.position
        self._write_position(
            cur,
            p.gtid_state,
            None,
            p.journal_seq,
            0,
            mismatches=p.mismatches,
            ddl=gtid,
            fingerprint=fingerprint,
        )
        self.position = AppliedPosition(
            p.gtid_state,
            p.last_gtid,
            p.journal_seq,
            p.transactions,
            gtid,
            fingerprint,
            p.mismatches,
            p.skipped,
        )

    def _advance(self, state: GtidState, gtid: str, seq: int, count: int, mismatches: int) -> None:
        p = self.position
        self.position = AppliedPosition(
            state, gtid, seq, p.transactions + count, "", "", mismatches, p.skipped
        )

    def _write_position(
        self,
        cur: Any,
        state: GtidState,
        last: Transaction | None,
        seq: int,
        count: int,
        *,
        mismatches: int,  # the cumulative count: required, a default would reset it
        ddl: str = "",
        fingerprint: str = "",
    ) -> None:
        cur.execute(
            f"INSERT INTO {HOTSITE_SCHEMA}.{APPLIED_TABLE}"
            " (link_key, origin, gtid_state, last_gtid, journal_seq, transactions, source_commit_ts, applied_at,"
            " ddl_in_progress, ddl_fingerprint, mismatches, skipped)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON DUPLICATE KEY UPDATE gtid_state = VALUES(gtid_state), last_gtid = VALUES(last_gtid),"
            " journal_seq = VALUES(journal_seq), transactions = VALUES(transactions),"
            " source_commit_ts = VALUES(source_commit_ts), applied_at = VALUES(applied_at),"
            " ddl_in_progress = VALUES(ddl_in_progress), ddl_fingerprint = VALUES(ddl_fingerprint),"
            " mismatches = VALUES(mismatches), skipped = VALUES(skipped)",
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
                fingerprint,
                mismatches,
                json.dumps(self.position.skipped) if self.position.skipped else None,
            ),
        )

    # --- tables --------------------------------------------------------------------

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

    def _table_with_key(self, schema: str, table: str) -> TableInfo | None:
        """The table's description, or None when it has no primary key."""
        key = (schema, table)
        if key in self._keyless:
            return None
        if key not in self._tables:
            try:
                self._tables[key] = describe(self.conn, schema, table)
            except NoPrimaryKey:
                self._keyless.add(key)
                return None
            except HotsiteError:
                pass  # _table says what is wrong
        return self._table(schema, table)

    def _collapsible(self, changes: list[RowChange]) -> bool:
        """Collapsing is exact for tables whose only unique key is the primary key and on
        which the target has no triggers (a trigger must fire once per source change)."""
        tables = {(c.schema, c.table) for c in changes}
        for schema, table in tables:
            info = self._table(schema, table)
            if info.has_other_unique_keys or info.has_triggers:
                return False
        return True

    # --- errors --------------------------------------------------------------------

    def _rollback(self) -> None:
        self._pending_conflicts = []
        try:
            self.conn.rollback()
        except Exception:  # the connection is gone; the server rolled back for us
            pass

    def _explain(self, exc: pymysql.MySQLError) -> HotsiteError:
        return explain_target_error(exc, self.url, self.site)


def _keep_in_lists_as_ranges(cur: Any) -> None:
    """MariaDB rewrites an IN list of 1000+ values into a join with a table of values;
    for the primary-key lookups apply sends (deletes, existence counts) plain index
    ranges measured ~30% faster. Other servers have no such rewrite (nor the variable)."""
    try:
        cur.execute("SET SESSION in_predicate_conversion_threshold = 0")
    except pymysql.err.OperationalError:
        pass


def read_applied(conn: Any, link_key: str) -> AppliedPosition | None:
    """The link's applied position on the target; None when it has none (or a snapshot
    is still loading the target)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT gtid_state, last_gtid, journal_seq, transactions, ddl_in_progress,"
            f" ddl_fingerprint, mismatches, skipped FROM {HOTSITE_SCHEMA}.{APPLIED_TABLE}"
            " WHERE link_key = %s AND snapshot_state = ''",
            (link_key,),
        )
        row = cur.fetchone()
    if row is None:
        return None
    return AppliedPosition(
        GtidState.parse(row[0]),
        row[1],
        int(row[2]),
        int(row[3]),
        row[4],
        row[5],
        int(row[6]),
        json.loads(row[7]) if row[7] else {},
    )
