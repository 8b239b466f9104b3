"""The site agent deployed by its blueprint onto a node of the site, from the controller's
wheelhouse, on a real SSH host (a network namespace) that has no route out of its own
subnet: the node reaches the controller and the source database on the subnet's
gateway, and no package index."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotsite.dr.record_sqlite import SqliteRecordStore
from hotsite.state import StateStore
from hotsite.testing.mariadb import PrivateMariaDB
from hotsite.testing.ports import free_port
from hotsite.testing.sshhosts import SSHHost, SSHHostFactory
from tests.dr_helpers import TOKEN, Controller, wait_for
from tests.helpers import hotsite, one_line_error
from tests.sshhosts_fixtures import missing_for_ssh_hosts, pool_config

pytestmark = [
    pytest.mark.skipif(missing_for_ssh_hosts() is not None, reason=missing_for_ssh_hosts() or ""),
    pytest.mark.slow,
]

AGENT_DIR = "/opt/hotsite-agent"
BLUEPRINT = """\
name: agentsite
nodes:
  db: {count: 1}
services:
  agent:
    group: db
    agent: {python: "{{PYTHON}}"}
outputs:
  database: "mysql://root@{{ nodes.db[0].address }}:3306/app"
"""


def _grant_subnet(server: PrivateMariaDB) -> None:
    # The agent connects over TCP from the site's subnet; root@localhost does not match.
    server.execute(
        "CREATE USER IF NOT EXISTS root@'10.213.%'",
        "GRANT ALL PRIVILEGES ON *.* TO root@'10.213.%' WITH GRANT OPTION",
        "CREATE DATABASE IF NOT EXISTS app",
    )


def _project(
    directory: Path, factory: SSHHostFactory, host: SSHHost, *, python: str = "python3"
) -> dict[str, Any]:
    """Project file, blueprint and record: the source ``primary`` on the gateway address
    (given by URL), the blueprint site ``dr`` on the host, the controller on the gateway."""
    gateway = f"10.213.{factory.subnet}.1"
    (directory / "site.yaml").write_text(BLUEPRINT.replace("{{PYTHON}}", python))
    config = pool_config(directory, factory, [host], pool={"accept_new_host_keys": True})
    data = yaml.safe_load(config.read_text())
    port = free_port()
    data.update(
        project="adtest",
        sites={
            "primary": {"database": f"mysql://root@{gateway}:{{PORT}}/app"},
            "dr": {"blueprint": "site.yaml", "driver": "rack"},
        },
        replication=[{"from": "primary", "to": "dr", "heartbeat_interval": 0.2}],
        dr={"primary": "primary", "lease": 2.0, "controller": {"listen": f"{gateway}:{port}"}},
    )
    return {"config": config, "data": data, "gateway": gateway}


def _write(project: dict[str, Any], source_port: int) -> Path:
    config: Path = project["config"]
    text = yaml.safe_dump(project["data"], sort_keys=False).replace("{PORT}", str(source_port))
    config.write_text(text)
    return config


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTSITE_CONTROL_TOKEN", TOKEN)


@pytest.fixture
def site(tmp_path: Path, ssh_hosts: SSHHostFactory, token_env: None) -> Iterator[dict[str, Any]]:
    """A host with its own /opt (so what the agent installs stays on it), its target
    database inside its namespace, the source on the gateway, the controller."""
    (host,) = ssh_hosts.create(1, private_dirs=["/opt"])
    project = _project(tmp_path, ssh_hosts, host)
    servers: list[PrivateMariaDB] = []
    controller = None
    try:
        source = PrivateMariaDB(server_id=27101, host=project["gateway"]).start()
        servers.append(source)
        target = PrivateMariaDB(
            server_id=27102,
            base_dir=Path(tempfile.mkdtemp(prefix="agentdeploy-")),  # short: a socket path
            netns=host.netns,
            host=host.address,
            port=3306,
        )
        target._owns_dir = True
        servers.append(target.start())
        for server in servers:
            _grant_subnet(server)
        target.execute("SET GLOBAL read_only = ON")  # a standby, as its agent keeps it
        source.execute("CREATE TABLE app.pets (id INT PRIMARY KEY, name VARCHAR(20))")
        config = _write(project, source.port)
        SqliteRecordStore(StateStore(tmp_path / ".hotsite" / "state.db")).initialise("primary")
        controller = Controller(config).start()
        yield {**project, "config": config, "host": host, "source": source, "target": target,
               "controller": controller}  # fmt: skip
    finally:
        if controller is not None:
            controller.stop()
        for server in servers:
            server.stop()


def _agent_pids(host: SSHHost) -> list[int]:
    """Processes in the host's namespace running the deployed agent (not its supervisor):
    the console script runs as `python .../venv/bin/hotsite`, its interpreter the venv's,
    made from the node's own Python."""
    return [
        pid
        for pid, line in host.processes().items()
        if "/venv/bin/hotsite " in line and " agent --site " in line
    ]


def _namespace_pids(host: SSHHost) -> set[int]:
    return set(host.processes()) - ({host.pid} if host.pid else set())


def _report_age(controller_config: Path, gateway: str, port: int) -> float | None:
    import http.client

    conn = http.client.HTTPConnection(gateway, port, timeout=2)
    try:
        conn.request("GET", "/v1/sites", headers={"Authorization": f"Bearer {TOKEN}"})
        sites = json.loads(conn.getresponse().read())
    except (OSError, ValueError):
        return None
    finally:
        conn.close()
    report = sites.get("dr") if isinstance(sites, dict) else None
    return float(report["age"]) if isinstance(report, dict) and "age" in report else None


