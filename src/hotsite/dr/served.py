"""When each site last and first served a request through the entry point during a move.

HAProxy counts, per server, the requests it answered 2xx (``EntryControl.served``) but
keeps no times. So a move samples those counters every ``every`` seconds (20 ms) from
its first hold to the new primary's first answer: the sample at which a site's count
went up is when it served (at most ``every`` late). That gives a move its write-to-write
RTO as the entry point saw it: the old primary's last 2xx while the move ran, the new
primary's first after the switch. A failover away from a dead site sees no last answer
(it stopped before the move began): the move counts from the fault's time instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from hotsite.errors import HotsiteError


class ServedSampler:
    def __init__(
        self,
        read: Callable[[], dict[str, int]],
        every: float = 0.02,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._read = read
        self._every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._last_up: dict[str, float] = {}  # site → sample time its count last rose
        self._after: dict[str, int] = {}  # site → its count when traffic was routed to it
        self._first: dict[str, float] = {}  # site → first rise after that
        self._first_seen = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="entry-served", daemon=True)

    def start(self) -> ServedSampler:
        self._sample()  # the counts before anything moved
        self._thread.start()
        return self

    def routed(self, sites: set[str]) -> None:
        """Traffic goes to ``sites`` from now on: their next answer is their first."""
        self._sample()
        with self._lock:
            for site in sites:
                self._after[site] = self._counts.get(site, 0)
                self._first.pop(site, None)
            self._first_seen.clear()

    def first_after(self, site: str, timeout: float) -> float | None:
        """When ``site`` first answered 2xx after it was routed to (waits up to
        ``timeout``); None: it did not, or was not routed to."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if site in self._first or site not in self._after:
                    return self._first.get(site)
            left = deadline - time.monotonic()
            if left <= 0 or self._stop.is_set():
                return None
            self._first_seen.wait(min(left, self._every))

    def last_served(self, site: str) -> float | None:
        """When ``site``'s count last rose while sampling (None: it never did)."""
        with self._lock:
            return self._last_up.get(site)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._sample()

    def _sample(self) -> None:
        try:
            counts = self._read()
        except HotsiteError:
            return  # the runtime API missed one sample: the next one tells
        now = self._clock()
        with self._lock:
            for site, count in counts.items():
                before = self._counts.get(site)
                if before is not None and count > before:
                    self._last_up[site] = now
                if site in self._after and site not in self._first and count > self._after[site]:
                    self._first[site] = now
                    self._first_seen.set()
            self._counts = counts
