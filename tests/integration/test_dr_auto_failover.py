"""Automatic failover by the controller (`dr.auto_failover: true`), with real servers:
never while the controller still reaches the primary (the link between the sites alone
is cut) nor while the DR site's agent still reaches it; within seconds once both lose
it — and the DR site's database is then the only writable one."""

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
from hotsite.testing.mariadb import PrivateMariaDB, free_port
from tests.dr_helpers import TOKEN, Controller, wait_for
from tests.helpers import kill_group, start_replicate, write_config


class DRAgentReports:
    """What the DR site's agent would report: how long since it last reached the primary."""

    def __init__(self, client: ControllerClient) -> None:
        self.client = client
        self.primary_unreached_for = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> DRAgentReports:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.client.report("dr", {"peers": {"primary": self.primary_unreached_for}})
            except Exception:
                pass  # the controller restarting; the next report goes through


def test_failover_only_when_both_lose_the_primary(
    tmp_path: Path, mariadb_factory: Callable[..., PrivateMariaDB]
) -> None:
    primary, dr = mariadb_factory(), mariadb_factory()
    for server in (primary, dr):
        server.execute("CREATE DATABASE app")
    primary.execute("CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)")
    config = write_config(tmp_path, primary, dr)
    data = yaml.safe_load(config.read_text())
    listen = f"127.0.0.1:{free_port()}"
    data["dr"] = {
        "primary": "primary", "lease": 1.0, "clock_margin": 0.2, "auto_failover": True,
        "detection": {"interval": 0.1, "dead_after": 0.6}, "controller": {"listen": listen},
    }  # fmt: skip
    config.write_text(yaml.safe_dump(data))
    replicate = start_replicate(config)
    controller = Controller(config).start()
    reports = DRAgentReports(ControllerClient(f"http://{listen}", Token(TOKEN))).start()
    records = SqliteRecordStore(StateStore(tmp_path / ".hotsite" / "state.db"))
    # The primary's agent holds the lease (without one, an unreachable primary is never
    # failed away from automatically: nothing would make sure it stopped writing).
    keeper = LeaseKeeper(
        "primary", ControllerClient(f"http://{listen}", Token(TOKEN), timeout=0.3),
        SiteFence(lambda: connect(DatabaseURL.parse(primary.url()), "primary", timeout=0.5)),
        interval=0.1, fence_before=0.35,
    )  # fmt: skip
    keeper.start()
    try:
        wait_for(lambda: keeper.poll()["holding"], "the primary's lease")
        wait_for(lambda: dr.execute("SELECT COUNT(*) FROM app.t") == [(1,)], "replication")
        # The link between the sites is cut: the DR agent loses the primary, the
        # controller does not. Nothing moves.
        reports.primary_unreached_for = 99.0
        time.sleep(1.5)
        assert (records.read().primary, records.read().epoch) == ("primary", 1)  # type: ignore[union-attr]

        # The primary dies, but the DR agent says it still reaches it: nothing moves.
        reports.primary_unreached_for = 0.0
        primary.kill()
        died = time.monotonic()
        time.sleep(1.5)
        assert records.read().epoch == 1  # type: ignore[union-attr]

        # Both lose it: the controller fails over by itself.
        reports.primary_unreached_for = 99.0
        confirmed = time.monotonic()
        wait_for(lambda: records.read().primary == "dr", "the failover", timeout=20)  # type: ignore[union-attr]
        took = time.monotonic() - confirmed
        assert took < 5.0, took
        assert records.read().epoch == 2  # type: ignore[union-attr]
        assert dr.execute("SELECT @@GLOBAL.read_only") == [(0,)]
        assert dr.execute("SELECT COUNT(*) FROM app.t") == [(1,)]
        move = History(StateStore(tmp_path / ".hotsite" / "state.db")).moves()[0]
        shown = History(StateStore(tmp_path / ".hotsite" / "state.db")).get(move.id)
        steps = [step for _, step, _ in shown.steps]  # type: ignore[union-attr]
        assert steps[:2] == ["failure detected", "decided"], steps
        assert "lease expired" in steps and "promoted" in steps
        # From the primary's last sign of life to the traffic switch (no entry point
        # here: to the promotion), on the controller's clock.
        assert 0 < move.summary["since_failure_seconds"] < 10
        assert died < confirmed
    finally:
        keeper.stop()
        reports.stop()
        controller.stop()
        kill_group(replicate)
