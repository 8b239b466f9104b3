"""Healing and bursting reaction times on test hosts (namespaces running sshd, BYON
pools, HAProxy), with the real agent process.

- process kill: the app on a web node is killed (kill -9); time until healing has it
  healthy again (its check passes on the node) and until the load balancer sends it
  requests again (HAProxy's own checks put it back: rise 2 × 500 ms);
- node loss: every process of a web node's namespace, sshd included, is killed; time
  until its replacement from the pool answers requests through the load balancer;
- bursting: a load through the entry point over the threshold → the burst site on a
  second pool serving (from the moment the threshold was crossed); the load gone →
  torn down (from the moment the rate fell under the down threshold).

Goals: a process restart back in service under 2 s, a lost node replaced and serving
under 30 s (Kubernetes' defaults take ~5 minutes to move work off a lost node).

Run as root, under the shared lock:
`flock /tmp/hotsite-bench.lock .venv/bin/python bench/healing.py [--kills 5 --losses 3]`.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.keep_helpers: the same site and tools as the tests

import yaml  # noqa: E402
from tests.helpers import hotsite as run  # noqa: E402
from tests.integration.test_keep_burst import burst_project  # noqa: E402
from tests.keep_helpers import (  # noqa: E402
    Agent,
    Load,
    app_pid,
    entries,
    kill_namespace,
    project,
    wait_for,
)

from hotsite import config as config_module  # noqa: E402
from hotsite.blueprint.desired import replacement_name  # noqa: E402
from hotsite.dr import entry_control  # noqa: E402
from hotsite.testing.sshhosts import SSHHostFactory  # noqa: E402


def figures(name: str, values: list[float]) -> str:
    return (
        f"{name}: median {statistics.median(values):.2f} s, max {max(values):.2f} s"
        f" (n={len(values)}: {', '.join(f'{v:.2f}' for v in values)})"
    )


def heal_times(kills: int, losses: int) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="hotsite-bench-heal-") as tmp:
        directory = Path(tmp)
        factory = SSHHostFactory(directory / "hosts")
        try:
            roles = ["web", "web", "lb", *["web"] * losses]
            config, hosts = project(
                directory, factory, roles, healing={"restarts": kills + 1, "replacements": losses}
            )
            assert run(config, "up", "primary", "-q").returncode == 0
            url = yaml.safe_load(run(config, "outputs", "primary", "--json").stdout)["url"]
            healed, serving, replaced = [], [], []
            with Agent(config) as agent, Load(url, pause=0.005) as load:
                wait_for("requests served", lambda: load.ok > 20, 30)
                for n in range(kills):
                    node, host = f"primary-web-{n % 2}", hosts[n % 2]
                    done = len([e for e in entries(config) if e["outcome"] == "healthy"])
                    time.sleep(1.5)  # settled, and the load balancer sees it up
                    killed = time.time()
                    os.kill(app_pid(host), signal.SIGKILL)
                    entry = wait_for(
                        "healthy",
                        lambda d=done: [e for e in entries(config) if e["outcome"] == "healthy"][
                            d:
                        ],
                        60,
                        agent.output,
                    )[0]
                    healed.append(entry["finished"] - killed)
                    back = wait_for(
                        "served again",
                        lambda n=node, k=killed: load.first_after(n, k),
                        30,
                        agent.output,
                    )
                    serving.append(back - killed)
                for _ in range(losses):
                    listed = yaml.safe_load(run(config, "nodes", "list", "--json").stdout)
                    # The slot's serving node (a lost one stays listed, as releasing).
                    current = next(
                        x
                        for x in listed
                        if x["name"].startswith("primary-web-0") and x["state"] == "running"
                    )
                    victim = next(h for h in hosts if h.address == current["address"])
                    new = replacement_name(current["name"])
                    time.sleep(1.5)
                    lost = time.time()
                    kill_namespace(victim)
                    at = wait_for(
                        "replacement serving",
                        lambda n=new, t=lost: load.first_after(n, t),
                        90,
                        agent.output,
                    )
                    replaced.append(at - lost)
            failed = len(load.failures)
        finally:
            factory.stop()
    return [
        figures("process kill -> healthy on its node", healed),
        figures("process kill -> serving through the load balancer", serving),
        figures("node lost -> replacement serving through the load balancer", replaced),
        f"requests failed during all of it: {failed} of {load.ok + failed}",
    ]


def burst_times() -> list[str]:
    with tempfile.TemporaryDirectory(prefix="hotsite-bench-burst-") as tmp:
        directory = Path(tmp)
        factory = SSHHostFactory(directory / "hosts")
        control = None
        try:
            config, _, _ = burst_project(directory, factory)
            assert run(config, "up", "primary", "-q").returncode == 0
            control = entry_control(config_module.load(config))
            control.up({"primary"})
            url = f"http://127.0.0.1:{control.entry.port}/"
            with Agent(config) as agent:
                with Load(url, pause=0.002):
                    wait_for(
                        "serving",
                        lambda: [e for e in entries(config, "burst") if e["outcome"] == "serving"],
                        120,
                        agent.output,
                    )
                down = wait_for(
                    "torn down",
                    lambda: [e for e in entries(config, "burst") if e["outcome"] == "torn down"],
                    120,
                    agent.output,
                )
            up = next(e for e in entries(config, "burst") if e["outcome"] == "serving")
        finally:
            if control is not None:
                control.down()
            factory.stop()
    return [
        f"burst up: threshold crossed -> burst site serving {up['reaction_seconds']:.2f} s"
        f" (held {up['held_seconds']:.1f} s of it: the policy's `for`)",
        f"burst down: load gone -> torn down {down[0]['reaction_seconds']:.2f} s"
        f" (held {down[0]['held_seconds']:.1f} s of it)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--losses", type=int, default=3)
    args = parser.parse_args()
    for line in heal_times(args.kills, args.losses) + burst_times():
        print(line, flush=True)


if __name__ == "__main__":
    main()
