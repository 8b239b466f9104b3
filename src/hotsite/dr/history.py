"""Every move's timeline, in the state store: when each step happened, and the move's
outcome, RTO and RPO. ``hotsite history`` reads it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from hotsite.state import StateStore, register_schema

register_schema(
    "dr_history",
    """
    CREATE TABLE IF NOT EXISTS dr_moves (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,
        epoch_before INTEGER NOT NULL, epoch_after INTEGER, started REAL NOT NULL,
        finished REAL, outcome TEXT NOT NULL DEFAULT 'in flight', summary TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE IF NOT EXISTS dr_move_steps (
        move_id TEXT NOT NULL REFERENCES dr_moves(id), at REAL NOT NULL, step TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX IF NOT EXISTS dr_move_steps_by_move ON dr_move_steps (move_id, at);
    """,
)


@dataclass
class MoveSummary:
    id: str
    kind: str
    source: str
    target: str
    epoch_before: int
    epoch_after: int | None
    started: float
    finished: float | None
    outcome: str
    summary: dict[str, Any] = field(default_factory=dict)
    steps: list[tuple[float, str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "from": self.source, "to": self.target,
            "epoch_before": self.epoch_before, "epoch_after": self.epoch_after,
            "started": self.started, "finished": self.finished, "outcome": self.outcome,
            **self.summary,
            "steps": [
                {"at": at, "after": round(at - self.started, 3), "step": step, "detail": detail}
                for at, step, detail in self.steps
            ],
        }  # fmt: skip


class History:
    def __init__(self, store: StateStore, clock: Any = time.time) -> None:
        self.store = store
        self.clock = clock

    def begin(
        self,
        move_id: str,
        kind: str,
        source: str,
        target: str,
        epoch: int,
        summary: dict[str, Any] | None = None,
    ) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO dr_moves"
                " (id, kind, source, target, epoch_before, started, summary)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (move_id, kind, source, target, epoch, self.clock(), json.dumps(summary or {})),
            )

    def step(self, move_id: str, step: str, detail: str = "", at: float | None = None) -> float:
        """``at``: when it happened, if not now (a first write seen by sampling)."""
        at = float(self.clock()) if at is None else at
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO dr_move_steps (move_id, at, step, detail) VALUES (?, ?, ?, ?)",
                (move_id, at, step, detail),
            )
        return at

    def finish(
        self, move_id: str, outcome: str, epoch_after: int | None, summary: dict[str, Any]
    ) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE dr_moves SET finished = ?, outcome = ?, epoch_after = ?, summary = ?"
                " WHERE id = ?",
                (self.clock(), outcome, epoch_after, json.dumps(summary), move_id),
            )

    def moves(self, limit: int = 50) -> list[MoveSummary]:
        rows = (
            self.store.connection()
            .execute("SELECT * FROM dr_moves ORDER BY started DESC LIMIT ?", (limit,))
            .fetchall()
        )
        return [self._summary(row, with_steps=False) for row in rows]

    def last_done(self) -> MoveSummary | None:
        """The newest move that finished ``done`` (what a failback would undo)."""
        row = (
            self.store.connection()
            .execute(
                "SELECT * FROM dr_moves WHERE outcome = 'done'"
                " AND kind IN ('failover', 'relocate', 'failback')"  # not heal, burst entries
                " ORDER BY finished DESC LIMIT 1"
            )
            .fetchone()
        )
        return None if row is None else self._summary(row, with_steps=False)

    def recent(self, kind: str, source: str, since: float) -> list[MoveSummary]:
        """The entries of one kind about one site since a time (healing counts its
        budgets from these, so a restarted agent does not start its budgets afresh)."""
        rows = (
            self.store.connection()
            .execute(
                "SELECT * FROM dr_moves WHERE kind = ? AND source = ? AND started >= ?"
                " ORDER BY started",
                (kind, source, since),
            )
            .fetchall()
        )
        return [self._summary(row, with_steps=False) for row in rows]

    def get(self, move_id: str) -> MoveSummary | None:
        conn = self.store.connection()
        row = conn.execute("SELECT * FROM dr_moves WHERE id = ?", (move_id,)).fetchone()
        if row is None:
            row = conn.execute(  # a unique prefix is enough
                "SELECT * FROM dr_moves WHERE id LIKE ? || '%'", (move_id,)
            ).fetchall()
            row = row[0] if len(row) == 1 else None
        return None if row is None else self._summary(row, with_steps=True)

    def _summary(self, row: Any, with_steps: bool) -> MoveSummary:
        steps: list[tuple[float, str, str]] = []
        if with_steps:
            steps = [
                (r["at"], r["step"], r["detail"])
                for r in self.store.connection().execute(
                    "SELECT at, step, detail FROM dr_move_steps WHERE move_id = ? ORDER BY at,"
                    " rowid",
                    (row["id"],),
                )
            ]
        return MoveSummary(
            row["id"], row["kind"], row["source"], row["target"], row["epoch_before"],
            row["epoch_after"], row["started"], row["finished"], row["outcome"],
            json.loads(row["summary"] or "{}"), steps,
        )  # fmt: skip
