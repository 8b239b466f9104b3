"""Moves on real servers and the one-link engine: a relocate under a write load loses no
acknowledged write; a failover from a killed primary promotes the DR site, and the old
primary, back, is fenced by its lease keeper; bad moves are refused in one line."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql
import pytest
import yaml

from hotsite.db import connect
from hotsite.dburl import DatabaseURL
from hotsite.dr.fence import SiteFence
from hotsite.dr.lease import LeaseKeeper
from hotsite.dr.record import Move
from hotsite.dr.record_sqlite import SqliteRecordStore
from hotsite.testing.mariadb import PrivateMariaDB, free_port
from tests.dr_helpers import Controller, dr_project, get, wait_for, web_sites
from tests.helpers import hotsite, kill_group, start_replicate


class Writer:
    """Inserts pets one transaction at a time as an ordinary application user (no
    READ_ONLY ADMIN), always at the site the record names primary; every acknowledged
    write (COMMIT returned) is remembered."""

    def __init__(self, servers: dict[str, PrivateMariaDB], records: SqliteRecordStore) -> None:
        self.servers = servers
        self.records = records
        self.acknowledged: dict[str, list[int]] = {site: [] for site in servers}
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._next = 1

    def start(self) -> Writer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        conns: dict[str, Any] = {}
        while not self._stop.is_set():
            record = self.records.read()
            site = record.primary if record else "primary"
            try:
                conn = conns.get(site) or app_connection(self.servers[site])
                conns[site] = conn
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO app.pets (id, name) VALUES (%s, 'rex')", (self._next,))
                conn.commit()
                self.acknowledged[site].append(self._next)
            except pymysql.MySQLError:
                self.failed += 1
                conns.pop(site, None)
                time.sleep(0.01)
            self._next += 1
            time.sleep(0.002)


def app_connection(server: PrivateMariaDB) -> Any:
    return pymysql.connect(
        host="127.0.0.1", port=server.port, user="app", password="pw", database="app",
        autocommit=False, connect_timeout=1,
    )  # fmt: skip


@pytest.fixture
def sites(tmp_path: Path, mariadb_factory: Callable[..., PrivateMariaDB]) -> dict[str, Any]:
    return dr_project(tmp_path, mariadb_factory)


def ids(server: PrivateMariaDB) -> set[int]:
    return {int(row[0]) for row in server.execute("SELECT id FROM app.pets")}


def read_only(server: PrivateMariaDB) -> bool:
    return server.execute("SELECT @@GLOBAL.read_only") == [(1,)]


def test_relocate_under_load_loses_no_acknowledged_write(sites: dict[str, Any]) -> None:
    config, primary, dr, records = (sites[k] for k in ("config", "primary", "dr", "records"))
    replicate = start_replicate(config)
    writer = Writer({"primary": primary, "dr": dr}, records).start()
    try:
        time.sleep(1.0)
        result = hotsite(config, "relocate", "--to", "dr")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "RPO 0 transactions" in result.stdout
        time.sleep(0.5)
    finally:
        writer.stop()
        kill_group(replicate)
    before, after = writer.acknowledged["primary"], writer.acknowledged["dr"]
    assert len(before) > 20 and len(after) > 20, (len(before), len(after))
    assert set(before) <= ids(dr)  # RPO 0: every write the old primary acknowledged
    assert set(after) <= ids(dr)
    assert not set(after) & ids(primary)  # nothing reached the old primary after
    assert read_only(primary) and not read_only(dr)
    record = records.read()
    assert (record.primary, record.epoch, record.move) == ("dr", 2, None)
    fence = primary.execute("SELECT kind, epoch FROM hotsite.hotsite_fence")
    assert fence == [("move", 2)]

    shown_record = hotsite(config, "record", "--json")
    assert shown_record.returncode == 0, shown_record.stderr
    report = json.loads(shown_record.stdout)
    assert (report["record"]["primary"], report["record"]["epoch"]) == ("dr", 2)
    assert report["writable"] == ["dr"]
    assert report["sites"]["primary"]["fenced"] and report["sites"]["primary"]["kind"] == "move"

    moves = json.loads(hotsite(config, "history", "--json").stdout)
    assert [(m["kind"], m["outcome"], m["rpo_transactions"]) for m in moves] == [
        ("relocate", "done", 0)
    ]
    assert 0 < moves[0]["write_pause_seconds"] <= moves[0]["switch_seconds"]
    shown = hotsite(config, "history", "show", moves[0]["id"][:6])
    for step in ("decided", "fenced", "applied to the end", "promoted", "epoch"):
        assert f"s  {step}  " in shown.stdout, shown.stdout
    # No entry point in this project: the move says so, it does not fail for it.
    assert "traffic switch failed  there is no entry point" in shown.stdout

    # Refusals: one line, exit 2, nothing changed.
    for args, words in [
        (("relocate", "--to", "dr"), "site 'dr' is already primary (epoch 2)"),
        (("failover", "--to", "elsewhere"), "unknown site 'elsewhere'"),
    ]:
        refused = hotsite(config, *args)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1 and words in lines[0], refused.stderr
    assert records.read().epoch == 2  # type: ignore[union-attr]


def test_failover_from_a_killed_primary_and_its_return_fenced(sites: dict[str, Any]) -> None:
    config, primary, dr, records = (sites[k] for k in ("config", "primary", "dr", "records"))
    with web_sites("primary", "dr") as ports:
        entry_port = free_port()
        data = yaml.safe_load(config.read_text())
        data["dr"]["entry"] = {
            "listen": f"127.0.0.1:{entry_port}",
            "servers": {site: f"127.0.0.1:{port}" for site, port in ports.items()},
        }
        config.write_text(yaml.safe_dump(data))
        assert hotsite(config, "entry", "up").returncode == 0
        try:
            wait_for(lambda: _answer(entry_port) == "primary", "the entry point")
            _failover_scenario(config, primary, dr, records)
            assert get(entry_port) == "dr"  # the same address, now the DR site
            status = json.loads(hotsite(config, "entry", "status", "--json").stdout)
            admin = {s["site"]: s["admin"] for s in status["servers"]}
            assert admin == {"primary": "maint", "dr": "ready"}
        finally:
            hotsite(config, "entry", "down")


def _failover_scenario(
    config: Path, primary: PrivateMariaDB, dr: PrivateMariaDB, records: SqliteRecordStore
) -> None:
    primary.execute("INSERT INTO app.pets VALUES (1, 'a'), (2, 'b')")
    replicate = start_replicate(config)
    try:
        deadline = time.monotonic() + 30
        while ids(dr) != {1, 2}:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        primary.kill()
        # A second move while this one is in flight is refused.
        records.begin_move(Move("other", "relocate", "dr", time.time()), expected_epoch=1)
        refused = hotsite(config, "failover", "--to", "dr")
        assert refused.returncode == 2 and "in flight (move other" in refused.stderr
        records.abort_move("other")

        # Unreachable, and no lease keeper ever held its lease: refused without --force.
        refused = hotsite(config, "failover", "--to", "dr")
        assert refused.returncode == 2 and "has held no lease at epoch 1" in refused.stderr
        assert records.read().move is None  # type: ignore[union-attr]
        result = hotsite(config, "failover", "--to", "dr", "--apply-timeout", "5", "--force")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "RPO unknown" in result.stdout and "unreachable" in result.stderr
        assert "traffic not switched" not in result.stderr
    finally:
        kill_group(replicate)
    assert not read_only(dr) and ids(dr) == {1, 2}
    assert (records.read().primary, records.read().epoch) == ("dr", 2)  # type: ignore[union-attr]

    # The old primary comes back writable (the failover could not reach it): its lease
    # keeper learns it is not the primary and fences it.
    primary.start()
    assert not read_only(primary)
    url = DatabaseURL.parse(primary.url())
    keeper = LeaseKeeper(
        "primary", _RecordController(records), SiteFence(lambda: connect(url, "primary")),
        interval=0.1, fence_before=0.25,
    )  # fmt: skip
    keeper.step()
    assert read_only(primary) and keeper.poll()["role"] == "standby"
    with pytest.raises(pymysql.err.OperationalError):
        conn = app_connection(primary)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO app.pets VALUES (3, 'c')")


class _RecordController:
    """The controller's two answers, straight from the record store."""

    def __init__(self, records: SqliteRecordStore) -> None:
        self.records = records

    def record(self) -> dict[str, Any]:
        return self.records.read().as_dict(time.time())  # type: ignore[union-attr]

    def lease(self, site: str, epoch: int) -> dict[str, Any]:
        grant = self.records.grant_lease(site, epoch, 1.0, time.time())
        return {"granted": grant.granted, "ttl": grant.ttl, "reason": grant.reason,
                "record": grant.record.as_dict(time.time())}  # fmt: skip


