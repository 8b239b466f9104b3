"""Which links carry whose transactions, when links run in both directions or in a ring.

A site's own transactions go out on every link from it. A transaction a site applied
from elsewhere (origin O) goes on over a link S→T only when T would not hear of it
otherwise: T is not O, and there is no direct link O→T. So a full mesh forwards nothing
(every site hears every origin directly) and a ring forwards around the ring. A
topology where some site would still hear of one origin over two links is refused:
apply dedups by origin GTID, but two paths batch an origin's transactions differently,
and a batch half-applied by the other path could be neither applied nor skipped whole.

A project whose ``dr:`` runs active-standby may list both directions between two sites
(``primary→dr`` and ``dr→primary``) without making them writers of one another: only
the record's primary takes writes, so only the links from it run (``one_writer``), and
none of them meets conflicts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

Pair = tuple[str, str]  # (source, target)


@dataclass(frozen=True)
class Routes:
    links: frozenset[Pair]
    # active-standby (dr): one site takes writes at a time, whatever links are listed
    one_writer: bool = False

    @classmethod
    def of(cls, pairs: Iterable[Pair], one_writer: bool = False) -> Routes:
        return cls(frozenset(pairs), one_writer)

    def sites(self) -> set[str]:
        return {site for pair in self.links for site in pair}

    def forwards(self, source: str, target: str) -> frozenset[str]:
        """Origins (other than ``source``) whose transactions the link source→target ships."""
        return frozenset(
            origin for origin in self.sites() if (source, target) in self._carriers(origin)
        )

    def writers(self) -> set[str]:
        """Sites that are the source of a link and the target of another: both take writes
        that reach the other (active/active); conflicts are possible at them."""
        if self.one_writer:
            return set()
        sources = {s for s, _ in self.links}
        targets = {t for _, t in self.links}
        return sources & targets

    def two_way(self, site: str) -> bool:
        return site in self.writers()

    def running_from(self, primary: str) -> set[Pair]:
        """The links that carry writes while ``primary`` is the only writer: those from it,
        and on from there around a ring or chain (a link whose source only hears of the
        primary's writes runs too); a link back into the primary carries nothing."""
        running: set[Pair] = set()
        frontier, reached = [primary], {primary}
        while frontier:
            site = frontier.pop()
            for source, target in sorted(self.links):
                if source == site and target != primary:
                    running.add((source, target))
                    if target not in reached:
                        reached.add(target)
                        frontier.append(target)
        return running

    def _carriers(self, origin: str) -> set[Pair]:
        """The links that carry ``origin``'s transactions (origin itself excluded)."""
        carried: set[Pair] = set()
        reached = {origin}
        frontier = [origin]
        while frontier:
            site = frontier.pop()
            for source, target in sorted(self.links):
                if source != site or target == origin:
                    continue
                if site != origin and (origin, target) in self.links:
                    continue  # the target hears of origin directly
                carried.add((source, target))
                if target not in reached:
                    reached.add(target)
                    frontier.append(target)
        return {pair for pair in carried if pair[0] != origin}

    def problems(self) -> list[str]:
        """One line per site that would hear of one origin over two links."""
        found: list[str] = []
        for origin in sorted(self.sites()):
            into: dict[str, list[str]] = {}
            for source, target in self._carriers(origin) | {
                pair for pair in self.links if pair[0] == origin
            }:
                into.setdefault(target, []).append(source)
            for target, sources in sorted(into.items()):
                if len(sources) > 1:
                    paths = " and ".join(f"{s}->{target}" for s in sorted(sources))
                    found.append(
                        f"site {target!r} would receive {origin!r}'s changes twice ({paths}):"
                        f" add a direct link {origin}->{target}, or remove one of them"
                    )
        return found
