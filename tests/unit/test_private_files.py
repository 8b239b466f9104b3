"""hotsite's own files are private (0700 directories, 0600 files) whatever the umask,
SQLite's -wal/-shm included; shared project or state directories are warned about."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotsite.locks import FileLock
from hotsite.private import private_dir, sharing_warnings, write_private
from hotsite.replication.gtid import GtidState
from hotsite.replication.journal import Journal
from hotsite.state import StateStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def loose_umask() -> Iterator[None]:
    """The common default umask, under which plain files come out 0644."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_state_store_and_its_wal_and_shm_are_0600(tmp_path: Path) -> None:
    home = tmp_path / "project" / ".hotsite"
    store = StateStore(home / "state.db")
    with store.transaction() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
    assert mode(home) == 0o700
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        assert mode(home / name) == 0o600, name
    store.close()


def test_journal_and_its_wal_and_shm_are_0600(tmp_path: Path) -> None:
    journal = Journal(tmp_path / ".hotsite" / "journal" / "a-to-b.db")
    journal.append([], GtidState())
    for path in (tmp_path / ".hotsite", tmp_path / ".hotsite" / "journal"):
        assert mode(path) == 0o700, path
    for suffix in ("", "-wal", "-shm"):
        assert mode(journal.path.with_name(journal.path.name + suffix)) == 0o600, suffix
    journal.close()


def test_a_file_an_older_version_left_readable_is_tightened_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateStore(path).close()
    path.chmod(0o644)
    StateStore(path).close()
    assert mode(path) == 0o600


def test_locks_and_status_files_are_private(tmp_path: Path) -> None:
    with FileLock(tmp_path / ".hotsite" / "locks" / "x.lock", "x"):
        assert mode(tmp_path / ".hotsite" / "locks") == 0o700
        assert mode(tmp_path / ".hotsite" / "locks" / "x.lock") == 0o600
    status = tmp_path / ".hotsite" / "status" / "a-to-b.json"
    write_private(status, "{}")
    write_private(status, '{"again": 1}')
    assert mode(status.parent) == 0o700 and mode(status) == 0o600
    assert status.read_text() == '{"again": 1}'
    assert sorted(p.name for p in status.parent.iterdir()) == ["a-to-b.json"]


def test_existing_directories_are_left_alone_but_missing_parents_are_private(
    tmp_path: Path,
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    private_dir(mine / "a" / "b")
    assert mode(mine) == 0o755
    assert mode(mine / "a") == mode(mine / "a" / "b") == 0o700


def test_shared_project_and_state_directories_get_one_warning_each(tmp_path: Path) -> None:
    project, home = tmp_path / "project", tmp_path / "project" / ".hotsite"
    private_dir(home)
    project.chmod(0o755)
    assert sharing_warnings(project, home) == []
    project.chmod(0o775)
    home.chmod(0o755)
    first, second = sharing_warnings(project, home)
    assert f"the project directory {project} is writable by other users (mode 0775)" in first
    assert f"chmod 700 {home}" in second
    project.chmod(0o1777)  # sticky, like /tmp: others cannot replace our files
    assert len(sharing_warnings(project, home)) == 1
