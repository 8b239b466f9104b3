"""Transient target trouble (a row lock held, the server restarting) is waited out: apply
retries with backoff, says so once per change of state, and then catches up exactly."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

from hotsite.testing.mariadb import PrivateMariaDB
from tests.helpers import (
    Workload,
    applied,
    catch_up,
    kill_group,
    rows,
    source_seq,
    start_replicate,
    table_checksums,
    write_config,
)


def _wait_applied(
    target: PrivateMariaDB, source: PrivateMariaDB, replicate, timeout: float = 60
) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while int(applied(target)[0].split("-")[-1]) < source_seq(source):
        assert replicate.poll() is None, replicate.stderr.read() if replicate.stderr else ""
        assert time.monotonic() < deadline, "apply did not catch up"
        time.sleep(0.1)


def _lines(stderr: str, fragment: str) -> list[str]:
    return [line for line in stderr.splitlines() if fragment in line]


def test_row_lock_held_on_the_target_is_waited_out(
    mariadb_factory: Callable[..., PrivateMariaDB], tmp_path: Path
) -> None:
    source = mariadb_factory()
    target = mariadb_factory(**{"innodb-lock-wait-timeout": "1"})
    for server in (source, target):
        server.execute("CREATE DATABASE app")
    source.execute(
        "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)", "INSERT INTO app.t VALUES (1, 0), (2, 0)"
    )
    config = write_config(tmp_path, source, target)
    catch_up(config)
    locker = target.connect("app")
    locker.autocommit(False)
    with locker.cursor() as cur:
        cur.execute("SELECT * FROM t WHERE id = 1 FOR UPDATE")  # held for 4 s: > the lock wait
    replicate = start_replicate(config)
    try:
        source.execute("UPDATE app.t SET v = 1 WHERE id = 1", "INSERT INTO app.t VALUES (3, 3)")
        time.sleep(4)
        assert replicate.poll() is None, "a lock wait must not stop the agent"
        assert rows(target, "app.t") == [(1, 0), (2, 0)], "nothing applied around the lock"
        locker.rollback()
        _wait_applied(target, source, replicate)
    finally:
        locker.close()
        kill_group(replicate, signal.SIGTERM)
    stderr = replicate.stderr.read() if replicate.stderr else ""
    assert rows(target, "app.t") == rows(source, "app.t")
    assert len(_lines(stderr, "busy")) == 1, stderr  # one line, not one per retry
    assert "row lock" in _lines(stderr, "busy")[0]
    assert len(_lines(stderr, "applies again")) == 1, stderr


def test_target_restart_mid_stream_warns_once_then_catches_up(
    source_and_target: tuple[PrivateMariaDB, PrivateMariaDB], tmp_path: Path
) -> None:
    source, target = source_and_target
    load = Workload(source)
    load.create()
    config = write_config(tmp_path, source, target)
    catch_up(config)
    start_seq = source_seq(source)
    replicate = start_replicate(config)
    try:
        load.start()
        time.sleep(1)
        target.kill()  # kill -9 mid-apply; it stays down for a while
        time.sleep(3)
        target.start()
        time.sleep(1)
        load.stop()
        _wait_applied(target, source, replicate)
    finally:
        load.stop_event.set()
        kill_group(replicate, signal.SIGTERM)
    stderr = replicate.stderr.read() if replicate.stderr else ""
    assert len(_lines(stderr, "unreachable")) == 1, stderr
    assert "target dr unreachable" in _lines(stderr, "unreachable")[0]
    assert len(_lines(stderr, "reachable again")) == 1, stderr
    assert "Traceback" not in stderr
    assert table_checksums(target) == table_checksums(source)
    assert applied(target)[1] == source_seq(source) - start_seq