# A wheelhouse built and installed on a node, the agent started, then torn down: on a
# loaded CI machine this outgrew the suite's 300 s per test.
@pytest.mark.timeout(900)
def test_up_deploys_the_agent_from_the_wheelhouse_and_down_removes_it(
    site: dict[str, Any],
) -> None:
    config, host = site["config"], site["host"]
    opt = host.private_dirs["/opt"]
    # No route out of the site's subnet: nothing but the wheelhouse can install anything.
    assert host.exec("ip", "route", "show", "default").stdout.strip() == ""
    assert host.exec("ip", "route", "get", "151.101.0.223").returncode != 0  # pypi.org

    started = time.monotonic()
    up = hotsite(config, "up", "dr", "-q", timeout=900)
    assert up.returncode == 0, up.stdout + up.stderr
    first_up = time.monotonic() - started

    # The agent runs on the node, from the venv made there from the wheelhouse.
    wait_for(lambda: _agent_pids(host), "the agent process on the node", 30)
    assert list((opt / "hotsite-agent" / "wheelhouse").glob("hotsite-*.whl"))
    assert list((opt / "hotsite-agent" / "venv").glob("lib/python3.*/site-packages/hotsite"))
    # Its token and project file: 0600 on the node, never in the controller's state.
    for name in ("token", "hotsite.yaml"):
        mode = stat.S_IMODE((opt / "hotsite-agent" / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert (opt / "hotsite-agent" / "token").read_text().strip() == TOKEN
    agent_config = yaml.safe_load((opt / "hotsite-agent" / "hotsite.yaml").read_text())
    assert agent_config["sites"]["dr"]["database"] == f"mysql://root@{host.address}:3306/app"
    assert agent_config["dr"]["controller"]["url"].startswith(f"http://{site['gateway']}:")
    state = config.parent / ".hotsite"
    for path in state.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    with sqlite3.connect(state / "state.db") as conn:
        logged = " ".join(str(r) for r in conn.execute("SELECT * FROM command_log").fetchall())
    assert TOKEN not in logged and "HOTSITE_AGENT_PROJECT" in logged

    # It reports to the controller and replicates: a row at the source reaches the target.
    port = int(site["data"]["dr"]["controller"]["listen"].rsplit(":", 1)[1])
    wait_for(
        lambda: (age := _report_age(config, site["gateway"], port)) is not None and age < 5,
        "the deployed agent's report at the controller",
        60,
    )
    site["source"].execute("INSERT INTO app.pets VALUES (1, 'rex')")
    wait_for(lambda: _rows(site["target"]) == [(1, "rex")], "the row at the target", 60)

    # up again: nothing to do (and the agent untouched).
    before = _agent_pids(host)
    again = hotsite(config, "up", "dr", "-q")
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    assert _agent_pids(host) == before

    # kill -9 of the agent: its supervisor starts it again, and it replicates again.
    os.kill(before[0], signal.SIGKILL)
    wait_for(lambda: _agent_pids(host) and _agent_pids(host) != before, "a new agent", 30)
    site["source"].execute("INSERT INTO app.pets VALUES (2, 'tom')")
    wait_for(lambda: len(_rows(site["target"])) == 2, "replication after the restart", 60)

    down = hotsite(config, "down", "dr", "-q")
    assert down.returncode == 0, down.stdout + down.stderr
    # Only the test's own target database and sshd are left in the namespace.
    target_pid = site["target"].process.pid if site["target"].process else None
    try:
        wait_for(lambda: _namespace_pids(host) <= {target_pid}, "no agent process left", 20)
    except AssertionError:
        left = [line for pid, line in host.processes().items() if pid not in (host.pid, target_pid)]
        raise AssertionError(f"left in the namespace: {left}") from None
    assert not (opt / "hotsite-agent").exists()
    print(f"first up (wheelhouse cached or built, venv, start) {first_up:.1f}s")


def _rows(server: PrivateMariaDB) -> list[tuple[Any, ...]]:
    try:
        return server.execute("SELECT id, name FROM app.pets ORDER BY id")
    except Exception:
        return []


def test_a_node_without_the_controllers_python_is_refused_before_any_step(
    tmp_path: Path, ssh_hosts: SSHHostFactory, token_env: None
) -> None:
    (host,) = ssh_hosts.create(1, private_dirs=["/opt"])
    fake = host.private_dirs["/opt"] / "python3.9"
    fake.write_text("#!/bin/sh\necho 3.9\n")
    fake.chmod(0o755)
    for python, expected in (("/opt/python3.9", "runs Python 3.9"), ("/nope/python3", "has no")):
        project = _project(tmp_path, ssh_hosts, host, python=python)
        config = _write(project, 1)
        result = hotsite(config, "up", "dr", "-q", timeout=900)
        assert result.returncode == 2, result.stdout + result.stderr
        one_line_error(result, expected)
        # Nothing of the agent on the node, no step recorded done.
        assert not (host.private_dirs["/opt"] / "hotsite-agent").exists()
        plan = hotsite(config, "plan", "dr", "--json")
        steps = json.loads(plan.stdout)["runs"][0]["steps"]
        assert steps[0] == "upload", steps


def test_a_wheelhouse_that_cannot_be_built_stops_up_before_any_node(
    tmp_path: Path, ssh_hosts: SSHHostFactory, token_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    (host,) = ssh_hosts.create(1)
    config = _write(_project(tmp_path, ssh_hosts, host), 1)
    # An empty cache and no index: pip cannot find a thing.
    monkeypatch.setenv("HOTSITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "2")
    result = hotsite(config, "up", "dr", "-q", timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    one_line_error(result, "building the agent's wheelhouse")
    listed = hotsite(config, "nodes", "list", "--json")
    assert yaml.safe_load(listed.stdout) == [], listed.stdout
    assert not list((tmp_path / "cache" / "wheelhouse").glob("hotsite-*"))
