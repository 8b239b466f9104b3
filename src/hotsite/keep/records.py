"""What healing and bursting did, in the state store.

Every action is an entry of the moves history (``hotsite history``), of kind ``heal``
or ``burst``: what failed or what the metric read, what was done, how long until
healthy. The budgets are counted from those entries, so an agent that restarts does
not get fresh budgets (no runaway through restarts). A service healing gave up on is
marked failed (table ``keep_failed``) until a successful ``hotsite up`` of its site.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from hotsite.dr import History
from hotsite.state import StateStore, register_schema

register_schema(
    "keep",
    """
    CREATE TABLE IF NOT EXISTS keep_failed (
        site TEXT NOT NULL,
        service TEXT NOT NULL,
        at REAL NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (site, service)
    );
    """,
)
HOUR = 3600.0


class KeepRecords:
    """One site's healing and bursting entries."""

    def __init__(self, store: StateStore, site: str, clock: Callable[[], float] = time.time):
        self.store = store
        self.site = site
        self.clock = clock
        self.history = History(store, clock)

    # -- entries ----------------------------------------------------------------------

    def begin(self, kind: str, target: str, summary: dict[str, Any]) -> str:
        entry = f"{kind[:2]}-{uuid.uuid4().hex[:10]}"
        self.history.begin(entry, kind, self.site, target, 0, summary)
        return entry

    def step(self, entry: str, step: str, detail: str = "") -> None:
        self.history.step(entry, step, detail)

    def finish(self, entry: str, outcome: str, summary: dict[str, Any]) -> None:
        self.history.finish(entry, outcome, None, summary)

    # -- budgets ----------------------------------------------------------------------

    def _heals(self, since: float) -> list[dict[str, Any]]:
        return [
            {**m.summary, "node": m.target} for m in self.history.recent("heal", self.site, since)
        ]

    def restarts(self, node: str, service: str, window: float) -> int:
        return sum(
            1
            for h in self._heals(self.clock() - window)
            if h.get("action") == "restart" and h["node"] == node and h.get("service") == service
        )

    def replacements(self, service: str) -> int:
        return sum(
            1
            for h in self._heals(self.clock() - HOUR)
            if h.get("action") == "replace" and service in h.get("services", [])
        )

    # -- failed services --------------------------------------------------------------

    def mark_failed(self, service: str, reason: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO keep_failed (site, service, at, reason)"
                " VALUES (?, ?, ?, ?)",
                (self.site, service, self.clock(), reason),
            )

    def failed(self) -> dict[str, str]:
        return failed_services(self.store, self.site)


def failed_services(store: StateStore, site: str) -> dict[str, str]:
    """Services healing gave up on at the site: service → why."""
    rows = store.connection().execute(
        "SELECT service, reason FROM keep_failed WHERE site = ? ORDER BY service", (site,)
    )
    return {row["service"]: row["reason"] for row in rows}


def clear_failed(store: StateStore, site: str) -> None:
    """A successful ``up`` brought the site back as described: heal it again."""
    with store.transaction() as conn:
        conn.execute("DELETE FROM keep_failed WHERE site = ?", (site,))
