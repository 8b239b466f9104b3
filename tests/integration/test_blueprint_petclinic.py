"""The PetClinic site on real hosts: network namespaces running sshd, a BYON pool, each
host with a private /opt (so what the blueprint installs on one host the others don't
see). Real MariaDB, the real app, real HAProxy, driven by the real `hotsite` command."""

from __future__ import annotations

import os
import runpy
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
import yaml

from tests.helpers import HOTSITE, hotsite
from tests.sshhosts_fixtures import missing_for_ssh_hosts, needs_commands

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "petclinic"
PASSWORD = "pc-Secret-9431"

sshhosts = pytest.importorskip("hotsite.testing.sshhosts")
# Real hosts (namespaces running sshd) with MariaDB and HAProxy from this machine.
pytestmark = [
    pytest.mark.skipif(missing_for_ssh_hosts() is not None, reason=missing_for_ssh_hosts() or ""),
    needs_commands("mariadbd", "mariadb", "haproxy"),
]


@pytest.fixture(scope="module", autouse=True)
def wheelhouse() -> None:
    runpy.run_path(str(EXAMPLE / "make-wheelhouse"))["build"]()


@pytest.fixture
def hosts_factory(tmp_path: Path) -> Iterator[object]:
    factory = sshhosts.SSHHostFactory(tmp_path / "hosts")
    try:
        yield factory
    finally:
        factory.stop()


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETCLINIC_DB_PASSWORD", PASSWORD)


def project(
    directory: Path,
    factory: object,
    roles: list[str],
    *,
    blueprint: Path = EXAMPLE / "blueprint.yaml",
    inputs: dict[str, object] | None = None,
) -> tuple[Path, list[object]]:
    """A project file whose site `primary` is built from `blueprint` on a pool of new
    test hosts, one per role (db, web, web, lb...), tagged with it."""
    hosts = factory.create(len(roles), private_dirs=["/opt"])  # type: ignore[attr-defined]
    config = {
        "sites": {
            "primary": {
                "blueprint": str(blueprint),
                "driver": "rack",
                "inputs": {"web_count": roles.count("web")} if inputs is None else inputs,
            }
        },
        "nodes": {
            "ssh": {
                "key": str(factory.client_key_path),  # type: ignore[attr-defined]
                "connect_timeout": 5,
                "accept_new_host_keys": True,
            },
            "providers": {
                "rack": {
                    "driver": "byon",
                    "hosts": [
                        {"name": h.name, "address": h.address, "port": h.port, "tags": {"role": r}}
                        for h, r in zip(hosts, roles, strict=True)
                    ],
                }
            },
        },
    }
    path = directory / "hotsite.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, hosts


