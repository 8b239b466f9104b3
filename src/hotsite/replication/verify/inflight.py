"""Which rows changed between two source positions, read from the link's journal.

A comparison of source(P_s) with target(P_t), P_t at or past P_s, is exact for every key
that no source transaction in (P_s, P_t] touched: such a row is the same on the source
at P_s and at P_t. The journal at the target site holds every source transaction in
binlog order (empty ones included), so the window is the run of entries that ends at
the target's applied entry and starts after the last entry P_s already covers.

``None`` means the journal cannot prove the window (missing, trimmed, rebuilt): callers
then accept a comparison only when both reads were at exactly the same position.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from hotsite.errors import JournalError
from hotsite.replication import transactions
from hotsite.replication.gtid import Gtid, GtidState
from hotsite.replication.journal import Journal
from hotsite.replication.schema import TableInfo
from hotsite.replication.transactions import Key
from hotsite.replication.verify.positions import Applied

_PAGE = 500
_CACHE = 50_000  # decoded journal entries kept: consecutive windows overlap


def normalize(key: Key) -> Key:
    """A key as compared across the binlog decoder and the client driver.

    Coarser than the database is fine (a key wrongly seen as touched is only checked
    again), finer is not: strings are case-folded and right-trimmed because most
    collations ignore case and trailing spaces.
    """
    out: list[Any] = []
    for value in key:
        if isinstance(value, bytes):  # the binlog decoder may give text for BINARY keys
            value = value.decode("utf-8", "replace").rstrip("\x00")
        if isinstance(value, str):
            out.append(value.casefold().rstrip(" "))
        elif isinstance(value, bool):
            out.append(int(value))
        elif isinstance(value, (int, float, Decimal)):
            out.append(Decimal(value).normalize() if not isinstance(value, int) else value)
        elif isinstance(value, dt.datetime):
            out.append(value.replace(tzinfo=None))
        else:
            out.append(value)
    return tuple(out)


@dataclass
class Window:
    """The source changes in (since, until]: row images per table, and whether DDL ran."""

    exact: bool = False  # since == until: nothing in between
    ddl: bool = False
    changes: dict[tuple[str, str], list[transactions.RowChange]] = field(default_factory=dict)

    def touched(self, shape: TableInfo) -> dict[Key, Key] | None:
        """Keys of ``shape`` changed in the window, normalized -> as decoded; None: any row."""
        if self.ddl:
            return None
        keys: dict[Key, Key] = {}
        pk = shape.primary_key
        for change in self.changes.get((shape.schema, shape.name), ()):
            for image in (change.before, change.after):
                if image is not None:
                    try:
                        raw = tuple(image[c] for c in pk)
                    except KeyError:  # an image without the key columns: assume anything
                        return None
                    keys[normalize(raw)] = raw
        return keys


def touched_keys(window: Window | None, shape: TableInfo) -> dict[Key, Key] | None:
    """Keys of ``shape`` that may differ between the two reads; None: any of them."""
    if window is None:
        return None
    return {} if window.exact else window.touched(shape)


class JournalReader:
    """Read-only access to a link's journal file, shared safely with a running agent."""

    def __init__(self, path: Path | None) -> None:
        self.journal: Journal | None = None
        self._cache: OrderedDict[int, tuple[str, transactions.Transaction]] = OrderedDict()
        if path is not None and path.exists():
            try:
                self.journal = Journal(path, read_only=True)
            except JournalError:
                self.journal = None

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()

    def window(self, since: GtidState, until: Applied) -> Window | None:
        if since == until.gtid:
            return Window(exact=True)
        if self.journal is None or until.journal_seq <= 0:
            return None
        try:
            return self._scan(self.journal, since, until)
        except sqlite3.Error:
            return None

    def _scan(self, journal: Journal, since: GtidState, until: Applied) -> Window | None:
        if journal.gtid_at(until.journal_seq) != until.last_gtid:
            return None  # not the journal the target was applied from, or trimmed
        window = Window()
        seq = until.journal_seq + 1
        while True:
            entries = journal.entries_before(seq, _PAGE)
            if not entries:
                # Reached the start: proven only if nothing was ever trimmed from it.
                return window if journal.first_seq() == 1 else None
            for entry_seq, gtid in entries:
                # Journal order is binlog order: the first entry (walking back) that the
                # snapshot position covers is where the window starts.
                if since.covers(Gtid.parse(gtid)):
                    return window
                tx = self._transaction(journal, entry_seq, gtid)
                if tx is None:
                    return None  # trimmed while we read
                if tx.ddl is not None:
                    window.ddl = True
                for change in tx.changes:
                    window.changes.setdefault((change.schema, change.table), []).append(change)
            seq = entries[-1][0]

    def _transaction(
        self, journal: Journal, seq: int, gtid: str
    ) -> transactions.Transaction | None:
        cached = self._cache.get(seq)
        if cached is not None and cached[0] == gtid:  # seqs restart when a journal is reset
            return cached[1]
        tx = journal.transaction_at(seq)
        if tx is None:
            return None
        self._cache[seq] = (gtid, tx)
        if len(self._cache) > _CACHE:
            self._cache.popitem(last=False)
        return tx
