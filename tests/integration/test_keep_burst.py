"""Cloud bursting on real hosts: a load generator through the real entry point (HAProxy)
pushes its request rate over the policy's threshold → a burst site comes up from the
same blueprint on a second provider (another BYON pool) and takes traffic; the load
stops → it is drained, taken out and torn down, nothing left behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hotsite import config as config_module
from hotsite.dr import entry_control
from hotsite.testing.ports import free_port
from tests.helpers import hotsite as run
from tests.keep_helpers import Agent, Load, entries, pool, project, wait_for
from tests.sshhosts_fixtures import missing_for_ssh_hosts, needs_commands

pytestmark = [
    pytest.mark.skipif(missing_for_ssh_hosts() is not None, reason=missing_for_ssh_hosts() or ""),
    needs_commands("haproxy"),
    pytest.mark.slow,
]


def burst_project(tmp_path: Path, factory: Any) -> tuple[Path, list[Any], list[Any]]:
    second = factory.create(2, private_dirs=["/opt"])  # the other provider: web, lb
    config, hosts = project(tmp_path, factory, ["web", "web", "lb"], healing={"enabled": False})
    data = yaml.safe_load(config.read_text())
    data["sites"]["burst"] = {
        "blueprint": data["sites"]["primary"]["blueprint"],
        "driver": "rack2",
        "inputs": {"web_count": 1},
    }
    data["nodes"]["providers"]["rack2"] = pool(second, ["web", "lb"])
    data["dr"] = {
        "primary": "primary",
        "entry": {
            "listen": f"127.0.0.1:{free_port()}",
            "mode": "active-active",
            # The burst site's address is known once it is up: it is set then.
            "servers": {"primary": f"{hosts[2].address}:8081", "burst": "127.0.0.1:9"},
            "weights": {"burst": 0},
            "directory": str(tmp_path / "entry"),
        },
    }
    data["bursting"] = [
        {
            "site": "primary",
            "target": "burst",
            "metric": {"source": "entry", "name": "req_rate"},
            "up": {"above": 15, "for": 2},
            "down": {"below": 3, "for": 3},
            "cooldown": 3,
            "interval": 0.5,
            "weight": 100,
        }
    ]
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config, hosts, second


def test_burst_up_under_load_then_drained_and_torn_down(tmp_path: Path, ssh_hosts: Any) -> None:
    config, _, second = burst_project(tmp_path, ssh_hosts)
    assert run(config, "up", "primary", "-q").returncode == 0
    control = entry_control(config_module.load(config))
    control.up({"primary"})
    url = f"http://127.0.0.1:{control.entry.port}/"
    try:
        with Agent(config) as agent:
            with Load(url, pause=0.002) as load:
                up = wait_for(
                    "the burst site serving",
                    lambda: [e for e in entries(config, "burst") if e["outcome"] == "serving"],
                    120,
                    lambda: agent.output() + str(entries(config, "burst")),
                )[0]
                seen = load.served_by["burst-web-0"]
                wait_for(
                    "traffic at the burst site",
                    lambda: load.served_by["burst-web-0"] > seen + 10,
                    30,
                )
            idle_at = load.ok
            down = wait_for(
                "the burst site torn down",
                lambda: [e for e in entries(config, "burst") if e["outcome"] == "torn down"],
                120,
                agent.output,
            )[0]
    finally:
        control.down()
    assert load.failures == [], load.failures[:5]
    assert idle_at > 0 and load.served_by["primary-web-0"] > 0
    # Each decision with the metric values that made it.
    assert (up["direction"], up["metric"]) == ("up", "req_rate") and up["value"] > 15
    assert up["held_seconds"] >= 2 and up["reaction_seconds"] > 0
    assert down["direction"] == "down" and down["value"] < 3
    assert [s["step"] for s in down["steps"]] == [
        "decided down",
        "drain",
        "out",
        "torn down",
    ]
    # Nothing left: no burst node, no lease, no directory on its hosts.
    listed = yaml.safe_load(run(config, "nodes", "list", "--json").stdout)
    assert not [n for n in listed if n["name"].startswith("burst-")], listed
    for host in second:
        assert list(host.private_dirs["/opt"].iterdir()) == []
