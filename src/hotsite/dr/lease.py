"""The lease keeper: the agent duty that holds the primary's lease, and fences its own
database when it cannot renew the lease before it ends.

It runs in a thread of its own, not in the agent's poll: the deadline to fence must not
depend on how busy the agent's loop is. Each ``interval`` it asks the controller:

- granted: the lease is good until (time the request was *sent*) + ttl, by this
  machine's monotonic clock — earlier than the controller's own count, which starts
  when it answered; the controller adds ``clock_margin`` before promoting another site;
- refused (a move has begun, another site is primary, the epoch moved on, the lease ran
  out while the controller suspected the site): the controller is taking the lease
  away, so the database is fenced at once;
- granted but not extended (the controller suspects the site: its ``ttl`` is what is
  left): counted like any grant, from the moment the request was sent;
- no answer: nothing changes until ``fence_before`` seconds before the lease ends; then
  the database is fenced (kind ``lease``).

A keeper that starts and cannot reach the controller fences a writable database at
once: while the agent was down, the controller may have promoted the other site. A
keeper whose site is not the primary keeps its database read-only (fence kind ``move``):
an old primary that a failover could not reach comes back fenced, not writable.

A ``lease`` fence is lifted by the keeper itself when the controller grants the lease
again at the same epoch (no move began meanwhile, so no other site was promoted); a
``move`` fence never is (that is failback's or ``promote --force``'s).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import pymysql

from hotsite.dr.client import ControllerRefused, ControllerUnreachable
from hotsite.dr.fence import FenceState
from hotsite.dr.ticker import Ticker
from hotsite.errors import HotsiteError
from hotsite.logs import get_logger

log = get_logger(__name__)


class Controller(Protocol):
    def record(self) -> dict[str, Any]: ...
    def lease(self, site: str, epoch: int) -> dict[str, Any]: ...


class Fence(Protocol):
    def state(self) -> FenceState: ...
    def fence(
        self, kind: str, epoch: int | None, reason: str, list_bypass: bool = True
    ) -> FenceState: ...
    def unfence(self) -> FenceState: ...


class LeaseKeeper:
    def __init__(
        self,
        site: str,
        controller: Controller,
        fence: Fence,
        *,
        interval: float,
        fence_before: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = "lease"
        self.site = site
        self._controller = controller
        self._fence = fence
        self._fence_before = fence_before
        self._clock = clock
        self._ticker = Ticker(
            f"lease-{site}", self.step, interval, clock, (HotsiteError, pymysql.MySQLError),
            self._step_failed,
        )  # fmt: skip
        self._lock = threading.Lock()
        # What poll reports; written by the keeper's thread under _lock.
        self.role = "unknown"  # primary, standby, unknown
        self.epoch: int | None = None
        self.expires: float | None = None  # None: no lease held
        self.fenced_at: float | None = None  # when this keeper last fenced (monotonic)
        self.fenced_wall: float | None = None  # the same, wall clock: after read_only was on
        self.last_error = ""
        self._first = True
        self._check_fence = True  # look for a lease fence to lift at the next grant

    # -- the Duty protocol ---------------------------------------------------------

    def start(self) -> None:
        self._first = True
        self._check_fence = True
        self._ticker.start()

    def poll(self) -> dict[str, Any]:
        failure = self._ticker.failure()
        if failure is not None:
            raise HotsiteError(f"the lease keeper of site {self.site!r} stopped ({failure})")
        with self._lock:
            left = None if self.expires is None else max(0.0, self.expires - self._clock())
            return {
                "site": self.site,
                "role": self.role,
                "epoch": self.epoch,
                "holding": self.expires is not None,
                "lease_left": None if left is None else round(left, 3),
                "fenced_by_keeper": self.fenced_at is not None,
                "fenced_at": self.fenced_wall,
                "error": self.last_error,
            }

    def stop(self) -> None:
        self._ticker.stop()

    # -- the keeper's thread -------------------------------------------------------

    def _step_failed(self, exc: Exception) -> None:
        # The database could not be fenced (or read) this time: say so, and try again
        # next interval; the lease's end is still tracked.
        self.last_error = f"site {self.site!r} database: {exc}"
        log.warning("lease keeper step failed", site=self.site, error=str(exc))

    def step(self) -> None:
        """One renewal attempt and, if the lease is running out, the fence."""
        sent = self._clock()
        try:
            if self.epoch is None:
                self._learn_role(self._controller.record())
            self.last_error = ""
            if self.epoch is not None and self.role == "primary":
                self._answer(self._controller.lease(self.site, self.epoch), sent)
        except (ControllerUnreachable, ControllerRefused) as exc:
            self.last_error = str(exc)
            if self._first:
                self._fence_if_writable("no answer from the controller at the agent's start")
        finally:
            self._first = False
        if self.expires is not None and self._clock() >= self.expires - self._fence_before:
            self._fence_now(f"the lease could not be renewed ({self.last_error or 'refused'})")

    def _learn_role(self, record: dict[str, Any]) -> None:
        with self._lock:
            if record.get("primary") == self.site and record.get("move") is None:
                self.role, self.epoch = "primary", int(record["epoch"])
            else:
                self.role = "standby"
        move = record.get("move")
        if isinstance(move, dict) and move.get("target") == self.site:
            return  # being promoted: the move makes it writable, then names it primary
        if self.role == "standby":
            # A site that is not the primary takes no writes: an old primary that came
            # back after a failover that could not reach it is writable, and is fenced
            # here like the move would have (only a failback or promote lifts it).
            # hotsite's applier writes through read_only (READ_ONLY ADMIN).
            state = self._fence.state()
            if state.writable:
                primary = record.get("primary")
                log.warning("fencing a writable standby", site=self.site, primary=primary)
                self._fence.fence("move", record.get("epoch"), f"not the primary ({primary} is)")

    def _answer(self, answer: dict[str, Any], sent: float) -> None:
        if answer.get("granted"):
            with self._lock:
                self.expires = sent + float(answer["ttl"])
            self.last_error = str(answer.get("reason") or "")  # granted, but not extended
            # A grant that did not extend the lease (the controller suspects this site)
            # may leave less than fence_before: lifting a lease fence then would only
            # fence again at once.
            if self._check_fence and self.expires - self._clock() > self._fence_before:
                state = self._fence.state()
                if state.fenced and state.kind == "lease" and state.epoch in (None, self.epoch):
                    log.warning("lease granted again: lifting the lease fence", site=self.site)
                    self._fence.unfence()
                self.fenced_at = None
                self._check_fence = False
            return
        record = answer.get("record") or {}
        self._fence_now(f"the controller refused the lease ({answer.get('reason')})")
        with self._lock:
            self.epoch = None  # learn the record again next time
            if record.get("primary") != self.site:
                self.role = "standby"

    def _fence_if_writable(self, reason: str) -> None:
        state = self._fence.state()
        if state.writable:
            self._fence_now(reason, epoch=None)

    def _fence_now(self, reason: str, epoch: int | None = -1) -> None:
        # The first fence reads nothing first: every millisecond counts before the lease
        # ends, and a fence is idempotent (a move's fence already there is kept, see
        # fence.fence). A later one checks whether someone lifted ours meanwhile.
        state = self._fence.state() if self.fenced_at is not None else None
        if state is None or not (state.fenced and state.read_only):
            log.warning("fencing this site's database", site=self.site, reason=reason)
            self._fence.fence(
                "lease", self.epoch if epoch == -1 else epoch, reason, list_bypass=False
            )
            self.fenced_at = self._clock()
            self.fenced_wall = time.time()
        self._check_fence = True
        with self._lock:
            self.expires = None
