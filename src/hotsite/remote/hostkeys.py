"""Known host keys, kept in the state store (not in ``~/.ssh/known_hosts``), so every
hotsite process of the project trusts exactly the same hosts and a changed key is
noticed by all of them."""

from __future__ import annotations

import time

import asyncssh

from hotsite.state import StateStore, register_schema

register_schema(
    "host_keys",
    """
    CREATE TABLE IF NOT EXISTS host_keys (
        address     TEXT NOT NULL,
        port        INTEGER NOT NULL,
        key         TEXT NOT NULL,      -- OpenSSH public key line
        fingerprint TEXT NOT NULL,
        node        TEXT,               -- the node it was first seen as
        recorded_at REAL NOT NULL,
        PRIMARY KEY (address, port)
    );
    """,
)


def known(store: StateStore, address: str, port: int) -> asyncssh.SSHKey | None:
    row = (
        store.connection()
        .execute("SELECT key FROM host_keys WHERE address = ? AND port = ?", (address, port))
        .fetchone()
    )
    return asyncssh.import_public_key(row[0]) if row else None


def remember(store: StateStore, address: str, port: int, key: asyncssh.SSHKey, node: str) -> None:
    """Record a key seen for the first time; never replaces a recorded one."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO host_keys (address, port, key, fingerprint, node, recorded_at)"
            " VALUES (?,?,?,?,?,?)",
            (
                address,
                port,
                key.export_public_key().decode().strip(),
                key.get_fingerprint(),
                node,
                time.time(),
            ),
        )


def forget(store: StateStore, address: str, port: int | None = None) -> int:
    with store.transaction() as conn:
        if port is None:
            cursor = conn.execute("DELETE FROM host_keys WHERE address = ?", (address,))
        else:
            cursor = conn.execute(
                "DELETE FROM host_keys WHERE address = ? AND port = ?", (address, port)
            )
        return cursor.rowcount


def listing(store: StateStore) -> list[dict[str, object]]:
    rows = store.connection().execute(
        "SELECT address, port, fingerprint, node, recorded_at FROM host_keys ORDER BY address, port"
    )
    return [dict(row) for row in rows]
