"""The embedded record store: one row in the controller's state store (SQLite).

Each operation is one ``BEGIN IMMEDIATE`` transaction that reads the row and writes it
only if it is still what the caller expects, so two controllers (or two commands) on
one state store cannot both win a move.
"""

from __future__ import annotations

import sqlite3

from hotsite.dr.record import Grant, Move, MoveInFlight, Record, RecordConflict
from hotsite.errors import HotsiteError
from hotsite.state import StateStore, register_schema

register_schema(
    "dr_record",
    """
    CREATE TABLE IF NOT EXISTS dr_record (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        primary_site TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        lease_holder TEXT,
        lease_expires REAL NOT NULL DEFAULT 0,
        move_id TEXT, move_kind TEXT, move_target TEXT, move_started REAL, move_step TEXT
    );
    """,
)


class SqliteRecordStore:
    def __init__(self, store: StateStore) -> None:
        self.store = store

    def read(self) -> Record | None:
        row = self.store.connection().execute("SELECT * FROM dr_record WHERE id = 1").fetchone()
        return None if row is None else _record(row)

    def initialise(self, primary: str) -> Record:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO dr_record (id, primary_site, epoch) VALUES (1, ?, 1)",
                (primary,),
            )
            return _record(conn.execute("SELECT * FROM dr_record WHERE id = 1").fetchone())

    def grant_lease(self, site: str, epoch: int, ttl: float, now: float) -> Grant:
        with self.store.transaction() as conn:
            record = _current(conn)
            reason = ""
            if record.primary != site:
                reason = f"site {site!r} is not the primary ({record.primary} is)"
            elif record.epoch != epoch:
                reason = f"epoch {epoch} is not the current epoch {record.epoch}"
            elif record.move is not None:
                reason = f"a {record.move.kind} to {record.move.target} is in flight"
            held = record.lease_expires if record.lease_holder == site else 0.0
            if not reason and ttl <= 0 and held <= now:
                reason = f"the lease of {site!r} is not extended and has ended"
            if reason:
                return Grant(False, 0.0, record, reason)
            # Never shorten a lease already granted: the holder counts on its old end.
            expires = max(now + ttl, held)
            conn.execute(
                "UPDATE dr_record SET lease_holder = ?, lease_expires = ? WHERE id = 1",
                (site, expires),
            )
            # What is left of it, from now: ttl itself, unless it was not extended.
            return Grant(True, expires - now, _current(conn))

    def begin_move(self, move: Move, expected_epoch: int) -> Record:
        with self.store.transaction() as conn:
            record = _current(conn)
            if record.move is not None:
                raise MoveInFlight(
                    f"a {record.move.kind} to {record.move.target} is in flight"
                    f" (move {record.move.id}, step {record.move.step})",
                    "wait for it to finish, or see 'hotsite status'",
                )
            if record.epoch != expected_epoch:
                raise RecordConflict(
                    f"the record moved on (epoch {record.epoch}, expected {expected_epoch})",
                    "another move finished meanwhile; check 'hotsite status' and retry",
                )
            conn.execute(
                "UPDATE dr_record SET move_id = ?, move_kind = ?, move_target = ?,"
                " move_started = ?, move_step = ? WHERE id = 1",
                (move.id, move.kind, move.target, move.started, move.step),
            )
            return _current(conn)

    def advance_move(self, move_id: str, step: str) -> Record:
        with self.store.transaction() as conn:
            _require_move(conn, move_id)
            conn.execute("UPDATE dr_record SET move_step = ? WHERE id = 1", (step,))
            return _current(conn)

    def finish_move(self, move_id: str) -> Record:
        with self.store.transaction() as conn:
            move = _require_move(conn, move_id)
            conn.execute(
                "UPDATE dr_record SET primary_site = ?, epoch = epoch + 1, lease_holder = NULL,"
                " lease_expires = 0, move_id = NULL, move_kind = NULL, move_target = NULL,"
                " move_started = NULL, move_step = NULL WHERE id = 1",
                (move.target,),
            )
            return _current(conn)

    def abort_move(self, move_id: str) -> Record:
        with self.store.transaction() as conn:
            _require_move(conn, move_id)
            conn.execute(
                "UPDATE dr_record SET move_id = NULL, move_kind = NULL, move_target = NULL,"
                " move_started = NULL, move_step = NULL WHERE id = 1"
            )
            return _current(conn)


def _current(conn: sqlite3.Connection) -> Record:
    row = conn.execute("SELECT * FROM dr_record WHERE id = 1").fetchone()
    if row is None:
        raise HotsiteError(
            "there is no record of which site is primary yet",
            "start 'hotsite controller' once (it makes the record from dr.primary)",
        )
    return _record(row)


def _require_move(conn: sqlite3.Connection, move_id: str) -> Move:
    record = _current(conn)
    if record.move is None or record.move.id != move_id:
        raise RecordConflict(
            f"move {move_id} is not the move in flight"
            f" ({record.move.id if record.move else 'none is'})",
            "it was finished or aborted elsewhere; check 'hotsite status'",
        )
    return record.move


def _record(row: sqlite3.Row) -> Record:
    move = None
    if row["move_id"] is not None:
        move = Move(
            row["move_id"], row["move_kind"], row["move_target"], row["move_started"],
            row["move_step"],
        )  # fmt: skip
    return Record(
        row["primary_site"], row["epoch"], row["lease_holder"], row["lease_expires"], move
    )
