"""The agent's health report: which other sites it reaches, sent to the controller.

The controller declares a site dead only when it has not reached the site itself for
``dead_after`` seconds *and* another site's agent says the same in a fresh report (see
detector.py). This duty is that other agent's half: every ``interval`` it probes each
other site's database and posts ``{"peers": {"<site>": <seconds since it last reached
it>}}`` (``POST /v1/report``). A site it has never reached counts from the duty's start,
so an agent that comes up beside a dead primary still confirms the death.

The report also says how far each of this site's journals reaches (``"shipped":
{"<source site>": "<GTID state>"}``): a failover waits for the new primary to apply
what reached its journal, and an agent deployed on a node of its site keeps its
journals there, out of the reach of the machine that runs the move
(``LinkPositions.shipped``).

It runs in a thread of its own, like the lease keeper: a probe of an unreachable
database blocks for its timeout, and the agent's poll loop (which runs the replication
links too) must not delay the reports the controller's decision waits for. The probes
of one round run in parallel for the same reason.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from hotsite.dr.client import ControllerRefused, ControllerUnreachable
from hotsite.dr.ticker import Ticker
from hotsite.errors import HotsiteError


class Reports(Protocol):
    def report(self, site: str, report: dict[str, Any]) -> dict[str, Any]: ...
    def close(self) -> None: ...


class PeerReporter:
    """``reachable(site)`` probes a site's database (``ProjectSites.reachable``)."""

    def __init__(
        self,
        site: str,
        peers: Sequence[str],
        reachable: Callable[[str], bool],
        controller: Reports,
        *,
        interval: float,
        shipped: Callable[[], dict[str, str]] = dict,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = "health"
        self._shipped = shipped
        self.site = site
        self.peers = tuple(peer for peer in peers if peer != site)
        self._reachable = reachable
        self._controller = controller
        self._clock = clock
        self._ticker = Ticker(f"peers-{site}", self.step, interval, clock)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._started = clock()
        self.last_reached: dict[str, float] = {}
        self.sent = 0  # reports the controller took
        self.last_error = ""

    # -- the Duty protocol ---------------------------------------------------------

    def start(self) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max(1, len(self.peers)), f"probe-{self.site}")
        self._ticker.start()

    def poll(self) -> dict[str, Any]:
        failure = self._ticker.failure()
        if failure is not None:
            raise HotsiteError(f"the health report of site {self.site!r} stopped ({failure})")
        return {
            "site": self.site,
            "peers": self.unreached(),
            "reports_sent": self.sent,
            "error": self.last_error,
        }

    def stop(self) -> None:
        self._ticker.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._controller.close()

    # -- the reporter's thread -------------------------------------------------------

    def unreached(self) -> dict[str, float]:
        """Seconds since this agent last reached each peer (since its start, if never)."""
        now = self._clock()
        with self._lock:
            return {
                peer: round(now - self.last_reached.get(peer, self._started), 3)
                for peer in self.peers
            }

    def step(self) -> dict[str, float]:
        """Probe every peer once, then report; returns what was reported."""
        began = self._clock()
        probe = self._pool.map if self._pool is not None else map
        failing = []
        for peer, reached in zip(self.peers, probe(self._reachable, self.peers), strict=True):
            if reached:
                with self._lock:
                    # Reached at the probe's start: the safe side (the age is never
                    # understated by how long the probe took).
                    self.last_reached[peer] = began
            else:
                failing.append(peer)
        peers = self.unreached()
        # "failing": this very probe did not reach them — with the controller's own, that
        # makes a site suspect at once (its lease is no longer extended: detector.py).
        report: dict[str, Any] = {"peers": peers, "failing": failing, "at": time.time()}
        journal_error = ""
        try:
            report["shipped"] = self._shipped()
        except HotsiteError as exc:  # a journal that cannot be read: the rest still goes
            journal_error = str(exc)
        try:
            self._controller.report(self.site, report)
            self.sent += 1
            self.last_error = journal_error
        except (ControllerUnreachable, ControllerRefused) as exc:
            self.last_error = str(exc)
        return peers
