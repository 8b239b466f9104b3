"""The durable journal at the target site: an append-only SQLite file in WAL mode.

Ship appends batches of transactions together with the source position they reach, in
one SQLite transaction, fsynced (``synchronous=FULL``): what is in the journal survives
the loss of the whole primary site, so RPO is the ship lag. Apply reads it in order.
Readers never block the writer (WAL), so ship runs as fast as the link allows
whatever apply is doing. Apply only reads: checkpoints and trims are the capture side's
journal upkeep (capture/process.py), which takes turns with ship.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hotsite.errors import JournalError
from hotsite.private import private_sqlite
from hotsite.replication import transactions
from hotsite.replication.gtid import Gtid, GtidState
from hotsite.state import write_transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS transactions (
    seq         INTEGER PRIMARY KEY,   -- journal order = source commit order
    gtid        TEXT NOT NULL,
    part        INTEGER NOT NULL DEFAULT 0,  -- a big transaction travels in parts
    final       INTEGER NOT NULL DEFAULT 1,  -- its last part (the others: 0)
    commit_ts   REAL NOT NULL,         -- source commit time
    shipped_at  REAL NOT NULL,
    rows        INTEGER NOT NULL,
    heartbeat   INTEGER NOT NULL DEFAULT 0,
    payload     BLOB NOT NULL,
    UNIQUE (gtid, part)                -- re-shipping the same part is a no-op
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

    def transaction(self) -> transactions.Transaction:
        return transactions.decode(self.payload)


MOVE_ASIDE = (
    "move the journal aside: the target's own position rebuilds it on the next 'hotsite replicate'"
)


class Journal:
    def __init__(self, path: Path, *, read_only: bool = False, autocheckpoint: bool = True) -> None:
        """``read_only``: for readers beside a running link (status, verify): never
        writes, never creates its tables (a file that is not a journal stays as it was);
        WAL lets them share the file with the agent that writes it.

        ``autocheckpoint=False``: this connection's commits never checkpoint the WAL;
        someone calls ``checkpoint()`` instead (a running link's journal upkeep,
        capture/process.py). Else the commit that crosses the WAL's 1,000 pages copies
        them into the database file and fsyncs it before its caller can go on: the ship
        of a link, which apply then waits for."""
        self.path = path
        if read_only:
            try:
                self._conn = sqlite3.connect(
                    f"file:{path}?mode=ro", uri=True, timeout=30, check_same_thread=False
                )
            except sqlite3.Error as exc:
                raise JournalError(f"journal {path} cannot be read ({exc})", MOVE_ASIDE) from None
            return
        try:
            private_sqlite(path)  # whole rows: 0600, and so its -wal/-shm
            self._conn = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            if not autocheckpoint:
                self._conn.execute("PRAGMA wal_autocheckpoint=0")
            _forget_older_layout(self._conn)
            self._conn.executescript(_SCHEMA)
        except sqlite3.OperationalError as exc:
            raise _storage_error(path, exc) from None
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"journal {path} cannot be opened ({exc})", MOVE_ASIDE) from None

    def close(self) -> None:
        self._conn.close()

    # --- ship side -------------------------------------------------------------

    def append(self, batch: Iterable[transactions.Transaction], source_state: GtidState) -> int:
        """Append transactions and the source position they reach, atomically."""
        now = time.time()
        rows = [
            (
                tx.gtid,
                tx.part,
                int(tx.final),
                tx.commit_ts,
                now,
                tx.row_count,
                int(tx.heartbeat_ts is not None),
                transactions.encode(tx),
            )
            for tx in batch
        ]
        with self._writing() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO transactions"
                " (gtid, part, final, commit_ts, shipped_at, rows, heartbeat, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._set_meta("source_state", source_state)
        return len(rows)

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it or nothing, a full disk said in one line."""
        try:
            with write_transaction(self._conn) as conn:
                yield conn
        except sqlite3.OperationalError as exc:
            raise _storage_error(self.path, exc) from None

    def _set_meta(self, key: str, state: GtidState) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(state))
        )

    def _meta_state(self, key: str) -> GtidState | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return GtidState.parse(row[0]) if row else None

    def source_state(self) -> GtidState | None:
        """The source position everything in the journal reaches; None for a new journal."""
        return self._meta_state("source_state")

    def base_state(self) -> GtidState | None:
        """The source position just before the first entry the journal keeps: where it was
        started, or what its trims have forgotten up to. None in a journal written before
        hotsite recorded it."""
        return self._meta_state("base_state")

    def reset(self, source_state: GtidState) -> None:
        """Empty the journal and start it at ``source_state`` (after a snapshot)."""
        with self._writing() as conn:
            conn.execute("DELETE FROM transactions")
            self._set_meta("source_state", source_state)
            self._set_meta("base_state", source_state)

    def distrust(self, applied: GtidState) -> str | None:
        """Why the journal cannot feed a target that has applied ``applied``; None if it can.

        - it ends before the target's position (deleted, or the target is ahead of it);
        - it no longer holds transactions the target still needs (the target was restored
          from a backup, a lagging replica was promoted): its base is past the target;
        - its recorded source position is ahead of its entries (a damaged journal).
        """
        # One read transaction: ship appends entries and their position together, and a
        # read between two of its commits would see one without the other.
        self._conn.execute("BEGIN")
        try:
            return self._distrust(applied)
        finally:
            self._conn.execute("COMMIT")

    def _distrust(self, applied: GtidState) -> str | None:
        state, base = self.source_state(), self.base_state()
        if state is None:
            return "the journal is new"
        if not state.reached(applied):
            return f"the journal ends at {state}, before the target's position {applied}"
        if base is None:
            return "the journal predates base positions"
        if not applied.reached(base):
            return (
                f"the journal starts after {base} but the target has applied only {applied}"
                " (restored from a backup, or another replica promoted)"
            )
        expected = base.copy()
        for (gtid,) in self._conn.execute(
            "SELECT gtid FROM transactions WHERE seq IN (SELECT MAX(seq) FROM transactions"
            " WHERE final = 1 GROUP BY substr(gtid, 1, instr(gtid, '-') - 1))"
        ):
            expected.advance(Gtid.parse(gtid))
        if expected != state:
            return f"the journal records position {state} but its entries reach {expected}"
        return None

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
        """Where a transaction ends in the journal (its final part)."""
        row = self._conn.execute(
            "SELECT MAX(seq) FROM transactions WHERE gtid = ?", (gtid,)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def last_seq(self) -> int:
        row = self._conn.execute("SELECT MAX(seq) FROM transactions").fetchone()
        return int(row[0] or 0)

    def first_seq(self) -> int:
        row = self._conn.execute("SELECT MIN(seq) FROM transactions").fetchone()
        return int(row[0] or 0)

    def oldest_commit_after(self, seq: int) -> float | None:
        row = self._conn.execute(
            "SELECT commit_ts FROM transactions WHERE seq > ? ORDER BY seq LIMIT 1", (seq,)
        ).fetchone()
        return float(row[0]) if row else None

    def checkpoint(self) -> None:
        """Copy the WAL into the database file as far as readers allow, waiting for no
        reader or writer (SQLite's PASSIVE checkpoint): ship goes on appending meanwhile."""
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.OperationalError as exc:
            raise _storage_error(self.path, exc) from None

    def trim(self, applied_seq: int, keep: int = 100_000, limit: int | None = None) -> int:
        """Forget applied transactions, keeping the newest ``keep`` for inspection; the base
        position moves past what is forgotten, in the same SQLite transaction. ``limit``:
        forget at most that many of the oldest (a short write, the next one goes on)."""
        cutoff = applied_seq - keep
        with self._writing() as conn:
            if limit is not None:
                first = conn.execute("SELECT MIN(seq) FROM transactions").fetchone()[0]
                if first is None:
                    return 0
                cutoff = min(cutoff, int(first) + limit - 1)
            base = self.base_state() or GtidState()
            for (gtid,) in conn.execute(
                "SELECT gtid FROM transactions WHERE seq IN (SELECT MAX(seq) FROM transactions"
                " WHERE seq <= ? AND final = 1 GROUP BY substr(gtid, 1, instr(gtid, '-') - 1))",
                (cutoff,),
            ):
                base.advance(Gtid.parse(gtid))
            deleted = conn.execute("DELETE FROM transactions WHERE seq <= ?", (cutoff,)).rowcount
            if deleted:
                self._set_meta("base_state", base)
        return int(deleted)

    # --- verify side: walking back from the target's entry ------------------------

    def gtid_at(self, seq: int) -> str | None:
        row = self._conn.execute("SELECT gtid FROM transactions WHERE seq = ?", (seq,)).fetchone()
        return str(row[0]) if row else None

    def entries_before(self, seq: int, limit: int) -> list[tuple[int, str]]:
        """(seq, gtid) of the ``limit`` entries before ``seq``, newest first."""
        return [
            (int(entry_seq), str(gtid))
            for entry_seq, gtid in self._conn.execute(
                "SELECT seq, gtid FROM transactions WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                (seq, limit),
            )
        ]

    def transaction_at(self, seq: int) -> transactions.Transaction | None:
        row = self._conn.execute(
            "SELECT payload FROM transactions WHERE seq = ?", (seq,)
        ).fetchone()
        return transactions.decode(row[0]) if row else None


def _forget_older_layout(conn: sqlite3.Connection) -> None:
    """A journal from before transactions had parts: it is only a buffer in front of the
    target, whose own position is the authority, so it is emptied (with its positions,
    which makes the link restart at the target's position) rather than migrated."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(transactions)")}
    if columns and "part" not in columns:
        conn.execute("DROP TABLE transactions")
        conn.execute("DELETE FROM meta WHERE key IN ('source_state', 'base_state')")


def _storage_error(path: Path, exc: sqlite3.OperationalError) -> JournalError:
    """The journal's disk is full or unwritable: one line; nothing was half-written (the
    SQLite transaction rolled back), so the next run resumes where this one stopped."""
    text = str(exc)
    if "full" in text or ("I/O error" in text and _nearly_full(path.parent)):
        return JournalError(
            f"journal {path}: the disk is full",
            f"free space on the file system of {path.parent}; the next 'hotsite replicate'"
            " resumes where this one stopped",
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return JournalError(
            f"journal {path}: cannot write ({text})",
            f"make {path.parent} writable by this user",
        )
    return JournalError(f"journal {path}: {text}")


def _nearly_full(directory: Path) -> bool:
    """SQLite reports a full disk under its WAL as a plain I/O error: ask the file system."""
    try:
        stats = os.statvfs(directory)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 1 << 20
