"""Opening a second state store in a process must not drop the locks of the first one.

SQLite locks with POSIX advisory locks, which belong to the process: closing any
descriptor of the file releases them all. hotsite.private once opened and closed the
database file to tighten its mode, so a controller opening a second store for a move
left its first connection unlocked ('disk I/O error' under concurrent writers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hotsite.private import private_sqlite
from hotsite.state import StateStore

GRAB = (
    "import sqlite3, sys\n"
    "conn = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
    "conn.execute('BEGIN IMMEDIATE')\n"
)


def _other_process_can_write(path: Path) -> bool:
    done = subprocess.run([sys.executable, "-c", GRAB, str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        assert "locked" in done.stderr, done.stderr
    return done.returncode == 0


def test_a_second_store_keeps_the_first_ones_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = StateStore(path)
    conn = first.connection()
    conn.execute("BEGIN IMMEDIATE")
    try:
        assert not _other_process_can_write(path)  # the lock is held
        # What a second store (or journal) of this process does first: prepare the same
        # files. (Its schemas would then wait for the lock: not this test's business.)
        private_sqlite(path)
        assert not _other_process_can_write(path)  # … and still held
    finally:
        conn.execute("ROLLBACK")
    assert _other_process_can_write(path)


def test_the_store_is_private_even_when_made_readable(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateStore(path).connection().execute("SELECT 1")
    path.chmod(0o644)
    StateStore(path)
    assert path.stat().st_mode & 0o777 == 0o600
