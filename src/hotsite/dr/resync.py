"""Re-synchronising an old primary from the new one, on this version's engine: the
replication layer's pieces (errant tail, snapshot, a link at work, verify) put together
for ``failback`` from the project file. ``failback`` only orders the steps.

Positions after the tail is dealt with, so that nothing travels twice nor wrongly:

- the link new→old starts at the new primary's binlog position just before its
  promotion (recorded by the failover): every write it took as primary is after it, and
  before it there is only what it applied from the old primary (marked, never sent back);
  a snapshot sets it itself instead;
- the link old→new (for the relocate back) starts at the old primary's position right
  after the undo — or after the snapshot's load — so the errant tail, and its undo, are
  never shipped.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql

from hotsite.config import LinkConfig, ProjectConfig
from hotsite.db import connect
from hotsite.errors import ConfigError, DatabaseUnavailable, HotsiteError, LockedError
from hotsite.replication.agent import LinkAgent, link_lock
from hotsite.replication.errant import (
    ErrantTail,
    export_tail,
    keys_of,
    log_tail,
    read_tail,
    table_infos,
    undo_tail,
)
from hotsite.replication.gtid import GtidState
from hotsite.replication.identity import replica_server_id, source_lineage
from hotsite.replication.journal import Journal
from hotsite.replication.origins import read_load
from hotsite.replication.positions import applied_position, source_position
from hotsite.replication.schema import ensure_hotsite_schema
from hotsite.replication.snapshot import write_start_position
from hotsite.replication.verify import VerifyOptions, verify_link
from hotsite.tablematch import table_matcher

LOCK_WAIT = 10.0  # seconds to wait for a link's lock (a site agent's duty retrying)
VERIFY_ATTEMPTS = 3


class ProjectResync:
    def __init__(self, config: ProjectConfig) -> None:
        self.config = config

    def links(self, old: str, new: str) -> tuple[LinkConfig, LinkConfig]:
        """(old→new, new→old): failback needs both."""
        found = {(link.source, link.target): link for link in self.config.replication}
        for source, target in ((old, new), (new, old)):
            if (source, target) not in found:
                raise ConfigError(
                    f"failback needs the replication link {source}->{target}, and"
                    f" {self.config.path} has none",
                    f"add {{from: {source}, to: {target}}} under replication: (docs/dr.md,"
                    " 'Links in both directions')",
                )
        return found[(old, new)], found[(new, old)]

    @contextlib.contextmanager
    def holding(self, old: str, new: str) -> Iterator[None]:
        """Both links' locks: nothing streams either way while the tail is dealt with."""
        with contextlib.ExitStack() as stack:
            for link in self.links(old, new):
                stack.enter_context(_wait_for_lock(self.config, link))
            yield

    def errant_tail(self, old: str, new: str) -> ErrantTail:
        forward, _ = self.links(old, new)
        start = applied_position(self.config, forward)
        if start is None:
            raise HotsiteError(
                f"site {new!r} has no replication position from {old!r}: which of {old}'s"
                " transactions it lacks cannot be told",
                f"re-snapshot {old} from {new} by hand ('hotsite snapshot --from {new} --to"
                f" {old} --force'), then 'hotsite relocate --to {old}'",
            )
        end = source_position(self.config, old)
        url = self.config.site(old).database_url
        return read_tail(
            url, old, self.config.project_name, table_matcher(forward.tables, url.database),
            replica_server_id(f"{self.config.link_key(forward)}/errant-tail", None), start, end,
        )  # fmt: skip

    def export(self, tail: ErrantTail, name: str) -> tuple[Path, Path, int]:
        conn = self._connect(tail.site)
        try:
            try:
                keys = keys_of(table_infos(conn, tail))
            except HotsiteError:
                keys = {}  # a table without a key: redo statements name every column
            return export_tail(tail, self.config.home / "failback", name, conn, keys)
        finally:
            conn.close()

    def undo(self, tail: ErrantTail, old: str, new: str) -> int:
        forward, _ = self.links(old, new)
        conn = self._connect(old, autocommit=False, client_flag=pymysql.constants.CLIENT.FOUND_ROWS)
        try:
            return undo_tail(conn, tail, self.config.project_name, self.config.link_key(forward))
        finally:
            conn.close()

    def log_resnapshot(self, tail: ErrantTail, old: str, new: str) -> None:
        """The tail in the old primary's conflict log, as re-snapshotted (before the load)."""
        forward, _ = self.links(old, new)
        conn = self._connect(old)
        try:
            try:
                keys = keys_of(table_infos(conn, tail))
            except HotsiteError:
                keys = {}
            log_tail(
                conn, tail, self.config.project_name, self.config.link_key(forward),
                "re-snapshotted", keys,
            )  # fmt: skip
        finally:
            conn.close()

    def resnapshot(self, old: str, new: str) -> int:
        """Load the old primary from the new one (the link new→old), and start the link
        old→new right after that load. Returns the rows loaded."""
        forward, back = self.links(old, new)
        agent = LinkAgent(self.config, back)
        try:
            agent.check(force=True)
            loaded = agent.snapshot(force=True)
        finally:
            agent.close()
        conn = self._connect(old)
        try:
            after = read_load(conn, self.config.link_key(back))
        finally:
            conn.close()
        self._start_at(forward, after or source_position(self.config, old))
        return loaded.rows

    def seed(self, old: str, new: str, promoted: GtidState) -> None:
        """After an undo: new→old from ``promoted``, old→new from the old primary now."""
        forward, back = self.links(old, new)
        self._start_at(back, promoted)
        self._start_at(forward, source_position(self.config, old))

    @contextlib.contextmanager
    def streaming(self, new: str, old: str) -> Iterator[None]:
        """The link new→old at work in this process while the body runs (its lock is
        held already: failback runs inside ``holding``)."""
        _, back = self.links(old, new)
        agent = LinkAgent(self.config, back)
        agent.check()
        agent.align_journal()
        agent.start()
        stop = threading.Event()
        failure: list[str] = []

        def poll() -> None:
            while not stop.wait(0.1):
                try:
                    agent.poll()
                except HotsiteError as exc:
                    failure.append(exc.message)
                    return

        poller = threading.Thread(target=poll, name="hotsite-failback-link", daemon=True)
        poller.start()
        try:
            yield
        finally:
            stop.set()
            poller.join(timeout=5)
            agent.stop()
            agent.close()
        if failure:
            raise HotsiteError(f"the link {new}->{old} stopped: {failure[0]}")

    def caught_up(self, new: str, old: str, timeout: float) -> bool:
        _, back = self.links(old, new)
        goal = source_position(self.config, new)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            applied = applied_position(self.config, back)
            if applied is not None and applied.reached(goal):
                return True
            time.sleep(0.05)
        return False

    def verify(self, new: str, old: str) -> tuple[bool, str]:
        _, back = self.links(old, new)
        # The new primary's lease keeper fences it, killing every session, when a renewal
        # comes late (and lifts the fence at the next): a read cut that way is read again.
        for attempt in range(VERIFY_ATTEMPTS):
            try:
                report = verify_link(self.config, back, VerifyOptions())
                break
            except DatabaseUnavailable as exc:
                if attempt == VERIFY_ATTEMPTS - 1:
                    raise
                time.sleep(exc.retry_after)
        verdict = {0: "identical", 1: "differences found", 2: "incomplete"}[report.exit_code]
        return report.exit_code == 0, (
            f"{verdict}: {report.rows} rows in {len(report.tables)} tables,"
            f" {report.differing_rows} differing"
        )

    def _start_at(self, link: LinkConfig, position: GtidState) -> None:
        """A link's start position at its target, and its journal restarted there."""
        source = self._connect(link.source)
        try:
            ensure_hotsite_schema(source)
            lineage = source_lineage(source)
        finally:
            source.close()
        target = self._connect(link.target, autocommit=False)
        try:
            ensure_hotsite_schema(target)
            write_start_position(target, self.config.link_key(link), link.source, lineage, position)
            target.commit()
        finally:
            target.close()
        journal = Journal(self.config.journal_path(link))
        try:
            journal.reset(position)
        finally:
            journal.close()

    def _connect(self, site: str, **options: Any) -> Any:
        return connect(self.config.site(site).database_url, site, timeout=10, **options)


@contextlib.contextmanager
def _wait_for_lock(config: ProjectConfig, link: LinkConfig) -> Iterator[None]:
    lock = link_lock(config, link)
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            lock.acquire()
            break
        except LockedError as exc:
            if time.monotonic() >= deadline:
                raise LockedError(
                    f"the link {link.source}->{link.target} is running ({exc.message})",
                    f"stop it ('hotsite replicate' of that link, or the agent of site"
                    f" {link.target}): failback runs it itself, then retry",
                ) from None
            time.sleep(0.2)
    try:
        yield
    finally:
        lock.release()
