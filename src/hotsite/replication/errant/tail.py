"""The errant tail of an old primary: the transactions it committed that never reached
the site that took over, read back from its own binlog.

The tail starts where the link old→new had been applied at the new primary (its
applied position, in the old primary's GTIDs) and ends at the old primary's
``gtid_binlog_pos``. It is read with capture's own reader (``BinlogCapture``, on
python-mysql-replication: breadth of types matters more than speed for a tail), so a
transaction means here what it means to replication: hotsite's own writes (heartbeats,
fence rows, position rows) are not part of it, and a transaction applied at the old
primary from elsewhere (it carries an origin marker) is emptied like a link would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hotsite.dburl import DatabaseURL
from hotsite.errors import HotsiteError
from hotsite.replication.capture.binlog import BinlogCapture
from hotsite.replication.gtid import GtidState
from hotsite.replication.schema import HOTSITE_SCHEMA
from hotsite.replication.transactions import Transaction

READ_TIMEOUT = 120.0  # seconds to read a tail: it is on disk, the wait is never for writes


@dataclass
class ErrantTail:
    site: str
    start: GtidState  # what the new primary had applied of the old one
    end: GtidState  # the old primary's gtid_binlog_pos when the tail was read
    transactions: list[Transaction] = field(default_factory=list)
    # Why the tail could not be read whole (a statement-logged change, say): the
    # transactions read up to there are still exported, and undoing is impossible.
    problem: str | None = None

    @property
    def rows(self) -> int:
        return sum(len(tx.changes) for tx in self.transactions)

    @property
    def empty(self) -> bool:
        return not self.transactions and self.problem is None


def read_tail(
    url: DatabaseURL,
    site: str,
    project: str,
    matches: Callable[[str, str], bool],
    server_id: int,
    start: GtidState,
    end: GtidState,
    timeout: float = READ_TIMEOUT,
) -> ErrantTail:
    """The old primary's own transactions after ``start`` up to ``end``, in commit order."""
    tail = ErrantTail(site, start.copy(), end.copy())
    if start.reached(end):
        return tail
    capture = BinlogCapture(
        url,
        site,
        server_id,
        matches,
        start,
        heartbeat_period=0.2,
        decoder="library",
        project=project,
        ships=lambda origin: False,  # another site's transaction is nobody's errant write
        notes=True,
    )
    deadline = time.monotonic() + timeout
    try:
        for tx in capture.transactions(threading.Event()):
            if tx is not None:
                _keep(tail, tx)
            if capture.position.reached(end):
                break
            if time.monotonic() > deadline:
                tail.problem = (
                    f"the tail was not read to {end} within {timeout:g} s (read to"
                    f" {capture.position})"
                )
                break
    except HotsiteError as exc:
        tail.problem = exc.message
    finally:
        capture.close()
    return tail


def _keep(tail: ErrantTail, tx: Transaction) -> None:
    """A transaction with data changes or DDL; a big one's parts joined back into one."""
    tx.changes = [c for c in tx.changes if c.schema != HOTSITE_SCHEMA]
    if not tx.changes and tx.ddl is None:
        return
    last = tail.transactions[-1] if tail.transactions else None
    if last is not None and last.gtid == tx.gtid:
        last.changes.extend(tx.changes)
        last.ddl = last.ddl if last.ddl is not None else tx.ddl
        return
    tail.transactions.append(tx)
