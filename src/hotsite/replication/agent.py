"""A replication link at work: prepare, snapshot when needed, stream until stopped.

The capture side (capture, ship, heartbeats) runs in a child process; apply runs in a
thread of this one. They meet only in the journal file, so either can crash and restart
without the other noticing more than lag.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotsite import faults
from hotsite.config import LinkConfig, ProjectConfig
from hotsite.db import connect, query_value
from hotsite.errors import DatabaseUnavailable, HotsiteError
from hotsite.locks import FileLock
from hotsite.logs import get_logger
from hotsite.replication import rowversions
from hotsite.replication.apply.ddl import schema_matcher
from hotsite.replication.apply.mysql import MySQLApplier, read_applied
from hotsite.replication.capture.checks import check_link_source
from hotsite.replication.capture.process import CaptureJob, run_capture_side
from hotsite.replication.conflicts import ConflictWriter, check_key_ranges, check_policy_columns
from hotsite.replication.gtid import GtidState
from hotsite.replication.heap import freeze_startup_heap
from hotsite.replication.identity import (
    LinkGuard,
    check_distinct_servers,
    check_position_owner,
    check_replica_server_id,
    replica_server_id,
    source_lineage,
)
from hotsite.replication.journal import Journal
from hotsite.replication.origins import read_load
from hotsite.replication.privileges import (
    require_target_privileges,
    require_version_trigger_privileges,
)
from hotsite.replication.schema import ensure_hotsite_schema, list_tables
from hotsite.replication.snapshot import (
    Progress,
    SnapshotResult,
    snapshot,
    write_start_position,
)
from hotsite.replication.stats import StageStats
from hotsite.replication.support import check_link_support
from hotsite.replication.trace import StageTrace
from hotsite.statefiles import StatusFile
from hotsite.tablematch import table_matcher

log = get_logger(__name__)
# Caught up, apply sleeps until capture appends to the journal (a byte on a pipe), or
# this long at most: a shared multiprocessing.Event would do, but a capture process
# killed inside its lock would leave it held and hang apply (run_capture_side).
APPLY_IDLE_WAIT = 1.0
RETRY_FIRST, RETRY_MAX = 0.1, 5.0  # apply's retry delay: doubled after each failure


def link_lock(config: ProjectConfig, link: LinkConfig) -> FileLock:
    return FileLock(
        config.home / "locks" / f"{link.name}.lock",
        f"replication link {link.source}->{link.target}",
    )


@dataclass
class LinkStatus:
    link: str
    source_position: str = ""
    capture: dict[str, Any] = field(default_factory=dict)
    ship: dict[str, Any] = field(default_factory=dict)
    apply: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    updated_at: float = 0.0


class LinkAgent:
    def __init__(self, config: ProjectConfig, link: LinkConfig) -> None:
        self.config = config
        self.link = link
        self.source = config.site(link.source)
        self.target = config.site(link.target)
        self.source_url = self.source.database_url
        self.target_url = self.target.database_url
        self.matches = table_matcher(link.tables, self.source_url.database)
        self.journal_path = config.journal_path(link)
        self.link_key = config.link_key(link)
        self.server_id = replica_server_id(self.link_key, link.server_id)
        self.guard = LinkGuard(
            self.source_url,
            link.source,
            self.target_url,
            link.target,
            self.link_key,
            self.server_id,
        )
        self.lineage = ""
        routes = config.routes
        # What travels on this link besides the source's own transactions (a ring), and
        # whether the target takes writes itself (then changes go through conflicts).
        self.forwards = routes.forwards(link.source, link.target)
        self.two_way = routes.two_way(link.target)
        self.writers = routes.writers()
        # Both ends take writes: both keep row versions (rowversions.py).
        self.versioned = self.two_way and link.source in self.writers
        self._applier: MySQLApplier | None = None
        # A target position the journal was last proven to feed: the same position needs
        # no second proof (a trim never forgets what the target still needs), and the
        # proof reads every journal row.
        self._journal_feeds: GtidState | None = None
        self.status = LinkStatus(link=link.name)
        self.apply_stats = StageStats()
        self.error: str | None = None
        self.apply_mismatches = 0  # changes that found the target row not as the source had it
        self._apply_trouble: tuple[str, str] | None = None  # (kind, warning) while failing
        self._stop = threading.Event()
        self._process: Any = None
        self._apply_thread: threading.Thread | None = None
        self._report: Any = None
        self._wake: Any = None  # read end of capture's wake-up pipe
        self._applied_seq: Any = None
        self._status_file: StatusFile | None = None
        self._trace = StageTrace("apply")

    # --- preparation ---------------------------------------------------------------

    def check(self, force: bool = False) -> list[str]:
        """Prove the two ends are distinct servers, take the link's locks, then check the
        source (settings, keys) and the target; return warnings. Nothing is written to
        either server before the identity checks pass."""
        source = connect(self.source_url, self.link.source)
        try:
            target = connect(self.target_url, self.link.target)
            try:
                ends = check_distinct_servers(source, self.link.source, target, self.link.target)
                check_replica_server_id(self.server_id, *ends, self._other_server_ids())
                self.guard.acquire()
                warnings, schemas = check_link_source(
                    source,
                    self.link.source,
                    self.source_url.database,
                    self.link.tables,
                    self.matches,
                )
                check_link_support(
                    source,
                    self.link.source,
                    target,
                    self.link.target,
                    self.matches,
                    self.link.decoder,
                )
                require_target_privileges(target, self.link.target, schemas)
                if self.two_way:
                    self._check_two_way(source, target)
                ensure_hotsite_schema(source)
                self.lineage = source_lineage(source)
                ensure_hotsite_schema(target)
                if not force:
                    check_position_owner(
                        target, self.link_key, self.lineage, self.link.source, self.link.target
                    )
            finally:
                target.close()
        finally:
            source.close()
        return warnings

    def _check_two_way(self, source: Any, target: Any) -> None:
        """Both ends take writes: ids must not collide, policy columns must exist."""
        if self.link.source in self.writers:
            check_key_ranges(
                [(self.link.source, source), (self.link.target, target)], len(self.writers)
            )
        target_tables = list_tables(target, self.matches)
        check_policy_columns(target, self.link.target, target_tables, self.config.conflicts)
        if self.versioned:
            ends = [
                (source, self.link.source, list_tables(source, self.matches)),
                (target, self.link.target, target_tables),
            ]
            for conn, site, tables in ends:  # both checked before either gets a trigger
                schemas = sorted({schema for schema, _ in tables})
                require_version_trigger_privileges(conn, site, schemas)
            for conn, site, tables in ends:
                rowversions.ensure(conn, site, tables)

    def _ensure_versions(self) -> None:
        """Row-version triggers and shadows on every replicated table of both ends: at
        start (``_check_two_way``), after a snapshot (which re-creates the target's tables)
        and after an applied DDL (a new table). A table created at the source gets them
        here, when its DDL has come through: its changes until then are judged by images."""
        for url, site in ((self.source_url, self.link.source), (self.target_url, self.link.target)):
            conn = connect(url, site)
            try:
                rowversions.ensure(conn, site, list_tables(conn, self.matches))
            finally:
                conn.close()

    def _conflict_writer(self, table: Any) -> ConflictWriter:
        return ConflictWriter(
            self.config.project_name,
            self.link.target,
            self.link_key,
            self.config.conflicts,
            self.config.site_priority(),
            table,
        )

    def seed_from_reverse(self) -> GtidState | None:
        """Start this link without a snapshot where its source was itself loaded from its
        target by the link the other way: at the source's position right after that load
        (recorded by the snapshot), so the loaded rows do not travel back and every write
        the source took since does. None when there is no such load to start from."""
        reverse = next(
            (
                other
                for other in self.config.replication
                if other.source == self.link.target and other.target == self.link.source
            ),
            None,
        )
        if reverse is None:
            return None
        source = connect(self.source_url, self.link.source)
        try:
            loaded = read_load(source, self.config.link_key(reverse))
        finally:
            source.close()
        if loaded is None:
            return None
        target = connect(self.target_url, self.link.target, autocommit=False)
        try:
            write_start_position(target, self.link_key, self.link.source, self.lineage, loaded)
            target.commit()
        finally:
            target.close()
        journal = Journal(self.journal_path)
        try:
            journal.reset(loaded)
        finally:
            journal.close()
        log.info("link started at the position after the reverse load", link=self.link.name)
        return loaded

    def _other_server_ids(self) -> dict[str, int]:
        """Replica server ids of the project's other links from the same source."""
        return {
            other.name: replica_server_id(self.config.link_key(other), other.server_id)
            for other in self.config.replication
            if other.name != self.link.name and other.source == self.link.source
        }

    def close(self) -> None:
        """Release the link's server-side locks (the server also does when we die)."""
        self.guard.release()

    def needs_snapshot(self) -> bool:
        conn = connect(self.target_url, self.link.target)
        try:
            return read_applied(conn, self.link_key) is None
        finally:
            conn.close()

    def snapshot(self, progress: Progress | None = None, force: bool = False) -> SnapshotResult:
        journal = Journal(self.journal_path)
        try:
            return snapshot(
                self.source_url,
                self.link.source,
                self.target_url,
                self.link.target,
                self.matches,
                journal,
                self.link_key,
                self.lineage,
                progress,
                force,
                target_takes_writes=any(
                    other.source == self.link.target for other in self.config.replication
                ),
                versions=self.versioned,
            )
        finally:
            journal.close()
            if self.versioned:
                self._ensure_versions()

    def align_journal(self) -> GtidState:
        """Start capture where the journal ends, unless the journal cannot feed the target
        (missing, older than the target, missing transactions the target still needs, or
        damaged): then it restarts at the target's own position, the authority, and
        capture re-reads the rest from the source (or says that the source purged it)."""
        conn = connect(self.target_url, self.link.target)
        try:
            applied = read_applied(conn, self.link_key)
        finally:
            conn.close()
        journal = Journal(self.journal_path)
        try:
            state = journal.source_state()
            if applied is None:
                return state or GtidState()
            reason = journal.distrust(applied.gtid_state)
            if reason is not None:
                if state is not None:
                    log.warning("journal restarted at the target's position", reason=reason)
                journal.reset(applied.gtid_state)
                state = applied.gtid_state
            self._journal_feeds = applied.gtid_state
            return state or GtidState()
        finally:
            journal.close()

    def source_position(self) -> GtidState:
        conn = connect(self.source_url, self.link.source)
        try:
            return GtidState.parse(query_value(conn, "SELECT @@GLOBAL.gtid_binlog_pos"))
        finally:
            conn.close()

    # --- running -------------------------------------------------------------------

    def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._report = ctx.Queue()
        self._wake, wake_writer = ctx.Pipe(duplex=False)
        # How far apply got in the journal, for the capture side's trims: a shared int
        # without a lock (one writer; a killed process cannot leave it held).
        self._applied_seq = ctx.Value("q", 0, lock=False)
        os.set_blocking(self._wake.fileno(), False)
        job = CaptureJob(
            source_url=self.source_url,
            source_site=self.link.source,
            link_name=self.link.name,
            server_id=self.server_id,
            patterns=tuple(self.link.tables),
            journal_path=str(self.journal_path),
            heartbeat_interval=self.link.heartbeat_interval,
            decoder=self.link.decoder,
            project=self.config.project_name,
            forwards=self.forwards,
            target_site=self.link.target,
            notes=not self.two_way,
            parent_pid=os.getpid(),
        )
        self._process = ctx.Process(
            target=run_capture_side,
            args=(job, self._report, wake_writer, self._applied_seq),
            name="hotsite-capture",
            daemon=True,
        )
        self._process.start()
        wake_writer.close()  # the capture process holds its own: its end closes with it
        freeze_startup_heap()
        self._apply_thread = threading.Thread(
            target=self._apply_loop, name="hotsite-apply", daemon=True
        )
        self._apply_thread.start()

    def poll(self) -> LinkStatus:
        """Collect reports from the capture process; refresh the status; raise on fatal errors."""
        while True:
            try:
                kind, payload = self._report.get_nowait()
            except queue.Empty:
                break
            if kind == "stats":
                self.status.source_position = payload["source_position"]
                self.status.capture = payload["capture"]
                self.status.ship = payload["ship"]
            elif kind == "warning":
                self._warn(payload)
            elif kind == "fatal":
                self.error = payload
        if self._process is not None and not self._process.is_alive() and not self._stop.is_set():
            if faults.armed() and self._process.exitcode == faults.FAULT_EXIT_STATUS:
                faults.crash("the capture process hit its fault point")  # die with it
            self.error = self.error or "the capture process exited unexpectedly"
        self.guard.refresh()  # LockedError when another agent took the link meanwhile
        self.apply_stats.tick()
        self.status.apply = {
            **self.apply_stats.as_dict(self.link.heartbeat_interval),
            "mismatches": self.apply_mismatches,
        }
        applier = self._applier
        if applier is not None and self.two_way:
            self.status.apply["conflicts"] = dict(applier.conflict_counts)
            self.status.apply["parked"] = applier.parked
        self.status.updated_at = time.time()
        self._write_status()
        if self.error:
            raise HotsiteError(self.error)
        return self.status

    def applied_position(self) -> GtidState:
        return GtidState.parse(self.apply_stats.position)

    def stop(self) -> None:
        self._stop.set()
        if self._process is not None and self._process.is_alive():
            self._process.terminate()  # SIGTERM: the capture side ships what it has and exits
        if self._apply_thread is not None:
            self._apply_thread.join(timeout=10)
        if self._process is not None:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
        if self._report is not None:
            self._report.close()
            self._report.join_thread()
        if self._wake is not None:
            self._wake.close()
        self._trace.close()
        self.status.updated_at = 0.0  # tells 'hotsite status' that no agent runs any more
        self._write_status()

    def _warn(self, message: str) -> None:
        if message not in self.status.warnings:
            self.status.warnings = [*self.status.warnings[-4:], message]
        log.warning("replication", message=message)

    def _apply_loop(self) -> None:
        journal = Journal(self.journal_path)
        applier = MySQLApplier(
            self.target_url,
            self.link.target,
            self.link.source,
            self.link_key,
            schema_matcher(self.link.tables, self.source_url.database),
            warn=self._warn,
            conflicts=self._conflict_writer if self.two_way else None,
        )
        self._applier = applier
        stats = self.apply_stats
        delay = RETRY_FIRST
        try:
            while not self._stop.is_set():
                try:
                    self._apply_until_stopped(journal, applier, stats)
                except HotsiteError as exc:
                    if not exc.recoverable:
                        self.error = str(exc)
                        return
                    if self._apply_trouble is None:
                        delay = RETRY_FIRST  # a new outage: retry soon, then back off
                    self._apply_troubled(exc)
                    self._stop.wait(delay)
                    delay = min(delay * 2, RETRY_MAX)
        except Exception as exc:  # a bug: stop the agent with the reason
            self.error = f"apply failed: {type(exc).__name__}: {exc}"
        finally:
            applier.close()
            journal.close()

    def _wait_for_entries(self) -> None:
        """Until capture says it appended (or APPLY_IDLE_WAIT): a byte read before the
        journal was read only makes one more empty read, never a missed entry."""
        if self._wake is None:
            self._stop.wait(APPLY_IDLE_WAIT)
            return
        fd = self._wake.fileno()
        ready, _, _ = select.select([fd], [], [], APPLY_IDLE_WAIT)
        if ready:
            try:
                if not os.read(fd, 65536):  # no writer left: capture is gone
                    self._stop.wait(APPLY_IDLE_WAIT)
            except BlockingIOError:
                pass

    def _apply_troubled(self, exc: HotsiteError) -> None:
        """One warning when apply starts failing (or fails differently), not one a retry."""
        kind = "unreachable" if isinstance(exc, DatabaseUnavailable) else "busy"
        if self._apply_trouble is not None and self._apply_trouble[0] == kind:
            return
        if kind == "unreachable":
            message = f"target {self.link.target} unreachable: {exc.message}; retrying"
        else:
            message = f"target {self.link.target} busy: {exc.message}; retrying"
        self._apply_trouble = (kind, message)
        self._warn(message)

    def _apply_recovered(self, kind: str) -> None:
        if self._apply_trouble is None or self._apply_trouble[0] != kind:
            return
        message = self._apply_trouble[1]
        self._apply_trouble = None
        self.status.warnings = [w for w in self.status.warnings if w != message]
        what = "reachable again" if kind == "unreachable" else "applies again"
        log.warning("replication", message=f"target {self.link.target} {what}")

    def _apply_until_stopped(
        self, journal: Journal, applier: MySQLApplier, stats: StageStats
    ) -> None:
        position = applier.open()
        self._apply_recovered("unreachable")
        if position is None:
            raise HotsiteError(
                f"site {self.link.target!r} has no replication position from {self.link.source!r}",
                "run 'hotsite snapshot' first",
            )
        # The target may have gone back in time while we were away from it (restored from
        # a backup while apply reconnected): never scan past what the journal lost.
        reason = None
        if position.gtid_state != self._journal_feeds:
            reason = journal.distrust(position.gtid_state)
        if reason is not None:
            raise HotsiteError(
                f"site {self.link.target!r}: the journal can no longer feed the target ({reason})",
                "run 'hotsite replicate' again: it restarts the journal at the target's"
                " position and re-reads the rest from the source",
            )
        self._journal_feeds = position.gtid_state
        cursor = journal.seq_of(position.last_gtid) if position.last_gtid else None
        cursor = cursor if cursor is not None else 0  # unknown: scan, skipping what is covered
        stats.position = str(position.gtid_state)
        stats.transactions = position.transactions
        self.apply_mismatches = position.mismatches
        pending_at = 0.0
        trace = self._trace
        while not self._stop.is_set():
            entries = journal.read(cursor, self.link.batch_transactions, self.link.batch_rows)
            if not entries:
                stats.pending = 0
                self._wait_for_entries()
                continue
            if trace.enabled:
                trace.note("read", (entry.gtid for entry in entries))
            applied = applier.apply(entries)
            if trace.enabled:
                trace.note("committed", (tx.gtid for tx in applied))
            if self.versioned and any(tx.ddl is not None for tx in applied):
                self._ensure_versions()
                applier.tables_changed()
            self._apply_recovered("busy")
            now = time.time()
            cursor = entries[-1].seq
            stats.pending = max(0, journal.last_seq() - cursor)
            stats.position = str(applier.position.gtid_state)
            stats.transactions = applier.position.transactions
            stats.rows += sum(tx.row_count for tx in applied)
            self.apply_mismatches = applier.position.mismatches
            for tx in applied:
                if tx.heartbeat_ts is not None:
                    stats.saw_heartbeat(tx.heartbeat_ts, now)
            if self._applied_seq is not None:
                self._applied_seq.value = cursor  # the capture side trims up to it
            if time.monotonic() > pending_at:
                stats.oldest_pending_ts = journal.oldest_commit_after(cursor) or 0.0
                pending_at = time.monotonic() + 1.0

    def _write_status(self) -> None:
        if self._status_file is None:
            self._status_file = StatusFile(status_path(self.config, self.link))
        status = self.status
        shape = (status.updated_at == 0.0, tuple(status.warnings), self.error)
        self._status_file.write(json.dumps(status.__dict__, default=str), shape)


def status_path(config: ProjectConfig, link: LinkConfig) -> Path:
    return config.home / "status" / f"{link.name}.json"


def run_until(agent: LinkAgent, done: Callable[[LinkStatus], bool], interval: float = 0.25) -> None:
    """Poll the agent until ``done`` says so (or an error/KeyboardInterrupt)."""
    while True:
        status = agent.poll()
        if done(status):
            return
        time.sleep(interval)
