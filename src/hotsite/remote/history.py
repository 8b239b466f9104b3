"""The command log: every command run on a node, with what it printed and how it ended.

Poor troubleshooting logs are the top complaint about the tools hotsite replaces, so
each run records node, site, step (set by the blueprint engine), command, exit status,
duration, start time and the tail of stdout/stderr. Secrets never get here: values the
caller passes as environment or as ``secrets`` are replaced by ``***`` in the command
and in the output before anything is written — masked first, then cut to the tail, so
a secret at the cut cannot leave its end behind (see ``hotsite.redaction``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from hotsite.redaction import redact, tail
from hotsite.state import StateStore, register_schema

TAIL_CHARS = 4000  # per stream; enough for the error at the end of a failed install
KEEP_ENTRIES = 200_000  # older entries are pruned (about 1.6 GB at full tails, far less usually)

register_schema(
    "command_log",
    """
    CREATE TABLE IF NOT EXISTS command_log (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        node        TEXT NOT NULL,
        site        TEXT,
        step        TEXT,
        command     TEXT NOT NULL,
        exit_status INTEGER,            -- NULL: it never ran to an end (timeout, lost link)
        error       TEXT,               -- why it has no exit status
        duration    REAL NOT NULL,
        started_at  REAL NOT NULL,
        stdout_tail TEXT NOT NULL DEFAULT '',
        stderr_tail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX IF NOT EXISTS command_log_node ON command_log(node, id);
    CREATE INDEX IF NOT EXISTS command_log_site ON command_log(site, step, id);
    """,
)


@dataclass(frozen=True)
class LogEntry:
    id: int
    node: str
    site: str | None
    step: str | None
    command: str
    exit_status: int | None
    error: str | None
    duration: float
    started_at: float
    stdout_tail: str
    stderr_tail: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def record(store: StateStore, **entry: Any) -> None:
    """Write one entry (see ``record_many`` for the fields)."""
    record_many(store, [entry])


def record_many(store: StateStore, entries: list[dict[str, Any]]) -> None:
    """Write entries in one transaction. Each has node, command, exit_status, duration,
    started_at and optionally stdout, stderr, site, step, error and secrets."""
    if not entries:
        return
    rows = []
    for e in entries:
        hidden = list(e.get("secrets", ()))
        error = e.get("error")
        rows.append(
            (
                e["node"],
                e.get("site"),
                e.get("step"),
                redact(e["command"], hidden),
                e["exit_status"],
                redact(error, hidden) if error else None,
                e["duration"],
                e["started_at"],
                tail(redact(e.get("stdout", ""), hidden), TAIL_CHARS),
                tail(redact(e.get("stderr", ""), hidden), TAIL_CHARS),
            )
        )
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO command_log (node, site, step, command, exit_status, error, duration,"
            " started_at, stdout_tail, stderr_tail) VALUES (?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        # Keep the log bounded; the id index makes this a cheap range delete.
        conn.execute(
            "DELETE FROM command_log WHERE id <= (SELECT MAX(id) FROM command_log) - ?",
            (KEEP_ENTRIES,),
        )


def _entry(row: sqlite3.Row) -> LogEntry:
    return LogEntry(**{key: row[key] for key in row.keys()})  # noqa: SIM118


def query(
    store: StateStore,
    *,
    node: str | None = None,
    site: str | None = None,
    step: str | None = None,
    limit: int = 50,
) -> list[LogEntry]:
    """The newest ``limit`` entries matching every given filter, oldest first."""
    clauses, args = [], []
    for column, value in (("node", node), ("site", site), ("step", step)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = store.connection().execute(
        f"SELECT * FROM command_log{where} ORDER BY id DESC LIMIT ?", [*args, limit]
    )
    return [_entry(row) for row in reversed(rows.fetchall())]
