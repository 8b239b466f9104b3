"""sysbench oltp_write_only on the primary while hotsite replicates: identical tables."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from hotsite.testing.mariadb import PrivateMariaDB
from hotsite.testing.sysbench import run_sysbench
from tests.helpers import (
    applied,
    catch_up,
    kill_group,
    source_seq,
    start_replicate,
    table_checksums,
    write_config,
)


def sysbench(server: PrivateMariaDB, command: str, *extra: str) -> None:
    run_sysbench(server, command, "--threads=4", *extra, timeout=120)


@pytest.mark.skipif(shutil.which("sysbench") is None, reason="scripts/bootstrap installs sysbench")
def test_sysbench_write_load_replicates_identically(mariadb_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source, target = mariadb_factory(), mariadb_factory()
    source.execute("CREATE DATABASE sbtest")
    sysbench(source, "prepare")
    config = write_config(tmp_path, source, target, tables=["sbtest.*"], heartbeat_interval=0.5)
    # Both URLs name the database that exists and is replicated (the URL's must exist).
    config.write_text(config.read_text().replace("/app", "/sbtest"))
    catch_up(config)
    start_seq = source_seq(source)
    replicate = start_replicate(config)
    try:
        sysbench(source, "run", "--time=6")
    finally:
        kill_group(replicate, signal.SIGTERM)
    catch_up(config)
    assert table_checksums(target, "sbtest") == table_checksums(source, "sbtest")
    assert len(table_checksums(source, "sbtest")) == 4
    gtid_state, _ = applied(target)
    assert int(gtid_state.split("-")[-1]) >= source_seq(source) - 1  # a heartbeat may follow
    assert source_seq(source) - start_seq > 1000
