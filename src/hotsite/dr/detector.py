"""Declaring a site dead: only when the controller *and* the surviving site's agent have
both failed to reach it for ``dead_after`` seconds.

A cut link between the two sites alone (the controller still reaches both) never
declares anything; nor does a controller cut off from one site whose peer still
reaches it. The agents say what they reach in their health reports:
``{"peers": {"<site>": <seconds since this agent last reached it>}, "failing": [<sites
its last probe did not reach>]}``.

A site is **suspect** as soon as the controller's last probe of it failed and another
site's agent says its own last probe failed too (a fresh report): the controller then
stops extending that site's lease (controller.py). That only ever shortens a lease, so
it is safe whatever the verdict; it lets a lease run out while the verdict is still
coming (``dead_after``), instead of from the decision on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any


class Detector:
    def __init__(
        self, sites: Sequence[str], dead_after: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.sites = tuple(sites)
        self.dead_after = dead_after
        self.clock = clock
        self.started = clock()
        self.last_reached: dict[str, float] = {}
        self.last_failed: set[str] = set()  # sites whose latest probe failed

    def observed(self, site: str, reached: bool) -> None:
        if reached:
            self.last_reached[site] = self.clock()
            self.last_failed.discard(site)
        else:
            self.last_failed.add(site)

    def suspect(self, site: str, reports: dict[str, tuple[float, dict[str, Any]]]) -> bool:
        """The controller's latest probe of ``site`` failed, and so did another site's
        agent's latest (its report no older than ``dead_after``)."""
        if site not in self.last_failed:
            return False
        now = self.clock()
        for other, (received, report) in reports.items():
            failing = report.get("failing")
            if (
                other != site
                and now - received <= self.dead_after
                and isinstance(failing, list)
                and site in failing
            ):
                return True
        return False

    def unreached_for(self, site: str) -> float:
        """Seconds since the controller last reached ``site`` (since start, if never)."""
        return self.clock() - self.last_reached.get(site, self.started)

    def verdict(
        self, site: str, reports: dict[str, tuple[float, dict[str, Any]]]
    ) -> tuple[bool, str, str | None]:
        """(dead?, why, the witness that confirmed it). ``reports``: site → (monotonic
        time received, report)."""
        unreached = self.unreached_for(site)
        if unreached < self.dead_after:
            return False, "the controller reaches it", None
        now = self.clock()
        for other in self.sites:
            if other == site or other not in reports:
                continue
            received, report = reports[other]
            if now - received > self.dead_after:
                continue  # a stale report confirms nothing
            peers = report.get("peers")
            age = peers.get(site) if isinstance(peers, dict) else None
            if isinstance(age, (int, float)) and age >= self.dead_after:
                return (
                    True,
                    f"neither the controller ({unreached:.1f} s) nor {other}'s agent"
                    f" ({age:.1f} s) reached {site}",
                    other,
                )
        why = (
            f"the controller has not reached {site} for {unreached:.1f} s, but no other"
            " site's agent confirms it"
        )
        return False, why, None

    def view(self) -> dict[str, float]:
        return {site: round(self.unreached_for(site), 3) for site in self.sites}
