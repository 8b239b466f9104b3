"""The libcloud driver against an EC2-compatible endpoint on loopback (moto's server).

Two moto quirks are handled here, not in product code: Libcloud's EC2 driver must sign
with signature version 4 (an ``options`` entry), and moto's XML namespace lacks the
trailing slash Libcloud expects, so the hotsite processes started here patch
``libcloud.compute.drivers.ec2.NAMESPACE`` before running the real CLI.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotsite.testing.mariadb import free_port

KEY, SECRET = "AKIAHOTSITETEST1234", "sEcReT-never-logged-42"
PATCH = "import libcloud.compute.drivers.ec2 as ec2\nec2.NAMESPACE = ec2.NAMESPACE.rstrip('/')\n"


@pytest.fixture(scope="module")
def moto_port() -> Iterator[int]:
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield port
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)


def ec2_api(port: int) -> Any:
    import libcloud.compute.drivers.ec2 as ec2
    from libcloud.compute.providers import get_driver

    ec2.NAMESPACE = ec2.NAMESPACE.rstrip("/")
    return get_driver("ec2")(
        KEY, SECRET, secure=False, host="127.0.0.1", port=port, signature_version="4"
    )


def running(port: int, project: str) -> dict[str, str]:
    """hotsite node name -> instance id, for this project's live instances."""
    return {
        n.extra["tags"]["hotsite-node"]: n.id
        for n in ec2_api(port).list_nodes()
        if n.state == "running" and n.extra.get("tags", {}).get("hotsite-project") == project
    }


def moto_image(port: int) -> str:
    """An AMI moto knows: its usual default, else the first it lists (versions differ)."""
    api = ec2_api(port)
    try:
        return str(api.get_image("ami-03cf127a").id)
    except Exception:
        return str(api.list_images()[0].id)


def write_project(directory: Path, port: int) -> Path:
    directory.mkdir()
    key = directory / "id_test"
    import asyncssh

    private = asyncssh.generate_private_key("ssh-ed25519")
    private.write_private_key(str(key))
    private.write_public_key(str(key) + ".pub")
    config = {
        "sites": {"dr": {"database": "mysql://root@127.0.0.1:1/app"}},
        "nodes": {
            "ssh": {"key": str(key)},
            "providers": {
                "aws": {
                    "driver": "libcloud",
                    "provider": "ec2",
                    "region": "us-east-1",
                    "image": moto_image(port),
                    "size": "t2.micro",
                    "user": "admin",
                    "options": {
                        "host": "127.0.0.1",
                        "port": port,
                        "secure": False,
                        "signature_version": "4",
                    },
                }
            },
        },
    }
    path = directory / "hotsite.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def cli(
    config: Path, *args: str, prelude: str = "", creds: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTSITE_AWS_")}
    if creds:
        env |= {"HOTSITE_AWS_KEY": KEY, "HOTSITE_AWS_SECRET": SECRET}
    script = f"{PATCH}{prelude}import sys\nfrom hotsite.cli import main\nsys.argv[0] = 'hotsite'\nmain()\n"
    return subprocess.run(
        [sys.executable, "-c", script, "--verbose", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=config.parent,
        env=env,
    )


def state_rows(config: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(config.parent / ".hotsite" / "state.db") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM nodes ORDER BY name")]


def test_create_list_destroy_on_ec2_api(moto_port: int, tmp_path: Path) -> None:
    config = write_project(tmp_path / "p1", moto_port)
    created = cli(
        config, "nodes", "create", "web", "-n", "3", "-p", "aws", "--site", "dr", "--wait", "0"
    )
    assert created.returncode == 0, created.stderr
    live = running(moto_port, "p1")
    assert sorted(live) == ["web-1", "web-2", "web-3"]
    rows = state_rows(config)
    assert {r["name"]: r["driver_id"] for r in rows} == live
    assert {r["state"] for r in rows} == {"running"} and all(r["address"] for r in rows)
    assert {r["ssh_user"] for r in rows} == {"admin"}
    keypairs = ec2_api(moto_port).list_key_pairs()
    assert keypairs, "the project's public key was imported for the new nodes"

    listed = cli(config, "nodes", "list", "--json")
    assert [n["name"] for n in json.loads(listed.stdout)] == ["web-1", "web-2", "web-3"]

    destroyed = cli(config, "nodes", "destroy", "dr")
    assert destroyed.returncode == 0, destroyed.stderr
    assert running(moto_port, "p1") == {} and state_rows(config) == []

    # Credentials: never in output, logs or the state store.
    seen = created.stdout + created.stderr + listed.stdout + destroyed.stderr
    stored = b"".join(p.read_bytes() for p in (config.parent / ".hotsite").glob("state.db*"))
    assert SECRET not in seen and SECRET.encode() not in stored and KEY.encode() not in stored


def test_crash_after_create_is_recovered_not_leaked(moto_port: int, tmp_path: Path) -> None:
    config = write_project(tmp_path / "p2", moto_port)
    # The instance is created, then the process dies before recording its id.
    crash = (
        "import os, signal\n"
        "import hotsite.nodes.libcloud as lc\n"
        "lc.LibcloudDriver._adopt = lambda self, node, cloud: os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    died = cli(config, "nodes", "create", "db", "-p", "aws", "--wait", "0", prelude=crash)
    assert died.returncode == -signal.SIGKILL
    assert [(r["name"], r["state"]) for r in state_rows(config)] == [("db", "intent")]
    orphan = running(moto_port, "p2")
    assert list(orphan) == ["db"]

    again = cli(config, "nodes", "create", "db", "-p", "aws", "--wait", "0")
    assert again.returncode == 0, again.stderr
    assert running(moto_port, "p2") == orphan  # adopted, not a second instance
    assert [(r["driver_id"], r["state"]) for r in state_rows(config)] == [(orphan["db"], "running")]

    # Dies before the provider is even asked: the next run drops the stale intent.
    before = (
        "import os, signal\n"
        "import hotsite.nodes.libcloud as lc\n"
        "lc.LibcloudDriver._create_one = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert (
        cli(
            config, "nodes", "create", "cache", "-p", "aws", "--wait", "0", prelude=before
        ).returncode
        < 0
    )
    assert cli(config, "nodes", "destroy", "db").returncode == 0
    assert running(moto_port, "p2") == {} and state_rows(config) == []


def test_missing_credentials_and_unknown_provider_are_one_line(
    moto_port: int, tmp_path: Path
) -> None:
    config = write_project(tmp_path / "p3", moto_port)
    result = cli(config, "nodes", "create", "x", "-p", "aws", creds=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "missing credentials for provider 'aws': no key — set nodes.providers.aws.key or the"
            " HOTSITE_AWS_KEY variable"
        )
    )
    data = yaml.safe_load(config.read_text())
    data["nodes"]["providers"]["aws"]["provider"] = "nocloud"
    config.write_text(yaml.safe_dump(data))
    result = cli(config, "nodes", "create", "x", "-p", "aws")
    assert result.returncode == 2 and "unknown Libcloud provider 'nocloud'" in result.stderr
    assert "Traceback" not in result.stderr
    assert state_rows(config) == []
