"""`hotsite scale` on real hosts behind a real HAProxy, under a request load: out to
four web nodes, in to one, and no request fails (leaving nodes are drained first)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import hotsite as run
from tests.keep_helpers import Load, project, wait_for
from tests.sshhosts_fixtures import missing_for_ssh_hosts, needs_commands

pytestmark = [
    pytest.mark.skipif(missing_for_ssh_hosts() is not None, reason=missing_for_ssh_hosts() or ""),
    needs_commands("haproxy"),
    pytest.mark.slow,
]


def web_nodes(config: Path) -> list[str]:
    listed = yaml.safe_load(run(config, "nodes", "list", "--json").stdout)
    return sorted(n["name"] for n in listed if n["name"].startswith("primary-web-"))


def test_scale_2_to_4_to_1_under_load_fails_no_request(tmp_path: Path, ssh_hosts: Any) -> None:
    config, hosts = project(tmp_path, ssh_hosts, ["web", "web", "web", "web", "lb"])
    assert run(config, "up", "primary", "-q").returncode == 0
    url = str(yaml.safe_load(run(config, "outputs", "primary", "--json").stdout)["url"])
    lb_cfg = hosts[4].private_dirs["/opt"] / "keep-lb" / "haproxy.cfg"
    with Load(url, pause=0.005) as load:
        wait_for("requests served", lambda: load.ok > 20, 30)
        out = run(config, "scale", "primary", "web=4", "-q")
        assert out.returncode == 0, out.stdout + out.stderr
        assert web_nodes(config) == [f"primary-web-{i}" for i in range(4)]
        assert lb_cfg.read_text().count("    server ") == 4
        seen = load.ok
        wait_for("every node serving", lambda: len(load.served_by) == 4 and load.ok > seen, 30)
        out = run(config, "scale", "primary", "web=-3", "-q")
        assert out.returncode == 0, out.stdout + out.stderr
        seen = load.ok
        wait_for("requests after scaling in", lambda: load.ok > seen + 50, 30)
    assert load.failures == [], load.failures[:5]
    assert web_nodes(config) == ["primary-web-0"]
    assert lb_cfg.read_text().count("    server ") == 1
    # The leaving nodes' app is stopped and removed; a later `up` keeps the count.
    for host in hosts[1:4]:
        assert not (host.private_dirs["/opt"] / "keep").exists()
    again = run(config, "up", "primary", "-q")
    assert "nothing to do" in again.stdout, again.stdout
    # Beyond max: refused, nothing changed.
    refused = run(config, "scale", "primary", "web=+4")
    assert refused.returncode == 2 and "takes 1 to 4 nodes, not 5" in refused.stderr
    assert web_nodes(config) == ["primary-web-0"]
