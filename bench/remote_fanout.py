"""Fan-out over SSH: ``true`` and a 1 MB upload on 1, 10 and 50 real sshd test hosts.

Each host is a network namespace running its own sshd (hotsite.testing.sshhosts). For
each size, a fresh RemoteSession connects to every host (host keys checked and recorded
in a new state store), runs ``true`` (cold: connect + run), runs it again on the open
connections (warm), uploads 1 MB to each host's private /opt and checks the checksums.
Each figure is the median of ``--repeat`` rounds. Printed: wall times, the 50/1 ratios
(goal <= 3), the client's own CPU (user+sys of this process) and the sshd side's CPU
(every process in the hosts' namespaces), since client and 50 servers share this
machine's cores.

    .venv/bin/python bench/remote_fanout.py [--sizes 1,10,50] [--concurrency 64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from hotsite.nodes import Node
from hotsite.remote import RemoteSession, SSHSettings
from hotsite.state import StateStore
from hotsite.testing.sshhosts import SSHHost, SSHHostFactory

TICK = os.sysconf("SC_CLK_TCK")


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu(hosts: list[SSHHost]) -> float:
    """CPU seconds used so far by live processes in the hosts' namespaces (and their
    reaped children): the sshd listeners and the per-connection sshd sessions."""
    total = 0
    for host in hosts:
        pids = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True)
        for pid in pids.stdout.split():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / TICK


async def one_round(
    hosts: list[SSHHost], key: Path, store: StateStore, payload: Path, concurrency: int
) -> dict[str, float]:
    nodes = [Node(h.name, "byon", h.name, h.address, h.port) for h in hosts]
    ssh = SSHSettings(key=key, accept_new_host_keys=True, concurrency=concurrency)
    expected = hashlib.sha256(payload.read_bytes()).hexdigest()
    f: dict[str, float] = {}
    cpu0, srv0 = client_cpu(), server_cpu(hosts)
    async with RemoteSession(store, ssh) as session:
        t = time.perf_counter()
        outcomes = await session.run_all(nodes, "true")
        f["cold"] = time.perf_counter() - t
        assert all(o.ok for o in outcomes), [str(o.error) for o in outcomes if not o.ok][:3]
        f["cpu_cold"] = client_cpu() - cpu0
        t = time.perf_counter()
        outcomes = await session.run_all(nodes, "true")
        f["warm"] = time.perf_counter() - t
        assert all(o.ok for o in outcomes)
        t = time.perf_counter()
        uploads = await session.put_all(nodes, payload, "/opt/payload.bin")
        f["upload"] = time.perf_counter() - t
        assert all(o.ok for o in uploads), [str(o.error) for o in uploads if not o.ok][:3]
        f["server"] = server_cpu(hosts) - srv0
        sums = await session.run_all(nodes, "sha256sum /opt/payload.bin")
        assert all(o.result and o.result.stdout.split()[0] == expected for o in sums)
    f["cpu"] = client_cpu() - cpu0
    return f


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,10,50")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="hotsite-bench-") as tmp:
        work = Path(tmp)
        payload = work / "payload.bin"
        payload.write_bytes(os.urandom(1_000_000))
        started = time.perf_counter()
        with SSHHostFactory(work / "hosts") as factory:
            hosts = factory.create(max(sizes), private_dirs=["/opt"])
            print(
                f"{len(hosts)} sshd hosts in network namespaces ready in"
                f" {time.perf_counter() - started:.2f}s; concurrency {args.concurrency},"
                f" median of {args.repeat} rounds, {os.cpu_count()} cores shared by client and servers"
            )
            print()
            print(
                f"{'hosts':>5} {'true cold':>10} {'true warm':>10} {'1MB upload':>11}"
                f" {'client CPU cold':>16} {'client CPU all':>15} {'sshd CPU all':>13}"
            )
            medians: dict[int, dict[str, float]] = {}
            for size in sizes:
                rounds = []
                for n in range(args.repeat):
                    store = StateStore(work / f"state-{size}-{n}.db")  # connect as new each time
                    rounds.append(
                        asyncio.run(
                            one_round(
                                hosts[:size],
                                factory.client_key_path,
                                store,
                                payload,
                                args.concurrency,
                            )
                        )
                    )
                m = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
                medians[size] = m
                print(
                    f"{size:>5} {m['cold']:>9.3f}s {m['warm']:>9.3f}s {m['upload']:>10.3f}s"
                    f" {m['cpu_cold']:>15.2f}s {m['cpu']:>14.2f}s {m['server']:>12.2f}s"
                )
        if 1 in medians and 50 in medians:
            print()
            for what, label in (
                ("cold", "true cold"),
                ("warm", "true warm"),
                ("upload", "1MB upload"),
            ):
                ratio = medians[50][what] / medians[1][what]
                print(
                    f"ratio 50/1 {label:<11} {ratio:6.2f}  (goal <= 3: {'met' if ratio <= 3 else 'not met'})"
                )
            per_host = medians[50]["cpu"] / 50 * 1000
            print(f"client CPU per host (connect, 3 commands, 1 MB upload): {per_host:.1f} ms")
            # Here the 50 sshds share this machine's cores with the client; real nodes
            # bring their own CPU, so the client's CPU is what bounds the fan-out there.
            projected = max(medians[1]["cold"], medians[50]["cpu_cold"]) / medians[1]["cold"]
            print(
                f"client-bound 50/1 ratio for 'true' cold (servers on their own CPUs,"
                f" projected): {projected:.2f}"
            )


if __name__ == "__main__":
    main()
