"""The durable journal at the target site: an append-only SQLite file in WAL mode.

Ship appends batches of transactions together with the source position they reach, in
one SQLite transaction, fsynced (``synchronous=FULL``): what is in the journal survives
the loss of the whole primary site, so RPO is the ship lag. Apply reads it in order.
Readers never block the writer (WAL), so ship runs as fast as the link allows
whatever apply is doing.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hotsite.errors import JournalError
from hotsite.replication import events
from hotsite.replication.gtid import GtidState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS transactions (
    seq         INTEGER PRIMARY KEY,   -- journal order = source commit order
    gtid        TEXT NOT NULL UNIQUE,  -- re-shipping the same transaction is a no-op
    commit_ts   REAL NOT NULL,         -- source commit time
    shipped_at  REAL NOT NULL,
    rows        INTEGER NOT NULL,
    heartbeat   INTEGER NOT NULL DEFAULT 0,
    payload     BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    seq: int
    gtid: str
    commit_ts: float
    shipped_at: float
    rows: int
    payload: bytes

    def transaction(self) -> events.Transaction:
        return events.decode(self.payload)


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise JournalError(
                f"journal {path} cannot be opened ({exc})",
                "move the journal aside: the target's own position rebuilds it"
                " on the next 'hotsite replicate'",
            ) from None

    def close(self) -> None:
        self._conn.close()

    # --- ship side -------------------------------------------------------------

    def append(self, batch: Iterable[events.Transaction], source_state: GtidState) -> int:
        """Append transactions and the source position they reach, atomically."""
        now = time.time()
        rows = [
            (
                tx.gtid,
                tx.commit_ts,
                now,
                tx.row_count,
                int(tx.heartbeat_ts is not None),
                events.encode(tx),
            )
            for tx in batch
        ]
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR IGNORE INTO transactions (gtid, commit_ts, shipped_at, rows, heartbeat, payload)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('source_state', ?)",
                (str(source_state),),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return len(rows)

    def source_state(self) -> GtidState | None:
        """The source position everything in the journal reaches; None for a new journal."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'source_state'").fetchone()
        return GtidState.parse(row[0]) if row else None

    def reset(self, source_state: GtidState) -> None:
        """Empty the journal and start it at ``source_state`` (after a snapshot)."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM transactions")
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('source_state', ?)",
            (str(source_state),),
        )
        conn.execute("COMMIT")

    # --- apply side ------------------------------------------------------------

    def read(self, after_seq: int, max_transactions: int, max_rows: int) -> list[JournalEntry]:
        """Entries after ``after_seq`` in order, stopping at either limit (at least one)."""
        cursor = self._conn.execute(
            "SELECT seq, gtid, commit_ts, shipped_at, rows, payload FROM transactions"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, max_transactions),
        )
        entries: list[JournalEntry] = []
        total_rows = 0
        for row in cursor:
            entries.append(JournalEntry(*row))
            total_rows += row[4]
            if total_rows >= max_rows:
                break
        cursor.close()
        return entries

    def seq_of(self, gtid: str) -> int | None:
        row = self._conn.execute("SELECT seq FROM transactions WHERE gtid = ?", (gtid,)).fetchone()
        return int(row[0]) if row else None

    def last_seq(self) -> int:
        row = self._conn.execute("SELECT MAX(seq) FROM transactions").fetchone()
        return int(row[0] or 0)

    def first_seq(self) -> int:
        row = self._conn.execute("SELECT MIN(seq) FROM transactions").fetchone()
        return int(row[0] or 0)

    def last_entry(self) -> tuple[int, str, float] | None:
        row = self._conn.execute(
            "SELECT seq, gtid, shipped_at FROM transactions ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return (int(row[0]), str(row[1]), float(row[2])) if row else None

    def count_after(self, seq: int) -> int:
        row = self._conn.execute(
            "SELECT COUNT(*) FROM transactions WHERE seq > ?", (seq,)
        ).fetchone()
        return int(row[0])

    def oldest_commit_after(self, seq: int) -> float | None:
        row = self._conn.execute(
            "SELECT commit_ts FROM transactions WHERE seq > ? ORDER BY seq LIMIT 1", (seq,)
        ).fetchone()
        return float(row[0]) if row else None

    def trim(self, applied_seq: int, keep: int = 100_000) -> int:
        """Forget applied transactions, keeping the newest ``keep`` for inspection."""
        cursor = self._conn.execute(
            "DELETE FROM transactions WHERE seq <= ?", (applied_seq - keep,)
        )
        return cursor.rowcount

    def entries(self, after_seq: int = 0) -> Iterator[JournalEntry]:
        while True:
            batch = self.read(after_seq, 1000, 10**9)
            if not batch:
                return
            yield from batch
            after_seq = batch[-1].seq
