"""The journal never makes apply skip: gaps, damaged journals, full disks, cut snapshots."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from hotsite.replication.gtid import GtidState
from hotsite.replication.journal import Journal
from hotsite.testing.mariadb import PrivateMariaDB
from tests.helpers import (
    HOTSITE,
    catch_up,
    hotsite,
    one_line_error,
    table_checksums,
    write_config,
)

Servers = tuple[PrivateMariaDB, PrivateMariaDB]


def _dump(server: PrivateMariaDB, *databases: str) -> bytes:
    return subprocess.run(
        [
            "mariadb-dump",
            f"--defaults-file={server.defaults_file}",
            "--single-transaction",
            "--databases",
            *databases,
        ],
        check=True,
        capture_output=True,
    ).stdout


def _restore(server: PrivateMariaDB, dump: bytes) -> None:
    subprocess.run(["mariadb", f"--defaults-file={server.defaults_file}"], input=dump, check=True)


@pytest.mark.slow
def test_target_restored_from_a_backup_older_than_the_journal_is_caught_up_from_the_source(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY, v INT)")
    config = write_config(tmp_path, source, target)
    catch_up(config)
    source.execute("INSERT INTO app.t VALUES (1, 1)")
    catch_up(config)
    backup = _dump(target, "app", "hotsite")
    for i in range(2, 40):
        source.execute(f"INSERT INTO app.t VALUES ({i}, {i})", "UPDATE app.t SET v = v + 1")
    catch_up(config)
    journal = Journal(tmp_path / ".hotsite" / "journal" / "primary-to-dr.db")
    journal.trim(journal.last_seq(), keep=5)  # what the journal no longer holds
    journal.close()
    _restore(target, backup)  # the target goes back in time
    assert target.execute("SELECT COUNT(*) FROM app.t") == [(1,)]
    catch_up(config)
    assert table_checksums(target) == table_checksums(source)


def test_journal_whose_position_is_ahead_of_its_entries_is_not_trusted(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY)")
    config = write_config(tmp_path, source, target)
    catch_up(config)
    path = tmp_path / ".hotsite" / "journal" / "primary-to-dr.db"
    journal = Journal(path)
    shipped = journal.source_state()
    journal.close()
    for i in range(10):
        source.execute(f"INSERT INTO app.t VALUES ({i})")
    # A damaged journal: it claims everything the source has, holding none of it.
    ahead = GtidState.parse(str(source.execute("SELECT @@gtid_binlog_pos")[0][0]))
    journal = Journal(path)
    journal._set_meta("source_state", ahead)
    journal.close()
    assert shipped is not None and not shipped.reached(ahead)
    catch_up(config)
    assert target.execute("SELECT COUNT(*) FROM app.t") == [(10,)]


def test_interrupted_snapshot_says_the_target_is_incomplete_and_the_next_run_reloads_it(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute(
        "CREATE TABLE app.big (id INT PRIMARY KEY, pad VARCHAR(200))",
        "INSERT INTO app.big SELECT seq, REPEAT('x', 200) FROM seq_1_to_400000",
        database="app",
    )
    config = write_config(tmp_path, source, target)
    process = subprocess.Popen(
        [*HOTSITE, "--config", str(config), "snapshot", "--quiet"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 60
    while not target.execute(
        "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_ROWS > 0"
    ):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "incomplete" in stderr and "Traceback" not in stderr
    assert target.execute("SELECT snapshot_state FROM hotsite.hotsite_applied") == [("loading",)]
    catch_up(config)
    assert table_checksums(target) == table_checksums(source)


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_under_the_journal_is_one_line_and_the_next_run_resumes_identical(
    source_and_target: Servers, tmp_path: Path, small_disk: Path
) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY, pad TEXT)")
    config = write_config(tmp_path, source, target, journal=str(small_disk / "j.db"))
    catch_up(config)
    filler = small_disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    source.execute(
        "INSERT INTO app.t SELECT seq, REPEAT('y', 2000) FROM seq_1_to_2000", database="app"
    )
    message = one_line_error(hotsite(config, "replicate", "--until-caught-up"), "disk is full")
    assert str(small_disk) in message
    filler.unlink()
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    catch_up(config)
    assert table_checksums(target) == table_checksums(source)