def kill_up_when(config: Path, step: tuple[str, str]) -> None:
    """Start `hotsite up`, kill -9 it as soon as ``step`` is recorded done."""
    process = subprocess.Popen(
        [*HOTSITE, "--config", str(config), "up", "primary", "-q"],
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while step not in steps_done(config):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"up did not get as far as {step}"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def outputs(config: Path) -> dict[str, str]:
    result = hotsite(config, "outputs", "primary", "--json")
    assert result.returncode == 0, result.stderr
    import json

    return dict(json.loads(result.stdout))


def post_pet(url: str, name: str) -> tuple[dict[str, object], str]:
    import json
    import urllib.request

    request = urllib.request.Request(
        url + "api/pets",
        data=json.dumps({"name": name, "type": "cat"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201
        return dict(json.loads(response.read())), response.headers["X-Served-By"]


def steps_done(config: Path) -> set[tuple[str, str]]:
    db = config.parent / ".hotsite" / "state.db"
    if not db.exists():
        return set()
    with sqlite3.connect(db, timeout=5) as conn:
        try:
            return {(r[0], r[1]) for r in conn.execute("SELECT service, step FROM bp_steps")}
        except sqlite3.OperationalError:
            return set()


def command_count(config: Path, step: str) -> int:
    with sqlite3.connect(config.parent / ".hotsite" / "state.db") as conn:
        return int(
            conn.execute("SELECT count(*) FROM command_log WHERE step = ?", (step,)).fetchone()[0]
        )


def app_logs(hosts: list[object]) -> str:
    """The web nodes' app logs, to explain a failed start."""
    text = ""
    for host in hosts:
        log = host.private_dirs["/opt"] / "petclinic" / "app.log"  # type: ignore[attr-defined]
        if log.exists():
            text += f"\n--- {log}\n{log.read_text()[-2000:]}"
    return text


def leftover_processes(host: object) -> list[str]:
    """Processes in the host's namespace other than its sshd."""
    pids = host.exec("ip", "netns", "pids", host.netns).stdout.split()  # type: ignore[attr-defined]
    names = []
    for pid in pids:
        try:
            names.append(Path(f"/proc/{pid}/comm").read_text().strip())
        except OSError:
            continue
    return [n for n in names if n != "sshd"]


def test_petclinic_up_resumes_after_kill_serves_pets_then_down_leaves_nothing(
    tmp_path: Path, hosts_factory: object
) -> None:
    # A spare web host in the pool, for scaling out later.
    config, hosts = project(tmp_path, hosts_factory, ["db", "web", "web", "lb", "web"])
    config.write_text(config.read_text().replace("web_count: 3", "web_count: 2"))

    # kill -9 in the middle of `up`, twice: while mariadb-install-db runs on the db node
    # (it carries on there, orphaned), then once the schema is in (apps starting).
    kill_up_when(config, ("mariadb", "install"))
    kill_up_when(config, ("schema", "configure"))
    assert ("lb", "start") not in steps_done(config)

    result = hotsite(config, "up", "primary", "-q")
    assert result.returncode == 0, result.stdout + result.stderr + app_logs(hosts)
    # No duplicate nodes, no completed step run twice.
    listed = hotsite(config, "nodes", "list", "--json")
    assert len(yaml.safe_load(listed.stdout)) == 4, listed.stdout  # the spare is free
    assert command_count(config, "mariadb.install") == 1
    assert command_count(config, "schema.configure") == 1

    # Pets added through the load balancer are stored in MariaDB.
    out = outputs(config)
    answers = [post_pet(out["url"], f"cat{i}") for i in range(6)]
    assert len({pet["id"] for pet, _ in answers}) == 6
    assert {node for _, node in answers} == {"primary-web-0", "primary-web-1"}  # balanced
    db_host = hosts[0].address  # type: ignore[attr-defined]
    conn = pymysql.connect(host=db_host, port=3306, user="petclinic", password=PASSWORD)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM petclinic.pets WHERE name LIKE 'cat%'")
        assert cur.fetchone()[0] == 6
        cur.execute("SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@binlog_row_metadata")
        assert cur.fetchone() == (1, "ROW", "FULL", "FULL")
    conn.close()

    # Now nothing to do: plan exits 0, a second up runs nothing.
    plan = hotsite(config, "plan", "primary")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "nothing to do" in plan.stdout
    again = hotsite(config, "up", "primary", "-q")
    assert again.returncode == 0 and "nothing to do" in again.stdout

    # Scale out: a third web node; the load balancer is reconfigured and reloaded.
    config.write_text(config.read_text().replace("web_count: 2", "web_count: 3"))
    plan = hotsite(config, "plan", "primary")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "+ node primary-web-2" in plan.stdout
    assert "reload" in next(line for line in plan.stdout.splitlines() if "lb on" in line)
    assert "mariadb" not in plan.stdout  # nothing else changes
    scaled = hotsite(config, "up", "primary", "-q")
    assert scaled.returncode == 0, scaled.stdout + scaled.stderr
    # Right after the reload the old HAProxy process may still answer a request or two.
    seen: set[str] = set()
    for i in range(30):
        seen.add(post_pet(out["url"], f"dog{i}")[1])
        if len(seen) == 3:
            break
    assert seen == {f"primary-web-{i}" for i in range(3)}

    # No secret reached the state store (command log included).
    assert PASSWORD.encode() not in (tmp_path / ".hotsite" / "state.db").read_bytes()

    # Down: no process, no lease, no directory left behind.
    down = hotsite(config, "down", "primary", "-q")
    assert down.returncode == 0, down.stdout + down.stderr
    for host in hosts:
        assert leftover_processes(host) == [], host
        assert list(host.private_dirs["/opt"].iterdir()) == []  # type: ignore[attr-defined]
    listed = hotsite(config, "nodes", "list", "--json")
    assert yaml.safe_load(listed.stdout) == []


BROKEN = """
nodes:
  box: {count: 1, tags: {role: x}}
services:
  base:
    group: box
    install: mkdir -p /opt/base && echo ok > /opt/base/ok
  broken:
    group: box
    depends_on: [base]
    configure: |
      echo "checking the frobnicator"
      echo "frobnicator missing" >&2
      exit 1
  after:
    group: box
    depends_on: [broken]
    start: touch /opt/never
"""


def test_broken_step_is_reported_with_node_step_and_output(
    tmp_path: Path, hosts_factory: object
) -> None:
    blueprint = tmp_path / "broken.yaml"
    blueprint.write_text(BROKEN)
    config, hosts = project(tmp_path, hosts_factory, ["x"], blueprint=blueprint, inputs={})
    result = hotsite(config, "up", "primary", "-q")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed: broken.configure on primary-box-0: exit status 1" in result.stderr
    assert "frobnicator missing" in result.stderr
    assert "skipped: after on primary-box-0: needs broken, which failed" in result.stderr
    logs = hotsite(config, "logs", "primary", "--step", "broken.configure")
    assert "frobnicator missing" in logs.stdout
    assert (hosts[0].private_dirs["/opt"] / "base" / "ok").exists()  # type: ignore[attr-defined]
    plan = hotsite(config, "plan", "primary")
    assert plan.returncode == 2 and "broken on primary-box-0" in plan.stdout
    assert hotsite(config, "down", "primary", "-q").returncode == 0


def test_primary_and_dr_from_one_blueprint_at_once(tmp_path: Path, hosts_factory: object) -> None:
    """The same blueprint builds both sites (dr gets its own server_id from the
    blueprint's per-site overrides); two sites' `up` run at the same time."""
    config, hosts = project(tmp_path, hosts_factory, ["db", "web", "lb"] * 2)
    data = yaml.safe_load(config.read_text())
    data["sites"]["primary"]["inputs"] = {"web_count": 1}
    data["sites"]["dr"] = dict(data["sites"]["primary"])
    config.write_text(yaml.safe_dump(data))
    ups = [
        subprocess.Popen(
            [*HOTSITE, "--config", str(config), "up", site, "-q"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for site in ("primary", "dr")
    ]
    for up in ups:
        out, err = up.communicate(timeout=180)
        assert up.returncode == 0, out + err
    server_ids = set()
    for site in ("primary", "dr"):
        out = dict(yaml.safe_load(hotsite(config, "outputs", site, "--json").stdout))
        _, node = post_pet(out["url"], f"{site}-pet")
        assert node == f"{site}-web-0"
        db_host = out["database"].split("@")[1].split(":")[0]
        conn = pymysql.connect(host=db_host, port=3306, user="petclinic", password=PASSWORD)
        with conn.cursor() as cur:
            cur.execute("SELECT @@server_id, (SELECT name FROM petclinic.pets)")
            server_id, name = cur.fetchone()
        conn.close()
        assert name == f"{site}-pet"
        server_ids.add(server_id)
    assert server_ids == {1, 2}
    for site in ("primary", "dr"):
        assert hotsite(config, "down", site, "-q").returncode == 0
    for host in hosts:
        assert leftover_processes(host) == [], host