def test_a_move_interrupted_mid_way_is_resumed_or_rolled_back(sites: dict[str, Any]) -> None:
    config, primary, dr, records = (sites[k] for k in ("config", "primary", "dr", "records"))
    fence = SiteFence(lambda: connect(DatabaseURL.parse(primary.url()), "primary"))
    # A relocate whose command died after fencing the primary (kill -9): rolled back.
    records.begin_move(Move("re-dead", "relocate", "dr", time.time()), expected_epoch=1)
    records.advance_move("re-dead", "fenced")
    fence.fence("move", 2, "relocate to dr")
    result = hotsite(config, "resume")
    assert result.returncode == 0 and "rolled back" in result.stdout, result.stdout + result.stderr
    record = records.read()
    assert (record.primary, record.epoch, record.move) == ("primary", 1, None)  # type: ignore[union-attr]
    assert not read_only(primary)  # the primary it was is writable again

    # A failover whose command died after fencing: carried to its end.
    primary.execute("INSERT INTO app.pets VALUES (7, 'g')")
    replicate = start_replicate(config)
    try:
        deadline = time.monotonic() + 30
        while 7 not in ids(dr):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        records.begin_move(Move("fa-dead", "failover", "dr", time.time()), expected_epoch=1)
        fence.fence("move", 2, "failover to dr")
        result = hotsite(config, "resume")
    finally:
        kill_group(replicate)
    assert result.returncode == 0 and "fa-dead done" in result.stdout, result.stdout + result.stderr
    assert "RPO 0 transactions" in result.stdout
    assert (records.read().primary, records.read().epoch) == ("dr", 2)  # type: ignore[union-attr]
    assert read_only(primary) and not read_only(dr)
    assert hotsite(config, "resume").stdout.strip() == "no move in flight"


