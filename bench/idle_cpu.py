"""What a site agent burns while its source is idle, and its lag on a light trickle.

Two private MariaDB servers, one link (heartbeats every second, as in production), the
agent of the target site (``hotsite agent --site dr``, as a user runs it). After it has
caught up:

- **idle**: the CPU time of the agent's whole process group (the agent, its capture
  process) over ``--seconds`` of an idle source, as a share of one core (goal: < 1%);
- **trickle**: 20 single-row commits a second for ``--seconds``: commit-to-visible lag
  at the target (p50, p99), measured by polling the target for each row.

    .venv/bin/python -m bench.idle_cpu [--seconds 20]

``BENCH_PROFILE_IDLE=FILE``: py-spy's samples of the idle agent, into FILE.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymysql
import yaml

from bench.active_active import Agents
from hotsite.testing.mariadb import PrivateMariaDB

TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> tuple[float, float]:
    """utime and stime of every live process in the process group ``pgid``."""
    user = system = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 of stat: the process group
            user, system = user + int(fields[11]), system + int(fields[12])
    return user / TICKS, system / TICKS


def trickle_lag(primary: PrivateMariaDB, dr: PrivateMariaDB, seconds: float) -> list[float]:
    source = pymysql.connect(host="127.0.0.1", port=primary.port, user="root", database="app")
    target = pymysql.connect(
        host="127.0.0.1", port=dr.port, user="root", database="app", autocommit=True
    )
    lags = []
    try:
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            n += 1
            with source.cursor() as cur:
                cur.execute("INSERT INTO t (id, v) VALUES (%s, %s)", (n, n))
            source.commit()
            committed = time.monotonic()
            with target.cursor() as cur:
                while True:
                    cur.execute("SELECT 1 FROM t WHERE id = %s", (n,))
                    if cur.fetchone():
                        break
                    time.sleep(0.0005)
            lags.append(time.monotonic() - committed)
            time.sleep(max(0.0, 0.05 - (time.monotonic() - committed)))
    finally:
        source.close()
        target.close()
    return lags


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="hotsite-bench-idle-"))
    primary, dr = PrivateMariaDB(server_id=1), PrivateMariaDB(server_id=2)
    agents = None
    try:
        primary.start()
        dr.start()
        primary.execute("CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)")
        config = workdir / "hotsite.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "sites": {"primary": {"database": primary.url()}, "dr": {"database": dr.url()}},
                    "replication": [{"from": "primary", "to": "dr", "heartbeat_interval": 1.0}],
                }
            )
        )
        agents = Agents(config)
        agents.start("dr")
        agents.wait_running("dr")
        time.sleep(3)  # snapshot done, capture idle
        pgid = agents.running["dr"].pid
        profile = os.environ.get("BENCH_PROFILE_IDLE")  # a file: where the idle CPU goes
        if profile:  # py-spy's own CPU is not the agent's: not in its process group
            spy = [str(Path(sys.executable).parent / "py-spy"), "record", "-r", "100", "-d",
                   str(int(args.seconds)), "--subprocesses", "--format", "raw", "-o", profile,
                   "--pid", str(pgid)]  # fmt: skip
            subprocess.Popen(spy)
        (user0, system0), started = group_cpu_seconds(pgid), time.monotonic()
        time.sleep(args.seconds)
        (user1, system1), elapsed = group_cpu_seconds(pgid), time.monotonic() - started
        user, system = user1 - user0, system1 - system0
        used = user + system
        print(
            f"idle: {used:.2f} s of CPU in {elapsed:.1f} s = {100 * used / elapsed:.2f}% of a core"
            f" (user {100 * user / elapsed:.2f}%, system {100 * system / elapsed:.2f}%)"
        )
        lags = sorted(trickle_lag(primary, dr, args.seconds))
        p50 = statistics.median(lags) * 1000
        p99 = lags[int(len(lags) * 0.99) - 1] * 1000
        print(f"trickle (20 tx/s, {len(lags)} tx): lag p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    finally:
        if agents is not None:
            agents.stop()
        dr.stop()
        primary.stop()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
