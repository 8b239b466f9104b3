"""One-way replication against real MariaDB servers: data identical, nothing lost or twice."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from hotsite.testing.mariadb import PrivateMariaDB
from tests.helpers import (
    Workload,
    applied,
    catch_up,
    hotsite,
    kill_group,
    rows,
    source_seq,
    start_replicate,
    table_checksums,
    write_config,
)

Servers = tuple[PrivateMariaDB, PrivateMariaDB]


def test_initial_snapshot_then_streaming_keeps_tables_identical(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    load = Workload(source)
    load.create(initial_rows=500)
    config = write_config(tmp_path, source, target)
    catch_up(config)
    assert table_checksums(target) == table_checksums(source)

    replicate = start_replicate(config)
    try:
        load.run_for(3)
        catch_up_while_running = time.monotonic() + 60
        goal = source_seq(source)
        while int(applied(target)[0].split("-")[-1]) < goal:
            assert time.monotonic() < catch_up_while_running, "apply did not catch up"
            time.sleep(0.1)
    finally:
        kill_group(replicate, signal.SIGTERM)
    assert load.transactions > 50
    assert table_checksums(target) == table_checksums(source)
    assert rows(target, "app.items") == rows(source, "app.items")


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_nothing_and_applies_nothing_twice(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    load = Workload(source, threads=2)
    load.create()
    config = write_config(tmp_path, source, target)
    catch_up(config)
    start_seq = source_seq(source)
    rng = random.Random(3)
    load.start()
    try:
        for _ in range(4):
            replicate = start_replicate(config)
            time.sleep(rng.uniform(0.8, 2.5))
            kill_group(replicate)  # kill -9 of the agent and its capture process
    finally:
        load.stop()
    catch_up(config)
    assert table_checksums(target) == table_checksums(source)
    _, count = applied(target)
    assert count == source_seq(source) - start_seq, "each source transaction applied exactly once"


def test_ddl_mid_stream_replicates_in_order(source_and_target: Servers, tmp_path: Path) -> None:
    source, target = source_and_target
    source.execute(
        "CREATE TABLE app.t1 (id INT PRIMARY KEY, a VARCHAR(10))",
        "INSERT INTO app.t1 VALUES (1, 'x')",
    )
    config = write_config(tmp_path, source, target)
    replicate = start_replicate(config)
    try:
        source.execute(
            "ALTER TABLE app.t1 ADD COLUMN b INT NOT NULL DEFAULT 5",
            "INSERT INTO app.t1 VALUES (2, 'y', 6)",
            "CREATE TABLE app.t2 (k VARCHAR(8) PRIMARY KEY, v JSON)",
            """INSERT INTO app.t2 VALUES ('a', '{"x": [1, 2]}')""",
            "RENAME TABLE app.t1 TO app.t1_renamed",
            "UPDATE app.t1_renamed SET b = b + 1",
            "CREATE TABLE app.doomed (id INT PRIMARY KEY)",
            "INSERT INTO app.doomed VALUES (1)",
            "DROP TABLE app.doomed",
            "TRUNCATE TABLE app.t2",
            """INSERT INTO app.t2 VALUES ('b', '[]')""",
        )
        time.sleep(0.2)
    finally:
        kill_group(replicate, signal.SIGTERM)
    catch_up(config)
    assert sorted(r[0] for r in target.execute("SHOW TABLES FROM app")) == ["t1_renamed", "t2"]
    assert rows(target, "app.t1_renamed") == [(1, "x", 6), (2, "y", 7)]
    assert rows(target, "app.t2") == [("b", "[]")]
    assert table_checksums(target) == table_checksums(source)


def test_target_restart_mid_apply_and_source_restart_mid_capture(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    load = Workload(source)
    load.create()
    config = write_config(tmp_path, source, target)
    catch_up(config)
    start_seq = source_seq(source)
    replicate = start_replicate(config)
    try:
        load.run_for(1.5)
        target.kill()  # kill -9 of the target server while apply runs
        load.run_for(1.0)
        target.start()
        load.run_for(1.0)
        source.restart()  # the source goes away under the capture
        load.run_for(1.0)
        deadline = time.monotonic() + 60
        while int(applied(target)[0].split("-")[-1]) < source_seq(source):
            assert replicate.poll() is None, replicate.stderr.read() if replicate.stderr else ""
            assert time.monotonic() < deadline, "did not recover after the restarts"
            time.sleep(0.2)
    finally:
        kill_group(replicate, signal.SIGTERM)
    assert table_checksums(target) == table_checksums(source)
    assert applied(target)[1] == source_seq(source) - start_seq


def test_snapshot_while_source_keeps_writing(source_and_target: Servers, tmp_path: Path) -> None:
    source, target = source_and_target
    load = Workload(source)
    load.create(initial_rows=20000)
    target.execute(
        "CREATE TABLE app.items (id INT PRIMARY KEY)", "INSERT INTO app.items VALUES (-1)"
    )  # stale, and not this link's: overwritten only when asked to
    config = write_config(tmp_path, source, target)
    load.start()
    try:
        result = hotsite(config, "snapshot", "--quiet", "--force")
        assert result.returncode == 0, result.stderr
    finally:
        load.stop()
    catch_up(config)
    assert table_checksums(target) == table_checksums(source)
    assert rows(target, "app.items") == rows(source, "app.items")


def test_table_with_secondary_unique_key_applies_in_source_order(
    source_and_target: Servers, tmp_path: Path
) -> None:
    """Collapsing changes per key could reorder two rows swapping a unique value; such
    tables are applied change by change, so the swap below must replicate."""
    source, target = source_and_target
    source.execute(
        "CREATE TABLE app.users (id INT PRIMARY KEY, email VARCHAR(40) NOT NULL UNIQUE)",
        "INSERT INTO app.users VALUES (1, 'a@x'), (2, 'b@x')",
    )
    config = write_config(tmp_path, source, target)
    catch_up(config)
    conn = source.connect("app")
    with conn.cursor() as cur:
        for _ in range(20):  # swap the two emails, again and again, one change per transaction
            for first, second in ((1, 2), (2, 1)):
                cur.execute(f"UPDATE users SET email = 'tmp' WHERE id = {first}")
                cur.execute(f"UPDATE users SET email = 'a@x' WHERE id = {second}")
                cur.execute(f"UPDATE users SET email = 'b@x' WHERE id = {first}")
            cur.execute("UPDATE users SET email = CONCAT(email, '') WHERE id = 1")
        cur.execute("DELETE FROM users WHERE id = 2")
        cur.execute("INSERT INTO users VALUES (3, 'b@x')")
    conn.close()
    catch_up(config)
    assert rows(target, "app.users") == rows(source, "app.users")
    assert len(rows(target, "app.users")) == 2
