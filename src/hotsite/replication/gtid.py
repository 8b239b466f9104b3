"""MariaDB GTID positions: ``domain-server-seq``, one per replication domain.

A position (a "GTID state") holds the last transaction seen in each domain. Within a
domain sequence numbers only grow, so "has this position reached that one" is a
per-domain comparison of sequence numbers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Gtid:
    domain: int
    server_id: int
    seq: int

    @classmethod
    def parse(cls, text: str) -> Gtid:
        try:  # per transaction, twice: no generator (int() strips each part's spaces)
            domain, server_id, seq = text.split("-")
            return cls(int(domain), int(server_id), int(seq))
        except ValueError:
            raise ValueError(f"not a MariaDB GTID: {text!r} (expected domain-server-seq)") from None

    def __str__(self) -> str:
        return f"{self.domain}-{self.server_id}-{self.seq}"


class GtidState:
    """The last GTID per domain; mutable, cheap to advance per transaction."""

    __slots__ = ("_by_domain",)

    def __init__(self, gtids: dict[int, Gtid] | None = None) -> None:
        self._by_domain: dict[int, Gtid] = dict(gtids or {})

    @classmethod
    def parse(cls, text: str | None) -> GtidState:
        state = cls()
        for part in (text or "").split(","):
            if part.strip():
                state.advance(Gtid.parse(part))
        return state

    def advance(self, gtid: Gtid) -> None:
        self._by_domain[gtid.domain] = gtid

    def covers(self, gtid: Gtid) -> bool:
        """True when ``gtid`` is at or before this position in its domain."""
        mine = self._by_domain.get(gtid.domain)
        return mine is not None and mine.seq >= gtid.seq

    def reached(self, other: GtidState) -> bool:
        """True when this position is at or past ``other`` in every domain."""
        return all(self.covers(gtid) for gtid in other._by_domain.values())

    def behind(self, other: GtidState) -> int:
        """How many transactions ``other`` has that this position does not (per domain)."""
        total = 0
        for domain, theirs in other._by_domain.items():
            mine = self._by_domain.get(domain)
            total += max(0, theirs.seq - (mine.seq if mine else 0))
        return total

    def copy(self) -> GtidState:
        return GtidState(self._by_domain)

    def __str__(self) -> str:
        return ",".join(str(self._by_domain[d]) for d in sorted(self._by_domain))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GtidState) and self._by_domain == other._by_domain

    def __repr__(self) -> str:
        return f"GtidState({self})"
