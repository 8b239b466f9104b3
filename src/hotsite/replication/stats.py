"""Per-stage progress and lag (capture, ship, apply), true even when the source is idle.

Lag in seconds comes from heartbeats: the agent writes the source's clock (µs) into
``hotsite.hotsite_heartbeat`` every interval, and each stage notes when it handled the
latest one. A stage's lag is how late that heartbeat reached it — or, when the next
heartbeat is overdue, how long it has been overdue, so a stalled stage shows a growing
lag instead of its last good figure. Lag in transactions compares GTID positions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageStats:
    position: str = ""
    transactions: int = 0
    rows: int = 0
    heartbeat_ts: float = 0.0  # source clock of the newest heartbeat this stage handled
    heartbeat_seen: float = 0.0  # local clock when it handled it
    oldest_pending_ts: float = 0.0  # source commit time of the oldest unhandled transaction
    pending: int = 0  # transactions waiting for this stage
    rate: float = 0.0  # transactions/s over the last few seconds
    _samples: list[tuple[float, int]] = field(default_factory=list, repr=False)

    def saw_heartbeat(self, source_ts: float, now: float | None = None) -> None:
        self.heartbeat_ts = source_ts
        self.heartbeat_seen = now or time.time()

    def lag_seconds(self, heartbeat_interval: float, now: float | None = None) -> float | None:
        now = now or time.time()
        if heartbeat_interval > 0 and self.heartbeat_ts:
            delay = self.heartbeat_seen - self.heartbeat_ts
            overdue = now - self.heartbeat_ts - heartbeat_interval * 2
            return max(0.0, delay, overdue)
        if self.pending == 0:
            return 0.0
        if self.oldest_pending_ts:
            return max(0.0, now - self.oldest_pending_ts)
        return None

    def tick(self, now: float | None = None, window: float = 3.0) -> None:
        """Update ``rate`` from the transaction count; call a few times a second."""
        now = now or time.time()
        self._samples.append((now, self.transactions))
        while len(self._samples) > 2 and now - self._samples[0][0] > window:
            self._samples.pop(0)
        first_t, first_n = self._samples[0]
        self.rate = (self.transactions - first_n) / (now - first_t) if now > first_t else 0.0

    def as_dict(self, heartbeat_interval: float) -> dict[str, Any]:
        # By hand, not dataclasses.asdict (a deep copy of every field, _samples included):
        # each link reports its stages four times a second, idle or not.
        return {
            "position": self.position,
            "transactions": self.transactions,
            "rows": self.rows,
            "heartbeat_ts": self.heartbeat_ts,
            "heartbeat_seen": self.heartbeat_seen,
            "oldest_pending_ts": self.oldest_pending_ts,
            "pending": self.pending,
            "rate": self.rate,
            "lag_seconds": self.lag_seconds(heartbeat_interval),
        }
