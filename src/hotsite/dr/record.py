"""The record — which site is primary, at which epoch — and the primary's lease.

A small interface (``RecordStore``) so the embedded default (``SqliteRecordStore``, in
the controller's state store) can be replaced by etcd for a controller that runs as
several instances. Every change is a compare-and-set: a move names the epoch it saw,
and only one of two moves that saw the same epoch can begin.

Rules the implementations keep:

- the lease is granted only to the primary, at the current epoch, while no move is in
  flight: once a move has begun, the old primary can no longer renew, so waiting for
  ``lease_expires + clock_margin`` is enough to know it has fenced itself;
- ``finish_move`` increments the epoch and names the new primary; the new primary holds
  no lease until its agent asks for one;
- times are the controller's wall clock (seconds since the epoch, ``time.time()``), so
  a restarted controller still knows when the last lease ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hotsite.errors import HotsiteError


class RecordConflict(HotsiteError):
    """A compare-and-set lost: the record changed since it was read (another move)."""


class MoveInFlight(RecordConflict):
    """A move has begun and not finished; a second one is refused."""


@dataclass(frozen=True)
class Move:
    id: str
    kind: str  # failover, relocate, failback, promote
    target: str  # the site that becomes primary
    started: float  # controller wall clock
    step: str = "begun"  # the last step reached, so a restarted controller can resume


@dataclass(frozen=True)
class Record:
    primary: str
    epoch: int
    lease_holder: str | None = None
    lease_expires: float = 0.0  # controller wall clock; 0: never granted
    move: Move | None = None

    def lease_left(self, now: float) -> float:
        return max(0.0, self.lease_expires - now) if self.lease_holder else 0.0

    def as_dict(self, now: float) -> dict[str, object]:
        return {
            "primary": self.primary,
            "epoch": self.epoch,
            "lease_holder": self.lease_holder,
            "lease_left": round(self.lease_left(now), 3),
            "move": None
            if self.move is None
            else {
                "id": self.move.id,
                "kind": self.move.kind,
                "target": self.move.target,
                "step": self.move.step,
            },
        }


@dataclass(frozen=True)
class Grant:
    """The answer to a lease request: granted (for ``ttl`` seconds) or refused, and why."""

    granted: bool
    ttl: float
    record: Record
    reason: str = ""


class RecordStore(Protocol):
    def read(self) -> Record | None:
        """The record, or None before the first ``initialise``."""

    def initialise(self, primary: str) -> Record:
        """The record, made at epoch 1 with ``primary`` if there is none yet."""

    def grant_lease(self, site: str, epoch: int, ttl: float, now: float) -> Grant:
        """Grant or renew the lease to ``site``, if it is the primary at ``epoch`` and no
        move is in flight, until ``now + ttl`` (never earlier than it was granted). The
        grant's ``ttl`` is what is left of the lease from ``now``. ``ttl`` 0: the lease is
        not extended (the controller suspects the site) — granted for what is left of
        it, refused once it has ended."""

    def begin_move(self, move: Move, expected_epoch: int) -> Record:
        """Start a move; RecordConflict when the epoch moved on, MoveInFlight when a move
        has begun. From now on no lease is granted."""

    def advance_move(self, move_id: str, step: str) -> Record:
        """Record the step a move has reached."""

    def finish_move(self, move_id: str) -> Record:
        """The move's target becomes primary at epoch + 1; the move is cleared."""

    def abort_move(self, move_id: str) -> Record:
        """The move is cleared, the primary and epoch unchanged."""
