"""The nodes hotsite holds, as recorded in the state store.

A record is written *before* a provider is asked for a machine (state ``intent``), and
completed once the machine exists (``running``). So after a crash at any point the next
run sees every machine that may exist, and can find it (by name and tag) and reuse or
destroy it. ``UNIQUE(provider, driver_id)`` makes two leases of the same BYON host
impossible even if two processes raced past every other check.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable

from hotsite.nodes.base import Node
from hotsite.state import StateStore, register_schema

register_schema(
    "nodes",
    """
    CREATE TABLE IF NOT EXISTS nodes (
        name       TEXT PRIMARY KEY,
        provider   TEXT NOT NULL,
        driver     TEXT NOT NULL,
        driver_id  TEXT NOT NULL DEFAULT '',
        site       TEXT,
        grp        TEXT,
        address    TEXT NOT NULL DEFAULT '',
        ssh_port   INTEGER NOT NULL DEFAULT 22,
        ssh_user   TEXT NOT NULL DEFAULT 'root',
        ssh_key    TEXT,
        ssh_jump   TEXT,
        tags       TEXT NOT NULL DEFAULT '{}',
        state      TEXT NOT NULL,        -- intent | running | releasing
        holder_pid INTEGER,              -- the process that wrote the intent
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE UNIQUE INDEX IF NOT EXISTS nodes_provider_id
        ON nodes(provider, driver_id) WHERE driver_id != '';
    CREATE INDEX IF NOT EXISTS nodes_site ON nodes(site, grp);
    """,
)

INTENT, RUNNING, RELEASING = "intent", "running", "releasing"


def _node(row: sqlite3.Row) -> Node:
    return Node(
        name=row["name"],
        driver=row["driver"],
        driver_id=row["driver_id"],
        address=row["address"],
        ssh_port=row["ssh_port"],
        ssh_user=row["ssh_user"],
        ssh_key=row["ssh_key"],
        ssh_jump=row["ssh_jump"],
        tags=json.loads(row["tags"]),
        state=row["state"],
        provider=row["provider"],
        site=row["site"],
        group=row["grp"],
    )


def insert(conn: sqlite3.Connection, node: Node) -> None:
    """Insert inside the caller's transaction (so checks and insert are one step)."""
    now = time.time()
    conn.execute(
        "INSERT INTO nodes (name, provider, driver, driver_id, site, grp, address, ssh_port,"
        " ssh_user, ssh_key, ssh_jump, tags, state, holder_pid, created_at, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            node.name,
            node.provider,
            node.driver,
            node.driver_id,
            node.site,
            node.group,
            node.address,
            node.ssh_port,
            node.ssh_user,
            node.ssh_key,
            node.ssh_jump,
            json.dumps(node.tags, sort_keys=True),
            node.state,
            os.getpid(),
            now,
            now,
        ),
    )


def save(store: StateStore, node: Node) -> None:
    """Write the node's current fields over its record."""
    with store.transaction() as conn:
        conn.execute(
            "UPDATE nodes SET driver_id=?, address=?, ssh_port=?, ssh_user=?, ssh_key=?, ssh_jump=?,"
            " tags=?,"
            " state=?, site=?, grp=?, updated_at=? WHERE name=?",
            (
                node.driver_id,
                node.address,
                node.ssh_port,
                node.ssh_user,
                node.ssh_key,
                node.ssh_jump,
                json.dumps(node.tags, sort_keys=True),
                node.state,
                node.site,
                node.group,
                time.time(),
                node.name,
            ),
        )


def delete(store: StateStore, names: Iterable[str]) -> None:
    with store.transaction() as conn:
        conn.executemany("DELETE FROM nodes WHERE name = ?", [(n,) for n in names])


def get(store: StateStore, name: str) -> Node | None:
    row = store.connection().execute("SELECT * FROM nodes WHERE name = ?", (name,)).fetchone()
    return _node(row) if row else None


def intent_abandoned(store: StateStore, name: str, max_age: float) -> bool:
    """An ``intent`` whose writer died, or that is older than any allocation can take
    (so a recycled PID cannot keep a lease forever)."""
    row = (
        store.connection()
        .execute("SELECT holder_pid, updated_at FROM nodes WHERE name = ?", (name,))
        .fetchone()
    )
    if row is None:
        return False
    return not pid_alive(row[0]) or time.time() - row[1] > max_age


def select(
    store: StateStore,
    *,
    provider: str | None = None,
    site: str | None = None,
    group: str | None = None,
    state: str | None = None,
) -> list[Node]:
    clauses, args = [], []
    for column, value in (("provider", provider), ("site", site), ("grp", group), ("state", state)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = store.connection().execute(f"SELECT * FROM nodes{where} ORDER BY name", args)
    return [_node(row) for row in rows]


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
