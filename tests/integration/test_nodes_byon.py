"""BYON pools through the real ``hotsite`` command, against real sshd hosts."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import asyncssh
import pytest
import yaml

from hotsite.testing.sshhosts import SSHHostFactory
from tests.helpers import HOTSITE, hotsite
from tests.sshhosts_fixtures import pool_config


def one_line_error(result: subprocess.CompletedProcess[str], pattern: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert pattern in lines[0], lines[0]


def node_rows(config: Path) -> list[dict[str, object]]:
    db = config.parent / ".hotsite" / "state.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute("SELECT * FROM nodes ORDER BY name")]
        except sqlite3.OperationalError:  # another process is creating the store
            return []


def test_lease_run_and_release_with_scrub(ssh_hosts: SSHHostFactory, tmp_path: Path) -> None:
    hosts = ssh_hosts.create(3, private_dirs=["/opt"])
    config = pool_config(
        tmp_path,
        ssh_hosts,
        hosts,
        tags=[{"zone": "a"}, {"zone": "a"}, {"zone": "b"}],
        pool={"scrub": "rm -rf /opt/app", "accept_new_host_keys": True},
    )
    created = hotsite(
        config,
        "nodes",
        "create",
        "web",
        "-n",
        "2",
        "--tag",
        "zone=a",
        "--site",
        "primary",
        "--group",
        "web",
    )
    assert created.returncode == 0, created.stderr
    leased = {row["driver_id"]: row for row in node_rows(config)}
    assert set(leased) == {"h1", "h2"} and {r["state"] for r in leased.values()} == {"running"}
    again = hotsite(config, "nodes", "create", "web", "-n", "2", "--tag", "zone=a", "--wait", "0")
    assert again.returncode == 0, again.stderr  # idempotent: the same two leases
    assert {row["driver_id"] for row in node_rows(config)} == {"h1", "h2"}

    ran = hotsite(config, "run", "primary", "--", "mkdir -p /opt/app && hostname -I > /opt/app/ip")
    assert ran.returncode == 0, ran.stderr
    assert "2/2 nodes ok" in ran.stdout
    for host in hosts[:2]:
        assert (host.private_dirs["/opt"] / "app" / "ip").read_text().strip() == host.address

    failing = hotsite(config, "run", "primary/web", "--", "test -e /opt/app/ip && exit 4")
    assert failing.returncode == 1 and failing.stdout.count("exit 4") == 2
    as_json = hotsite(config, "run", "web-2", "--json", "--", "cat /opt/app/ip")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout) == [
        {
            "node": "web-2",
            "exit_status": 0,
            "error": None,
            "stdout": f"{hosts[1].address} \n",
            "stderr": "",
        }
    ]

    pool = json.loads(hotsite(config, "nodes", "pool", "--json").stdout)
    assert [(r["host"], r["state"], r["site"]) for r in pool] == [
        ("h1", "running", "primary"),
        ("h2", "running", "primary"),
        ("h3", "free", None),
    ]
    checked = hotsite(config, "nodes", "pool", "--check", "--json")
    assert checked.returncode == 1  # h3 was never used: its host key is not known yet
    status = {r["host"]: r["check"] for r in json.loads(checked.stdout)}
    assert status["h1"] == status["h2"] == "ok" and "unknown host key" in status["h3"]
    listed = json.loads(hotsite(config, "nodes", "list", "--json").stdout)
    assert [n["name"] for n in listed] == ["web-1", "web-2"]

    logs = hotsite(config, "logs", "web-1", "--json")
    entries = json.loads(logs.stdout)
    assert [e["exit_status"] for e in entries] == [0, 4]
    assert entries[0]["site"] == "primary" and entries[0]["stdout_tail"] == ""
    text = hotsite(config, "logs", "primary", "--node", "web-2", "--limit", "1")
    assert "web-2 exit 0" in text.stdout and "$ cat /opt/app/ip" in text.stdout
    assert hosts[1].address in text.stdout

    released = hotsite(config, "nodes", "destroy", "primary")
    assert released.returncode == 0, released.stderr
    assert node_rows(config) == []
    for host in hosts[:2]:
        assert not (host.private_dirs["/opt"] / "app").exists()  # scrubbed
    scrub = json.loads(hotsite(config, "logs", "primary", "--step", "scrub", "--json").stdout)
    assert len(scrub) == 2 and all(e["exit_status"] == 0 for e in scrub)


def test_concurrent_processes_never_lease_the_same_host(
    ssh_hosts: SSHHostFactory, tmp_path: Path
) -> None:
    hosts = ssh_hosts.create(2)
    config = pool_config(tmp_path, ssh_hosts, hosts, pool={"accept_new_host_keys": True})
    hotsite(config, "nodes", "list")  # create the state store before the race
    processes = [
        subprocess.Popen(
            [*HOTSITE, "--config", str(config), "nodes", "create", f"n{i}", "-p", "rack"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for i in range(5)
    ]
    results = [(p.wait(timeout=60), p.stderr.read()) for p in processes]  # type: ignore[union-attr]
    assert sorted(code for code, _ in results) == [0, 0, 2, 2, 2], results
    assert all("no free host" in err for code, err in results if code)
    rows = node_rows(config)
    assert sorted(r["driver_id"] for r in rows) == ["h1", "h2"]


def test_crash_between_lease_and_use_does_not_leak(
    ssh_hosts: SSHHostFactory, tmp_path: Path
) -> None:
    (host,) = ssh_hosts.create(1)
    config = pool_config(tmp_path, ssh_hosts, [host], pool={"accept_new_host_keys": True})
    # A hotsite whose SSH probe never returns: it holds the lease as 'intent'.
    script = (
        "import asyncio, sys\n"
        "import hotsite.nodes.byon as byon\n"
        "async def hang(self, node): await asyncio.sleep(3600)\n"
        "byon.ByonDriver._probe = hang\n"
        "from hotsite.cli import main\n"
        "sys.argv = ['hotsite', *sys.argv[1:]]\n"
        "main()\n"
    )
    stuck = subprocess.Popen(
        [
            sys.executable,
            "-c",
            script,
            "--config",
            str(config),
            "nodes",
            "create",
            "a",
            "-p",
            "rack",
        ],
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 30
    while not node_rows(config) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r["state"] for r in node_rows(config)] == ["intent"]
    busy = hotsite(config, "nodes", "create", "b", "-p", "rack")
    one_line_error(busy, "no free host")  # a live holder keeps its lease
    os.kill(stuck.pid, signal.SIGKILL)
    stuck.wait()

    again = hotsite(config, "nodes", "create", "b", "-p", "rack")
    assert again.returncode == 0, again.stderr
    assert [(r["name"], r["state"]) for r in node_rows(config)] == [("b", "running")]


@pytest.mark.slow
def test_bad_input_gives_one_line_and_records_nothing(
    ssh_hosts: SSHHostFactory, tmp_path: Path
) -> None:
    good, down, rekeyed = ssh_hosts.create(3)
    config = pool_config(
        tmp_path,
        ssh_hosts,
        [good, down, rekeyed],
        tags=[{"r": "good"}, {"r": "down"}, {"r": "new"}],
    )

    def create(*args: str) -> subprocess.CompletedProcess[str]:
        return hotsite(config, "nodes", "create", "x", "-p", "rack", *args, timeout=30)

    one_line_error(create("--tag", "r=good"), "unknown host key SHA256:")
    one_line_error(create("--tag", "r=none"), "pool 'rack' has no free host matching r=none")
    down.stop_sshd()
    started = time.monotonic()
    one_line_error(create("--tag", "r=down", "--accept-new-host-keys"), "unreachable over SSH")
    assert time.monotonic() - started < 20  # not the 30 s of a hung connect; CI is loaded
    assert node_rows(config) == []

    # Host key changed after it was recorded.
    assert create("--tag", "r=new", "--accept-new-host-keys").returncode == 0
    assert hotsite(config, "nodes", "destroy", "x").returncode == 0
    ssh_hosts.restart(rekeyed, new_host_key=True)
    one_line_error(
        create("--tag", "r=new", "--accept-new-host-keys"),
        f"host key of x ({rekeyed.address}:22) changed",
    )
    forgot = hotsite(config, "nodes", "forget-host-key", rekeyed.address)
    assert forgot.returncode == 0
    assert create("--tag", "r=new", "--accept-new-host-keys").returncode == 0
    assert hotsite(config, "nodes", "destroy", "x").returncode == 0

    # Refused key: the project's key is not the one the host authorizes.
    other = tmp_path / "other_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(other))
    data = yaml.safe_load(config.read_text())
    data["nodes"]["ssh"]["key"] = str(other)
    config.write_text(yaml.safe_dump(data))
    one_line_error(create("--tag", "r=good", "--accept-new-host-keys"), "refused our SSH key")
    other.write_text("not a key\n")
    one_line_error(create("--tag", "r=good", "--accept-new-host-keys"), "cannot be used")
    other.unlink()
    one_line_error(create("--tag", "r=good", "--accept-new-host-keys"), "does not exist")

    one_line_error(
        hotsite(config, "nodes", "create", "y", "-p", "gcp"), "unknown node provider 'gcp'"
    )
    data["nodes"]["providers"]["odd"] = {"driver": "nosuch"}
    config.write_text(yaml.safe_dump(data))
    one_line_error(
        hotsite(config, "nodes", "create", "y", "-p", "odd"), "unknown node driver 'nosuch'"
    )
    one_line_error(hotsite(config, "run", "nowhere", "--", "true"), "no node, site or group")
    assert node_rows(config) == []


def test_pinned_host_keys_need_no_first_use_trust(
    ssh_hosts: SSHHostFactory, tmp_path: Path
) -> None:
    good, other = ssh_hosts.create(2)
    config = pool_config(tmp_path, ssh_hosts, [good, other], tags=[{"r": "good"}, {"r": "bad"}])
    data = yaml.safe_load(config.read_text())
    hosts = data["nodes"]["providers"]["rack"]["hosts"]
    hosts[0]["host_key"] = good.host_key  # the real key, as an operator would write it
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    hosts[1]["host_key"] = impostor.strip()  # not the key the host offers
    config.write_text(yaml.safe_dump(data))

    ok = hotsite(config, "nodes", "create", "a", "--tag", "r=good")  # no --accept-new-host-keys
    assert ok.returncode == 0, ok.stderr
    one_line_error(
        hotsite(config, "nodes", "create", "b", "--tag", "r=bad"),
        f"host key of b ({other.address}:22) changed",
    )
    assert [r["name"] for r in node_rows(config)] == ["a"]
    hosts[1]["host_key"] = "ssh-ed25519 not-base64"
    config.write_text(yaml.safe_dump(data))
    one_line_error(hotsite(config, "nodes", "list"), "host_key is not an OpenSSH public key line")
