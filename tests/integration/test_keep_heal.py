"""Healing on real hosts (namespaces running sshd, a BYON pool) behind a real HAProxy,
by the real agent process: a killed app is restarted, a lost node is replaced from
the pool, a crash loop ends marked failed within its budgets — while requests through
the load balancer keep succeeding."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import hotsite as run
from tests.keep_helpers import (
    Agent,
    Load,
    app_pid,
    entries,
    kill_namespace,
    project,
    wait_for,
)
from tests.sshhosts_fixtures import missing_for_ssh_hosts, needs_commands

pytestmark = [
    pytest.mark.skipif(missing_for_ssh_hosts() is not None, reason=missing_for_ssh_hosts() or ""),
    needs_commands("haproxy"),
    pytest.mark.slow,
]


def up(config: Path) -> str:
    result = run(config, "up", "primary", "-q")
    assert result.returncode == 0, result.stdout + result.stderr
    out = run(config, "outputs", "primary", "--json")
    return str(yaml.safe_load(out.stdout)["url"])


def nodes(config: Path) -> dict[str, dict[str, Any]]:
    listed = run(config, "nodes", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return {n["name"]: n for n in yaml.safe_load(listed.stdout)}


def test_killed_app_is_restarted_then_lost_node_replaced_from_the_pool(
    tmp_path: Path, ssh_hosts: Any
) -> None:
    # web, web, lb, and a spare web host for the replacement.
    config, hosts = project(tmp_path, ssh_hosts, ["web", "web", "lb", "web"])
    url = up(config)
    web0, web1, lb, spare = hosts
    with Agent(config) as agent, Load(url) as load:
        wait_for("requests served", lambda: load.ok > 20, 30)

        # 1. The app process on web-0 dies: restarted on the same node, no manual step.
        old_pid = app_pid(web0)
        os.kill(old_pid, signal.SIGKILL)
        restart = wait_for(
            "the restart recorded healthy",
            lambda: [e for e in entries(config) if e["outcome"] == "healthy"],
            60,
            agent.output,
        )[0]
        assert (restart["action"], restart["to"], restart["service"]) == (
            "restart",
            "primary-web-0",
            "app",
        )
        assert app_pid(web0) != old_pid
        assert [s["step"] for s in restart["steps"]] == ["failed", "restart", "healthy"]
        assert 0 < restart["healthy_seconds"] < 30

        # 2. web-1 is lost (sshd and app killed): replaced from the pool at once.
        served_before = load.ok
        kill_namespace(web1)
        replaced = wait_for(
            "the replacement recorded healthy",
            lambda: [
                e for e in entries(config) if e["action"] == "replace" and e["outcome"] == "healthy"
            ],
            90,
            agent.output,
        )[0]
        assert replaced["to"] == "primary-web-1"
        assert replaced["replacement"] == "primary-web-1r1"
        assert "answered no probe" in replaced["failed"]
        # A dead pool host is not given back to the pool (the next lease would get it).
        assert replaced["released"] is False
        wait_for("requests after the replacement", lambda: load.ok > served_before + 50, 30)
    assert load.failures == [], load.failures[:5]
    # The replacement sits on the spare host and serves; the lost node's lease is gone.
    listed = nodes(config)
    assert listed["primary-web-1r1"]["address"] == spare.address
    assert listed["primary-web-1"]["state"] == "releasing", listed["primary-web-1"]

    assert load.served_by["primary-web-1r1"] > 0
    cfg = (lb.private_dirs["/opt"] / "keep-lb" / "haproxy.cfg").read_text()
    assert spare.address in cfg and web1.address not in cfg
    # Healing's actions are in `hotsite history`, each with its time to healthy.
    listed_history = yaml.safe_load(run(config, "history", "--json").stdout)
    heals = {(h["kind"], h["to"], h["action"]) for h in listed_history}
    assert heals == {("heal", "primary-web-0", "restart"), ("heal", "primary-web-1", "replace")}
    shown = run(config, "history", "show", restart["id"])
    assert shown.returncode == 0 and "action restart, service app" in shown.stdout, shown.stdout
    assert "healthy" in shown.stdout.splitlines()[-1]
    # The site is as described: `up` has nothing to do.
    again = run(config, "up", "primary", "-q", "--no-refresh")
    assert "nothing to do" in again.stdout, again.stdout + again.stderr


def test_crash_loop_respects_budgets_and_ends_marked_failed(tmp_path: Path, ssh_hosts: Any) -> None:
    flag = tmp_path / "crash"
    healing = {"failures": 2, "restarts": 2, "replacements": 1, "window": 600}
    # Two spare web hosts: a runaway would take both.
    config, hosts = project(
        tmp_path,
        ssh_hosts,
        ["web", "web", "lb", "web", "web"],
        healing=healing,
        inputs={"crash_flag": str(flag)},
    )
    up(config)
    flag.write_text("crash")  # from now on every start of the app dies 0.3 s later
    with Agent(config) as agent:
        os.kill(app_pid(hosts[0]), signal.SIGKILL)
        gave_up = wait_for(
            "healing to give up",
            lambda: [e for e in entries(config) if e["outcome"] == "gave up"],
            180,
            agent.output,
        )
        status = run(config, "status")
        # Nothing more happens once it gave up: no more nodes, no more restarts.
        before = len(entries(config))
        time.sleep(3)
        assert len(entries(config)) == before
    actions = [e["action"] for e in entries(config)]
    assert actions.count("replace") == 1, actions  # the budget: one replacement
    assert actions.count("give-up") == 1, actions
    # restarts: 2 on the first node, then 2 on its replacement at most
    restarts = [e for e in entries(config) if e["action"] == "restart"]
    per_node: dict[str, int] = {}
    for e in restarts:
        per_node[e["to"]] = per_node.get(e["to"], 0) + 1
    assert all(count <= 2 for count in per_node.values()), per_node
    assert gave_up[0]["service"] == "app"
    listed = nodes(config)
    assert sum(1 for n in listed if n.startswith("primary-web-")) == 2, listed  # one spare free
    assert status.returncode == 1 and "FAILED: app at primary" in status.stdout, status.stdout
    # A successful `up` (the cause fixed) clears the mark.
    flag.unlink()
    fixed = run(config, "up", "primary", "-q")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "FAILED" not in run(config, "status").stdout
