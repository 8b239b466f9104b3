"""RTO and RPO of a move, measured from the client's own writes (load.py), not from
the moves' timelines: the RTO is the gap the client saw between the last write the old
site acknowledged (before its death, or before a planned move drained it) and the first
one the new site acknowledged; the RPO is the acknowledged writes
the new primary does not hold, and how far back the oldest of them was sent."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hotsite.demo.load import Write


@dataclass
class ClientView:
    event_at: float  # the failure, or the move's decision (wall clock)
    last_ok_before: float | None
    first_ok_after: float | None  # at the new site
    errors: int  # writes that failed between the two
    rto_seconds: float | None
    lost: list[int]  # acknowledged writes (their sequence numbers) missing at the new primary
    rpo_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_at": self.event_at,
            "last_ok_before": self.last_ok_before,
            "first_ok_after": self.first_ok_after,
            "failed_writes": self.errors,
            "rto_seconds": None if self.rto_seconds is None else round(self.rto_seconds, 3),
            "rpo_writes": len(self.lost),
            "rpo_seconds": round(self.rpo_seconds, 3),
            "lost_writes": self.lost[:100],
        }


def client_view(
    writes: list[Write], event_at: float, new_site: str, held: Iterable[int]
) -> ClientView:
    """``held``: the sequence numbers the new primary holds, read from its database
    after the move (before any other site's writes could reach it again)."""
    after = [w for w in writes if w.ok and w.sent >= event_at and w.site == new_site]
    first_ok = min((w.answered for w in after), default=None)
    window_end = first_ok if first_ok is not None else float("inf")
    # The old site's last acknowledged write: before the failure, or (a planned move)
    # up to its drain, which may come a little after the decision was taken.
    before = [w for w in writes if w.ok and w.site != new_site and w.answered <= window_end]
    last_ok = max((w.answered for w in before), default=None)
    start = last_ok if last_ok is not None else event_at
    errors = sum(1 for w in writes if not w.ok and start <= w.sent <= window_end)
    rto = None if first_ok is None else first_ok - start
    have = set(held)
    # Everything the old site acknowledged must be at the new one: a write it answered
    # after the event (a planned move drains it first) counts too.
    lost = sorted(w.seq for w in writes if w.ok and w.site != new_site and w.seq not in have)
    gone = set(lost)
    oldest = min((w.sent for w in writes if w.seq in gone), default=event_at)
    return ClientView(event_at, last_ok, first_ok, errors, rto, lost, max(0.0, event_at - oldest))
