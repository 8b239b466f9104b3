"""The capture side of a link, run in its own process: capture, ship, heartbeats.

Decoding the binlog is CPU-bound Python; running it in a process of its own keeps it
from competing with apply for one interpreter lock, so the two stages use both cores.
The parent passes a picklable ``CaptureJob`` and reads progress reports from a queue.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotsite.db import connect, query_value
from hotsite.dburl import DatabaseURL
from hotsite.errors import HotsiteError
from hotsite.faults import fault_point
from hotsite.replication.capture.binlog import BinlogCapture
from hotsite.replication.gtid import Gtid, GtidState
from hotsite.replication.heap import freeze_startup_heap
from hotsite.replication.journal import Journal
from hotsite.replication.schema import HEARTBEAT_TABLE, HOTSITE_SCHEMA
from hotsite.replication.stats import StageStats
from hotsite.replication.trace import StageTrace
from hotsite.replication.transactions import Transaction
from hotsite.tablematch import table_matcher

SHIP_BATCH = 2000
QUEUE_DEPTH = 20000  # transactions decoded but not yet shipped …
QUEUE_BYTES = 16 << 20  # … and their binlog bytes (~8x that in Python objects): bounded memory
RETRY_SECONDS = 1.0
# Journal upkeep, off ship's path: a WAL checkpoint this often, and every TRIM_EVERY s the
# trim of what apply has applied, TRIM_CHUNK entries per write (ship waits for one at most).
CHECKPOINT_EVERY = 1.0
# Idle, each wake-up of a thread costs CPU for nothing: the stats reach the agent once a
# second (its status files are written once a second), and the ship thread, which
# capture's queue wakes, looks at the stop flag once a second (stopping wakes it at once).
STATS_EVERY = 1.0
SHIP_IDLE_WAIT = 1.0
TRIM_EVERY = 10.0
TRIM_CHUNK = 500
# Between two trim writes: a thread lock is not fair, and the trim thread, still holding
# the interpreter, would take it again before a waiting ship wakes up.
TRIM_PAUSE = 0.01
# The source sends a binlog heartbeat after this long without events: the capture thread
# sees a stop request at the latest then, so it bounds how long stopping an idle link
# takes (every `replicate --until-caught-up` ends that way).
IDLE_HEARTBEAT = 0.2


@dataclass(frozen=True)
class CaptureJob:
    source_url: DatabaseURL
    source_site: str
    link_name: str
    server_id: int  # the replica server id presented to the source (identity.py)
    patterns: tuple[str, ...]
    journal_path: str
    heartbeat_interval: float
    decoder: str = "fast"
    project: str = ""
    # Origins whose transactions, applied at the source from elsewhere, this link ships
    # on (a ring); the rest of the source's applied transactions are emptied (_routed).
    forwards: frozenset[str] = frozenset()
    target_site: str = ""
    notes: bool = True  # see BinlogCapture: False where the target writes to other sites
    # The agent that started this process: taken in the agent, not read by the process
    # once it runs, or an agent that died during its start-up would go unnoticed.
    parent_pid: int = 0


class CaptureSide:
    """Capture → bounded queue → ship to the journal, plus the heartbeat writer."""

    def __init__(
        self, job: CaptureJob, report: Any, stop: Any, wake: Any = None, applied: Any = None
    ) -> None:
        self.job = job
        self.report = report
        self.stop = stop
        # The journal seq apply has applied up to (a shared, lock-free int it writes), for
        # the trim; None: never trim (nobody says what is applied).
        self.applied = applied
        self.write_lock = threading.Lock()  # ship's appends and upkeep's trims, in turn
        # The write end of a pipe whose read end apply waits on: one byte after every
        # append wakes it (never blocks: a full pipe has woken it already).
        self.wake_fd: int | None = wake.fileno() if wake is not None else None
        if self.wake_fd is not None:
            os.set_blocking(self.wake_fd, False)
        # None: the process stops (wakes the ship thread; never shipped)
        self.queue: queue.Queue[Transaction | None] = queue.Queue(QUEUE_DEPTH)
        self.queued_bytes = 0  # binlog bytes of the transactions in the queue
        self.budget = threading.Condition()
        self.capture = StageStats()
        self.ship = StageStats()
        self.source_position = ""
        self.journal = Journal(Path(job.journal_path), autocheckpoint=False)
        start = self.journal.source_state() or GtidState()
        self.capture_position = start.copy()
        self.ship_position = start.copy()
        self.capture.position = self.ship.position = str(start)
        self.matches = table_matcher(list(job.patterns), job.source_url.database)
        self.trace = StageTrace("capture")

    def run(self) -> None:
        threads = [
            threading.Thread(target=self._guard, args=(self._capture_loop,), daemon=True),
            threading.Thread(target=self._guard, args=(self._ship_loop,), daemon=True),
            threading.Thread(target=self._guard, args=(self._heartbeat_loop,), daemon=True),
            threading.Thread(target=self._guard, args=(self._upkeep_loop,), daemon=True),
        ]
        for thread in threads:
            thread.start()
        parent = self.job.parent_pid or os.getppid()
        while not self.stop.is_set():
            if os.getppid() != parent:  # the agent was killed: do not outlive it
                self.stop.set()
                break
            self._send_stats()
            self.stop.wait(STATS_EVERY)
        with contextlib.suppress(queue.Full):  # full: ship is busy, and sees stop anyway
            self.queue.put_nowait(None)  # wakes an idle ship now, not at its timeout
        for thread in threads:
            thread.join(timeout=5)
        self._send_stats()
        self.trace.close()

    def _guard(self, loop: Any) -> None:
        try:
            loop()
        except HotsiteError as exc:
            self.report.put(("fatal", str(exc)))
            self.stop.set()
        except Exception as exc:  # a bug: report it rather than die silently
            self.report.put(("fatal", f"capture failed: {type(exc).__name__}: {exc}"))
            self.stop.set()

    def _capture_loop(self) -> None:
        job = self.job
        while not self.stop.is_set():
            reader = BinlogCapture(
                job.source_url,
                job.source_site,
                job.server_id,
                self.matches,
                self.capture_position,
                heartbeat_period=max(0.1, min(job.heartbeat_interval or 1.0, IDLE_HEARTBEAT)),
                decoder=job.decoder,
                project=job.project,
                ships=job.forwards.__contains__,
                target=job.target_site,
                notes=job.notes,
            )
            try:
                for tx in reader.transactions(self.stop):
                    if tx is None:
                        continue
                    if self.trace.enabled:
                        self.trace.note("captured", (tx.gtid,))
                    self.capture.transactions += tx.final
                    self.capture.rows += tx.row_count
                    # Its text is made for each report (_send_stats), not per transaction.
                    self.capture_position = reader.position.copy()
                    if tx.heartbeat_ts is not None:
                        self.capture.saw_heartbeat(tx.heartbeat_ts)
                    self._wait_for_room(tx.size)
                    while not self.stop.is_set():
                        try:
                            self.queue.put(tx, timeout=0.2)
                            break
                        except queue.Full:
                            continue
            except HotsiteError as exc:
                if not exc.recoverable:
                    raise
                self.report.put(("warning", str(exc)))
                self.stop.wait(RETRY_SECONDS)

    def _wait_for_room(self, size: int) -> None:
        """Block capture while the queue holds QUEUE_BYTES (one item always fits)."""
        with self.budget:
            while self.queued_bytes and self.queued_bytes + size > QUEUE_BYTES:
                if self.stop.is_set():
                    return
                self.budget.wait(0.2)
            self.queued_bytes += size

    def _shipped(self, batch: list[Transaction]) -> None:
        with self.budget:
            self.queued_bytes -= sum(tx.size for tx in batch)
            self.budget.notify_all()

    def _ship_loop(self) -> None:
        while not self.stop.is_set() or not self.queue.empty():
            try:
                first = self.queue.get(timeout=SHIP_IDLE_WAIT)
            except queue.Empty:
                continue
            if first is None:
                continue
            batch = [first]
            while len(batch) < SHIP_BATCH:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    break
                batch.append(item)
            if self.trace.enabled:
                self.trace.note("batched", (tx.gtid for tx in batch))
            for tx in batch:
                if tx.final:  # a part of a transaction does not move the position
                    self.ship_position.advance(Gtid.parse(tx.gtid))
            with self.write_lock:
                self.journal.append([tx for tx in batch if not tx.skip], self.ship_position)
            self._shipped(batch)
            self._wake_apply()
            if self.trace.enabled:
                self.trace.note("journaled", (tx.gtid for tx in batch))
            fault_point("ship.after_append")
            now = time.time()
            self.ship.transactions += sum(tx.final and not tx.skip for tx in batch)
            self.ship.rows += sum(tx.row_count for tx in batch)
            self.ship.position = str(self.ship_position)
            for tx in batch:
                if tx.heartbeat_ts is not None:
                    self.ship.saw_heartbeat(tx.heartbeat_ts, now)

    def _wake_apply(self) -> None:
        if self.wake_fd is None:
            return
        try:
            os.write(self.wake_fd, b"\0")
        except OSError:  # full (apply is awake already), or apply is gone
            pass

    def _upkeep_loop(self) -> None:
        """Checkpoint the journal's WAL and trim what apply has applied, in a thread of
        their own: ship never waits for a checkpoint, and for one short trim write at most
        (a thread lock, not SQLite's busy handler, which sleeps in steps of milliseconds)."""
        journal = Journal(Path(self.job.journal_path), autocheckpoint=False)
        trim_at = time.monotonic() + 1  # soon after a start, then every TRIM_EVERY seconds
        try:
            while not self.stop.wait(CHECKPOINT_EVERY):
                journal.checkpoint()
                if self.applied is not None and time.monotonic() >= trim_at:
                    applied = int(self.applied.value)
                    while not self.stop.is_set():
                        with self.write_lock:
                            deleted = journal.trim(applied, limit=TRIM_CHUNK)
                        if deleted < TRIM_CHUNK:
                            break
                        self.stop.wait(TRIM_PAUSE)
                    fault_point("journal.after_trim")
                    trim_at = time.monotonic() + TRIM_EVERY
        finally:
            journal.close()

    def _heartbeat_loop(self) -> None:
        """Write heartbeats and read the source's own position, reconnecting as needed."""
        job = self.job
        interval = job.heartbeat_interval or 1.0
        conn = None
        seq = 0
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = connect(job.source_url, job.source_site)
                if job.heartbeat_interval > 0:
                    seq += 1
                    with conn.cursor() as cur:
                        cur.execute(
                            f"INSERT INTO {HOTSITE_SCHEMA}.{HEARTBEAT_TABLE} (site, ts, seq)"
                            " VALUES (%s, UNIX_TIMESTAMP(NOW(6)), %s)"
                            " ON DUPLICATE KEY UPDATE ts = VALUES(ts), seq = VALUES(seq)",
                            (job.source_site, seq),
                        )
                self.source_position = str(
                    query_value(conn, "SELECT @@GLOBAL.gtid_binlog_pos") or ""
                )
            except HotsiteError:
                conn = None  # the source is down; capture reports it, we retry quietly
            except Exception:
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # already broken
                        pass
                conn = None
            self.stop.wait(interval)
        if conn is not None:
            conn.close()

    def _send_stats(self) -> None:
        self.capture.position = str(self.capture_position)
        self.capture.tick()
        self.ship.tick()
        self.ship.pending = self.queue.qsize()
        self.report.put(
            (
                "stats",
                {
                    "source_position": self.source_position,
                    "capture": self.capture.as_dict(self.job.heartbeat_interval),
                    "ship": self.ship.as_dict(self.job.heartbeat_interval),
                },
            )
        )


def run_capture_side(job: CaptureJob, report: Any, wake: Any = None, applied: Any = None) -> None:
    """Process entry point (multiprocessing 'spawn'); SIGTERM or SIGINT stop it cleanly.

    The stop flag is a plain threading.Event set from a signal handler, not a
    multiprocessing.Event: a process killed while inside a shared Event's lock would
    leave that lock held and hang whoever sets the Event next.
    """
    from hotsite.logs import configure_logging

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    configure_logging(False)
    # The library logs its own reconnects as warnings; we report outages ourselves.
    logging.getLogger("pymysqlreplication").setLevel(logging.ERROR)
    try:
        side = CaptureSide(job, report, stop, wake, applied)
        freeze_startup_heap()
        side.run()
    except HotsiteError as exc:
        report.put(("fatal", str(exc)))
    except KeyboardInterrupt:
        pass
