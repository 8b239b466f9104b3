"""After a real `hotsite replicate` (and a command that opens the state store) every
directory under .hotsite is 0700 and every file 0600, SQLite's -wal/-shm included,
although the process ran under the usual 022 umask."""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

import yaml

from hotsite.testing.mariadb import PrivateMariaDB
from tests.helpers import hotsite, kill_group, start_replicate, write_config

Servers = tuple[PrivateMariaDB, PrivateMariaDB]


def modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_replicate_leaves_only_private_files(source_and_target: Servers, tmp_path: Path) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY, secret VARCHAR(20))")
    source.execute("INSERT INTO app.t VALUES (1, 'card 4111')")
    config = write_config(tmp_path, source, target)
    data = yaml.safe_load(config.read_text())
    data["sites"]["web"] = {"blueprint": "bp.yaml"}  # so `outputs` opens the state store
    config.write_text(yaml.safe_dump(data))
    (tmp_path / "bp.yaml").write_text("nodes: {box: {count: 1}}\n")
    old = os.umask(0o022)
    try:
        replicate = start_replicate(config)
        try:
            source.execute("INSERT INTO app.t VALUES (2, 'card 5500')")
            deadline = time.monotonic() + 60
            while not target.execute("SELECT 1 FROM app.t WHERE id = 2"):
                assert replicate.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            found = modes(tmp_path / ".hotsite")  # while running: -wal and -shm exist
        finally:
            kill_group(replicate, signal.SIGTERM)
        hotsite(config, "outputs", "web")
        found.update(modes(tmp_path / ".hotsite"))
    finally:
        os.umask(old)
    for name in (
        "journal/primary-to-dr.db",
        "journal/primary-to-dr.db-wal",
        "journal/primary-to-dr.db-shm",
        "status/primary-to-dr.json",
        "locks/primary-to-dr.lock",
        "state.db",
    ):
        assert name in found, sorted(found)
    loose = {
        name: f"{m:04o}"
        for name, m in found.items()
        if m != (0o700 if (tmp_path / ".hotsite" / name).is_dir() or name == "." else 0o600)
    }
    assert loose == {}
