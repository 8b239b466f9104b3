"""The primary partitioned away from the controller and the DR site, its own clients
still reaching it: it fences itself before the DR site is promoted — by timestamps from
both sides — and at no moment are both databases writable (checked every 50 ms)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from hotsite.db import connect
from hotsite.dburl import DatabaseURL
from hotsite.dr.client import ControllerClient
from hotsite.dr.fence import SiteFence
from hotsite.dr.history import History
from hotsite.dr.lease import LeaseKeeper
from hotsite.dr.record_sqlite import SqliteRecordStore
from hotsite.dr.token import Token
from hotsite.state import StateStore
from hotsite.testing.drsites import WritableWatch
from hotsite.testing.mariadb import PrivateMariaDB, free_port
from tests.dr_helpers import TOKEN, Controller, CuttableProxy, wait_for
from tests.helpers import kill_group, start_replicate, write_config

LEASE, INTERVAL, DEAD_AFTER = 2.0, 0.1, 0.6


def test_partitioned_primary_fences_itself_before_the_dr_site_is_promoted(
    tmp_path: Path, mariadb_factory: Callable[..., PrivateMariaDB]
) -> None:
    primary, dr = mariadb_factory(), mariadb_factory()
    for server in (primary, dr):
        server.execute("CREATE DATABASE app")
    dr.execute("SET GLOBAL read_only = ON")  # a standby, as its agent keeps it
    primary.execute("CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)")
    # The controller and replication reach the primary through a path that can be cut;
    # the primary's agent (and its clients) reach its database directly.
    to_primary = CuttableProxy(primary.port)
    config = write_config(tmp_path, primary, dr)
    data = yaml.safe_load(config.read_text())
    data["sites"]["primary"]["database"] = f"mysql://root@127.0.0.1:{to_primary.port}/app"
    listen_port = free_port()
    data["dr"] = {
        "primary": "primary", "lease": LEASE, "clock_margin": 0.2, "auto_failover": True,
        "detection": {"interval": INTERVAL, "dead_after": DEAD_AFTER},
        "controller": {"listen": f"127.0.0.1:{listen_port}"},
    }  # fmt: skip
    config.write_text(yaml.safe_dump(data))
    controller = Controller(config).start()
    agent_to_controller = CuttableProxy(listen_port)
    keeper = LeaseKeeper(
        "primary",
        ControllerClient(f"http://127.0.0.1:{agent_to_controller.port}", Token(TOKEN), timeout=0.3),
        SiteFence(lambda: connect(DatabaseURL.parse(primary.url()), "primary", timeout=1)),
        interval=INTERVAL, fence_before=max(LEASE / 3, 2 * INTERVAL),
    )  # fmt: skip
    dr_agent = ControllerClient(f"http://127.0.0.1:{listen_port}", Token(TOKEN))
    peers = {"primary": 0.0}
    reporting = threading.Event()

    def report() -> None:
        while not reporting.wait(INTERVAL):
            try:
                dr_agent.report("dr", {"peers": dict(peers)})
            except Exception:
                pass

    reporter = threading.Thread(target=report, daemon=True)
    replicate = start_replicate(config)
    watch = WritableWatch({"primary": primary, "dr": dr}).start()
    records = SqliteRecordStore(StateStore(tmp_path / ".hotsite" / "state.db"))
    try:
        keeper.start()
        reporter.start()
        wait_for(lambda: keeper.poll()["holding"], "the primary's lease")
        wait_for(lambda: dr.execute("SELECT COUNT(*) FROM app.t") == [(1,)], "replication")
        # The partition: the controller, the DR site and replication lose the primary.
        partitioned = time.time()
        to_primary.cut()
        agent_to_controller.cut()
        peers["primary"] = 99.0
        wait_for(lambda: records.read().primary == "dr", "the failover", timeout=30)  # type: ignore[union-attr]
        # The primary's own clients still reach it: it is read-only.
        assert primary.execute("SELECT @@GLOBAL.read_only") == [(1,)]
        fenced_at = keeper.poll()["fenced_at"]
        assert fenced_at is not None
        move = History(StateStore(tmp_path / ".hotsite" / "state.db")).moves()[0]
        steps = History(StateStore(tmp_path / ".hotsite" / "state.db")).get(move.id).steps  # type: ignore[union-attr]
        promoted_at = next(at for at, step, _ in steps if step == "promoted")
        assert "lease expired" in [step for _, step, _ in steps]  # it could not fence it
        assert partitioned < fenced_at < promoted_at, (
            fenced_at - partitioned, promoted_at - partitioned,
        )  # fmt: skip
        time.sleep(0.3)
    finally:
        reporting.set()
        watch.stop()
        keeper.stop()
        controller.stop()
        kill_group(replicate)
        to_primary.close()
        agent_to_controller.close()
    assert watch.samples > 20
    assert watch.both_writable == [], "both databases were writable at some moment"
    assert dr.execute("SELECT @@GLOBAL.read_only") == [(0,)]
