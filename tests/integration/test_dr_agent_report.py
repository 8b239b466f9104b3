"""The site agents' health reports, with real processes: `hotsite agent` at each site
(links, fence, lease, health report) and `hotsite controller` with auto_failover. The
primary's database stops → the DR agent's report says it no longer reaches it → the
controller fails over by itself; while the primary answers, the reports say so and
nothing moves."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql
import yaml

from hotsite.dr.client import ControllerClient
from hotsite.dr.history import History
from hotsite.dr.token import Token
from hotsite.state import StateStore
from hotsite.testing.mariadb import PrivateMariaDB, free_port
from tests.dr_helpers import TOKEN, Controller, wait_for
from tests.helpers import HOTSITE, kill_group, write_config

DEAD_AFTER = 0.8


def start_agent(config: Path, site: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*HOTSITE, "--config", str(config), "agent", "--site", site, "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=(config.parent / f"agent-{site}.err").open("a"),
        text=True,
        cwd=config.parent,
        env={**os.environ, "HOTSITE_CONTROL_TOKEN": TOKEN},
        start_new_session=True,
    )


def rows(server: PrivateMariaDB) -> list[tuple[object, ...]] | None:
    try:
        return server.execute("SELECT id FROM app.t")
    except pymysql.MySQLError:
        return None  # not created there yet


def peers_of(client: ControllerClient, site: str) -> dict[str, Any]:
    entry = client.sites()[site]
    report = entry.get("report") or {}
    fresh = entry.get("age") is not None and entry["age"] < DEAD_AFTER
    return dict(report.get("peers") or {}) if fresh else {}


def test_the_dr_agents_report_makes_the_controller_fail_over(
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
        "primary": "primary", "lease": 1.2, "clock_margin": 0.2, "auto_failover": True,
        "detection": {"interval": 0.1, "dead_after": DEAD_AFTER},
        "controller": {"listen": listen},
    }  # fmt: skip
    config.write_text(yaml.safe_dump(data))
    controller = Controller(config).start()
    agents = {site: start_agent(config, site) for site in ("primary", "dr")}
    client = ControllerClient(f"http://{listen}", Token(TOKEN), timeout=3)
    history = History(StateStore(tmp_path / ".hotsite" / "state.db"))
    try:
        wait_for(lambda: client.record()["lease_holder"] == "primary", "the lease", 60)
        wait_for(lambda: rows(dr) == [(1,)], "replication", 60)
        # Both agents report, each about the other, and both reach each other.
        wait_for(lambda: peers_of(client, "dr").get("primary", 99) < DEAD_AFTER, "dr's report")
        wait_for(lambda: peers_of(client, "primary").get("dr", 99) < DEAD_AFTER, "its report")
        time.sleep(1.5)
        assert client.record()["epoch"] == 1 and client.record()["primary"] == "primary"

        primary.kill()
        killed = time.time()
        wait_for(
            lambda: peers_of(client, "dr").get("primary", 0) >= DEAD_AFTER,
            "the DR agent reporting the primary unreached",
        )
        wait_for(lambda: client.record()["primary"] == "dr", "the automatic failover", 30)
        assert client.record()["epoch"] == 2
        assert dr.execute("SELECT @@GLOBAL.read_only") == [(0,)]
        assert dr.execute("SELECT id FROM app.t") == [(1,)]
        move = history.moves()[0]
        assert move.kind == "failover" and move.target == "dr"
        shown = history.get(move.id)
        assert shown is not None
        steps = [step for _, step, _ in shown.steps]
        assert steps[:2] == ["failure detected", "decided"], steps
        detected = shown.steps[0]
        assert "dr's agent" in str(detected[2]), detected
        assert detected[0] >= killed
    finally:
        client.close()
        for process in agents.values():
            kill_group(process)
        controller.stop()
