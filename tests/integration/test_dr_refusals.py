"""Bad moves on real servers, each refused in one line, exit 2, the record unchanged and
no site made writable that should not be: a relocate to a site that is not caught up
(no position; behind, rolled back), a move to an unreachable site, a relocate from an
unreachable primary; a failback without the link back, while a link runs, or with the
old primary unreachable."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotsite.dr.record_sqlite import SqliteRecordStore
from hotsite.testing.mariadb import PrivateMariaDB
from tests.dr_helpers import app_write, dr_project, pets, read_only, wait_for
from tests.helpers import hotsite, kill_group, start_replicate


@pytest.fixture
def sites(tmp_path: Path, mariadb_factory: Callable[..., PrivateMariaDB]) -> dict[str, Any]:
    return dr_project(tmp_path, mariadb_factory)


def _first_row_replicated(config: Path, primary: PrivateMariaDB, dr: PrivateMariaDB) -> None:
    """A row replicated to dr, then the link stopped."""
    app_write(primary, "INSERT INTO app.pets VALUES (1, 'a')")
    replicate = start_replicate(config)
    try:
        wait_for(lambda: pets(dr) == [(1, "a")], "the first row at dr", 60)
    finally:
        kill_group(replicate)


def refused(config: Path, words: str, *args: str) -> None:
    result = hotsite(config, *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and words in lines[0], (
        result.stdout + result.stderr
    )


def at(records: SqliteRecordStore, primary: str, epoch: int) -> bool:
    record = records.read()
    return record is not None and (record.primary, record.epoch, record.move) == (
        primary, epoch, None,
    )  # fmt: skip


def test_bad_moves_are_refused(sites: dict[str, Any]) -> None:
    config, primary, dr, records = (sites[k] for k in ("config", "primary", "dr", "records"))
    # Never replicated: dr has no position from primary.
    refused(config, "has no replication position from 'primary': it is not caught up",
            "relocate", "--to", "dr")  # fmt: skip
    assert at(records, "primary", 1) and not read_only(primary)

    _first_row_replicated(config, primary, dr)
    # Behind (nothing streams): rolled back, primary writable again, dr not promoted.
    app_write(primary, "INSERT INTO app.pets VALUES (2, 'b')")
    refused(config, "relocate to dr rolled back: dr did not apply everything primary committed",
            "relocate", "--to", "dr", "--apply-timeout", "1")  # fmt: skip
    assert at(records, "primary", 1) and not read_only(primary)
    app_write(primary, "INSERT INTO app.pets VALUES (3, 'c')")  # it takes writes again
    assert primary.execute("SELECT kind FROM hotsite.hotsite_fence WHERE fenced = 1") == []

    # The target unreachable: nothing starts; the primary unreachable: no relocate.
    dr.kill()
    for move in ("relocate", "failover"):
        refused(config, "site 'dr' is not reachable", move, "--to", "dr")
    dr.start()
    primary.kill()
    refused(config, "the primary 'primary' is not reachable: a relocate needs it",
            "relocate", "--to", "dr")  # fmt: skip
    primary.start()
    assert at(records, "primary", 1) and not read_only(primary)


def test_bad_failbacks_are_refused(sites: dict[str, Any]) -> None:
    config, primary, dr, records = (sites[k] for k in ("config", "primary", "dr", "records"))
    _first_row_replicated(config, primary, dr)
    result = hotsite(config, "failover", "--to", "dr", "--apply-timeout", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing replicates back from dr to primary" in result.stderr

    # Without the link back.
    refused(config, "failback needs the replication link dr->primary", "failback")
    data = yaml.safe_load(config.read_text())
    data["replication"].append({"from": "dr", "to": "primary", "heartbeat_interval": 0})
    config.write_text(yaml.safe_dump(data))

    # The old primary unreachable.
    primary.kill()
    refused(config, "site 'primary' is not reachable", "failback")
    primary.start()

    # A link between them already running (someone's 'hotsite replicate').
    replicate = start_replicate(config, "--from", "primary", "--to", "dr")
    try:
        started = time.monotonic()
        refused(config, "the link primary->dr is running", "failback")
        assert time.monotonic() - started < 60
    finally:
        kill_group(replicate)
    # Nothing was done: dr primary at epoch 2, primary still fenced (its row: read_only
    # itself did not survive the restart, its agent sets it again), no failback begun.
    assert at(records, "dr", 2) and not read_only(dr)
    fence = primary.execute("SELECT kind, epoch FROM hotsite.hotsite_fence WHERE fenced = 1")
    assert fence == [("move", 2)]
    moves = hotsite(config, "history").stdout
    assert "failback" not in moves, moves