def test_a_controller_restarted_mid_move_resumes_it(sites: dict[str, Any]) -> None:
    config, primary, dr, records = (sites[k] for k in ("config", "primary", "dr", "records"))
    data = yaml.safe_load(config.read_text())
    data["dr"]["controller"] = {"listen": f"127.0.0.1:{free_port()}"}
    config.write_text(yaml.safe_dump(data))
    # The controller was killed (-9) in the middle of its automatic failover: the move is
    # in the record, nobody holds the move lock.
    records.begin_move(Move("fa-left", "failover", "dr", time.time()), expected_epoch=1)
    records.advance_move("fa-left", "traffic cut")
    controller = Controller(config).start()
    try:
        wait_for(lambda: records.read().primary == "dr", "the resumed failover")  # type: ignore[union-attr]
        assert records.read().epoch == 2  # type: ignore[union-attr]
        assert read_only(primary) and not read_only(dr)
        assert controller.process is not None and controller.process.stdout is not None
        line = controller.process.stdout.readline()
        assert "resumed failover fa-left left in flight: done, dr primary at epoch 2" in line
    finally:
        controller.stop()


def _answer(port: int) -> str:
    try:
        return get(port)
    except OSError:  # the entry point still starting on a busy machine
        return ""


def test_a_relocate_killed_once_its_target_is_writable_is_carried_forward(
    sites: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash right after the target was made writable: the record already says
    promoted, so resume finishes the move; rolling it back would make both writable."""
    config, primary, dr, records = (sites[k] for k in ("config", "primary", "dr", "records"))
    primary.execute("INSERT INTO app.pets VALUES (8, 'h')")
    replicate = start_replicate(config)
    try:
        wait_for(lambda: 8 in ids(dr), "replication of the row", 30)
        monkeypatch.setenv("HOTSITE_FAULT", "move.after_unfence")
        died = hotsite(config, "relocate", "--to", "dr")
        monkeypatch.delenv("HOTSITE_FAULT")
        assert died.returncode == 137, died.stdout + died.stderr
        record = records.read()
        assert record.move is not None and record.move.step == "promoted", record
        assert read_only(primary) and not read_only(dr)  # one writable, never two
        result = hotsite(config, "resume")
    finally:
        kill_group(replicate)
    assert result.returncode == 0 and "done" in result.stdout, result.stdout + result.stderr
    record = records.read()
    assert (record.primary, record.epoch, record.move) == ("dr", 2, None)  # type: ignore[union-attr]
    assert read_only(primary) and not read_only(dr)
