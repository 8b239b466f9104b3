"""The state store: what hotsite has done and owns (nodes, leases, host keys, runs...).

One SQLite file (``<home>/state.db``, private: mode 0600) in WAL mode, so readers never block the writer
and a crash never leaves half a record: every change goes through ``transaction()``.
Modules declare their own tables with ``register_schema``; the store creates them on
open, so a module's schema lives beside the code that uses it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hotsite.errors import StateError
from hotsite.private import private_sqlite
from hotsite.statefiles import STATE_DIR_HINT, cannot_write

_SCHEMAS: dict[str, str] = {}


def register_schema(name: str, ddl: str) -> None:
    """Add tables to every state store; ``ddl`` must be idempotent (IF NOT EXISTS)."""
    _SCHEMAS[name] = ddl


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any error: one writer at a time across
    processes, and all of it or nothing (the state store and the journals use it)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class StateStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._applied: set[str] = set()
        try:
            private_sqlite(path)  # 0600, and so its -wal/-shm (see hotsite.private)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise StateError(
                f"cannot open the state store {path} ({reason})", STATE_DIR_HINT
            ) from None
        try:
            self.connection()
        except OSError as exc:
            raise cannot_write(exc.filename or path, exc) from None
        except sqlite3.OperationalError as exc:  # 'unable to open database file', read-only
            raise StateError(
                f"cannot open the state store {path} ({exc})", STATE_DIR_HINT
            ) from None

    def _apply_schemas(self, conn: sqlite3.Connection) -> None:
        # A module may register its schema after a store was opened (imports are lazy),
        # so connection() applies whatever is new. executescript() COMMITs any open
        # transaction first, so each schema brings its own BEGIN/COMMIT.
        for name, ddl in list(_SCHEMAS.items()):
            if name not in self._applied:
                conn.executescript(f"BEGIN IMMEDIATE;\n{ddl}\nCOMMIT;")
                self._applied.add(name)

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        if len(self._applied) != len(_SCHEMAS) and not conn.in_transaction:
            self._apply_schemas(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: one writer at a time across processes."""
        with write_transaction(self.connection()) as conn:
            yield conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
