"""Which row wins a conflict: a pure function of the two rows, the sites and the policy.

Every site that sees one conflict must reach the same row, or the sites diverge for
good. So each decision is one that the other site, seeing the mirror image of the same
conflict, also reaches:

- ``site-priority``: the row from the site higher in ``conflicts.site_priority`` wins.
- ``newest-wins``: the greater value of the table's version column wins; equal values
  fall back to site priority. A row deleted at one site and changed at the other stays
  deleted at both (a deletion leaves no version to compare). With row versions, the
  key's *life* comes first (rowversions.py): a deletion ends a life, a creation over a
  tombstone starts the next, and the later life wins — so a deletion beats the changes
  made concurrently with it, and a row created again after it beats the deletion, at
  whichever site and in whichever order the two arrive.
- ``source-wins`` / ``target-wins``: between two sites each is both source and target,
  and taken literally each site would take the other's row and the two would swap. So
  they are read from the side of the pair's higher-priority site: ``source-wins`` keeps
  the other site's row, ``target-wins`` keeps the priority site's own, at both sites.
- ``manual``: nothing is decided; the change is parked and the row left alone.

Where one side has no row (deleted, or never there) the same rules apply to "no row" as
to a row, except under newest-wins as said.
"""

from __future__ import annotations

from dataclasses import dataclass

INCOMING, TARGET, PARKED = "incoming", "target", "parked"


@dataclass(frozen=True)
class Sides:
    site: str  # where the conflict is seen (the target)
    origin: str  # where the incoming change was first committed
    priority: tuple[str, ...]  # sites, highest first

    def rank(self, site: str) -> int:
        return self.priority.index(site) if site in self.priority else len(self.priority)

    def incoming_outranks(self) -> bool:
        """Ties (two unlisted sites) go to the lower name, the same at every site."""
        mine, theirs = self.rank(self.site), self.rank(self.origin)
        return (theirs, self.origin) < (mine, self.site)


def decide(
    policy: str,
    sides: Sides,
    *,
    incoming_deletes: bool,
    target_missing: bool,
    newer: int | None = None,  # newest-wins: +1 incoming newer, -1 older, 0 equal
    lives: int | None = None,  # newest-wins: +1 incoming in a later life, -1 earlier
) -> str:
    """INCOMING (write the change), TARGET (keep the target row) or PARKED (manual)."""
    if policy == "manual":
        return PARKED
    if policy == "site-priority":
        return INCOMING if sides.incoming_outranks() else TARGET
    if policy == "newest-wins":
        if lives:
            return INCOMING if lives > 0 else TARGET
        if incoming_deletes:
            return INCOMING
        if target_missing:
            return TARGET
        if newer:
            return INCOMING if newer > 0 else TARGET
        return INCOMING if sides.incoming_outranks() else TARGET
    # source-wins / target-wins, read from the pair's priority site (see the module)
    at_priority_site = not sides.incoming_outranks()
    source_wins = policy == "source-wins"
    return INCOMING if source_wins == at_priority_site else TARGET
