"""Apply's side of loop prevention: which origin each target transaction carries, and
which origin transactions this site has applied already, by any path (origins.py)."""

from __future__ import annotations

from typing import Any

from hotsite.errors import JournalError
from hotsite.replication.gtid import Gtid, GtidState
from hotsite.replication.origins import (
    covers_all,
    covers_some,
    read_origin_states,
    write_origin_mark,
)
from hotsite.replication.transactions import Transaction


class OriginBook:
    def __init__(self, project: str, link_source: str, site: str) -> None:
        self.project = project
        self.link_source = link_source
        self.site = site
        self.states: dict[str, GtidState] = {}

    def load(self, cur: Any) -> None:
        self.states = read_origin_states(cur, self.project)

    def origin_of(self, tx: Transaction) -> str:
        return tx.origin or self.link_source

    @staticmethod
    def origin_gtid(tx: Transaction) -> str:
        return tx.origin_gtid or tx.gtid

    @staticmethod
    def counts(tx: Transaction) -> bool:
        """A transaction with something to write (not one that only moves the position)."""
        return bool(tx.changes) or tx.ddl is not None or bool(tx.settlements) or bool(tx.versions)

    def drop_if_applied(self, tx: Transaction) -> None:
        """Empty a transaction this site has applied already by another path (or made
        itself): its position still moves. Half of a forwarded batch applied by another
        path can be neither applied nor skipped whole: the link stops, in one line."""
        origin = self.origin_of(tx)
        if origin == self.site:
            tx.changes, tx.ddl, tx.versions = [], None, []
            return
        if tx.origin is None:
            return  # the link source's own: the link's position says what is applied
        state = self.states.get(origin)
        if covers_all(state, tx):
            tx.changes, tx.ddl, tx.versions = [], None, []
        elif covers_some(state, tx):
            raise JournalError(
                f"site {self.site!r}: transactions {tx.origin_first}..{tx.origin_gtid} of"
                f" {origin!r}, forwarded by {self.link_source!r}, were partly applied here"
                " already by another path",
                "give every site one path from each origin (see docs/replication.md, Both"
                " directions), then run 'hotsite snapshot' for this link",
            )

    def mark(self, cur: Any, origin: str, txs: list[Transaction]) -> GtidState | None:
        """Write the origin row first in the target transaction; the state it records
        (applied to ``states`` by ``committed`` once the transaction commits)."""
        counted = [tx for tx in txs if self.counts(tx)]
        if not counted:
            return None
        state = self.states.get(origin, GtidState()).copy()
        for tx in counted:
            state.advance(Gtid.parse(self.origin_gtid(tx)))
        first = counted[0].origin_first or self.origin_gtid(counted[0])
        write_origin_mark(cur, self.project, origin, state, first, self.origin_gtid(counted[-1]))
        return state

    def committed(self, origin: str, state: GtidState | None) -> None:
        if state is not None:
            self.states[origin] = state
