"""Both directions at once: apply rate per direction, conflicts/s, time to converge.

Two private MariaDB servers, each with auto_increment offsets of its own, and the site
agents (``hotsite agent --site …``, as a user runs them). Each part writes a backlog of
transactions while the agents are stopped (4 single-row updates each, sysbench-style,
on a table of ``--rows`` rows), then starts the agents and times how fast each
direction applies it, from each target's ``hotsite_applied`` row:

- **one-way engine**: a project with the one link primary→dr (no row versions: only one
  site takes writes), primary writes, dr's agent applies — the rate to beat;
- **one direction of a pair**: the same with both links listed (row-version triggers at
  both sites, a shadow row written and shipped with every change), only dr's agent runs;
- **no overlap**: both sites write, each its own half of the keys, both agents run —
  each direction's rate, which should stay within 20% of the one-way rate;
- **overlap**: both sites write the same keys — each direction's rate, conflicts per
  second, and the time from the start until both sites hold identical tables.

    .venv/bin/python bench/active_active.py [--transactions 20000] [--rows 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymysql
import yaml

from hotsite.db import DatabaseURL, connect
from hotsite.replication import rowversions
from hotsite.replication.gtid import GtidState
from hotsite.testing.mariadb import PrivateMariaDB

HOTSITE = [sys.executable, "-m", "hotsite"]
TABLE = "CREATE TABLE app.t (id INT PRIMARY KEY, k INT NOT NULL, c VARCHAR(60), pad CHAR(60))"


def write_backlog(server: PrivateMariaDB, keys: range, transactions: int, seed: int) -> None:
    rng = random.Random(seed)
    conn = pymysql.connect(
        host="127.0.0.1", port=server.port, user="root", database="app", autocommit=False
    )
    try:
        with conn.cursor() as cur:
            for n in range(transactions):
                for _ in range(4):
                    cur.execute(
                        "UPDATE t SET k = k + 1, c = %s WHERE id = %s",
                        (f"{seed}-{n}", rng.choice(keys)),
                    )
                conn.commit()
    finally:
        conn.close()


def applied(server: PrivateMariaDB, link: str) -> int:
    rows = server.execute(
        f"SELECT transactions FROM hotsite.hotsite_applied WHERE link_key LIKE '%/{link}'"
    )
    return int(rows[0][0]) if rows else 0


def position(server: PrivateMariaDB) -> GtidState:
    return GtidState.parse(str(server.execute("SELECT @@GLOBAL.gtid_binlog_pos")[0][0]))


def caught_up(target: PrivateMariaDB, link: str, goal: GtidState) -> bool:
    rows = target.execute(
        f"SELECT gtid_state FROM hotsite.hotsite_applied WHERE link_key LIKE '%/{link}'"
    )
    return bool(rows) and GtidState.parse(str(rows[0][0])).reached(goal)


def checksum(server: PrivateMariaDB) -> object:
    return server.execute("CHECKSUM TABLE app.t EXTENDED")[0][1]


def conflicts(server: PrivateMariaDB) -> int:
    found = server.execute(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'hotsite'"
        " AND TABLE_NAME = 'hotsite_conflicts'"
    )
    if not found[0][0]:
        return 0
    return int(server.execute("SELECT COUNT(*) FROM hotsite.hotsite_conflicts")[0][0])


class Agents:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, site: str) -> None:
        log = (self.config.parent / f"agent-{site}.log").open("ab")
        self.running[site] = subprocess.Popen(
            [*HOTSITE, "--config", str(self.config), "agent", "--site", site, "--quiet"],
            stdout=log,
            stderr=log,
            cwd=self.config.parent,
            start_new_session=True,
        )

    def wait_running(self, site: str, timeout: float = 120) -> None:
        status = self.config.parent / ".hotsite" / "status" / f"agent-{site}.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                view = json.loads(status.read_text())
                if view["updated_at"] and all(d["running"] for d in view["duties"]):
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        log = self.config.parent / f"agent-{site}.log"
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
        raise SystemExit(f"the agent of {site} did not start: {' / '.join(tail)}")

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
        self.running.clear()


def drain(
    agents: Agents,
    servers: dict[str, PrivateMariaDB],
    directions: list[tuple[str, str]],
    sites: list[str],
) -> dict[str, float]:
    """Start the agents of ``sites``; seconds until each direction applied its backlog,
    as transactions per second."""
    goals = {(a, b): position(servers[a]) for a, b in directions}
    before = {(a, b): applied(servers[b], f"{a}-to-{b}") for a, b in directions}
    started = time.monotonic()
    for site in sites:
        agents.start(site)
    done: dict[tuple[str, str], float] = {}
    while len(done) < len(directions):
        for a, b in directions:
            if (a, b) not in done and caught_up(servers[b], f"{a}-to-{b}", goals[(a, b)]):
                done[(a, b)] = time.monotonic() - started
        if time.monotonic() - started > 900:
            raise SystemExit("a direction did not catch up within 15 minutes")
        time.sleep(0.05)
    return {
        f"{a}->{b}": (applied(servers[b], f"{a}-to-{b}") - before[(a, b)]) / done[(a, b)]
        for a, b in directions
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transactions", type=int, default=20000)
    parser.add_argument("--rows", type=int, default=10000)
    args = parser.parse_args()
    n, rows = args.transactions, args.rows
    servers = {
        "primary": PrivateMariaDB(server_id=201).start(),
        "dr": PrivateMariaDB(server_id=202).start(),
    }
    agents: Agents | None = None
    try:
        for offset, server in enumerate(servers.values(), start=1):
            server.execute("CREATE DATABASE app")
            server.execute("SET GLOBAL auto_increment_increment = 2")
            server.execute(f"SET GLOBAL auto_increment_offset = {offset}")
        primary, dr = servers["primary"], servers["dr"]
        primary.execute(TABLE)
        for start in range(0, rows, 1000):
            values = ", ".join(
                f"({i}, {i}, 'c', 'p')" for i in range(start + 1, min(rows, start + 1000) + 1)
            )
            primary.execute(f"INSERT INTO app.t VALUES {values}")
        home = Path(tempfile.mkdtemp(prefix="hotsite-bench-aa-"))
        sites = {name: {"database": s.url()} for name, s in servers.items()}
        # One project name: the one-way project's position is where the pair's link
        # goes on from.
        (home / "one-way").mkdir()
        single = home / "one-way" / "hotsite.yaml"
        single.write_text(
            yaml.safe_dump(
                {
                    "project": "bench",
                    "sites": sites,
                    "replication": [{"from": "primary", "to": "dr"}],
                }
            )
        )
        config = home / "hotsite.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "project": "bench",
                    "sites": sites,
                    "replication": [
                        {"from": "primary", "to": "dr"},
                        {"from": "dr", "to": "primary"},
                    ],
                }
            )
        )
        lower, upper = range(1, rows // 2 + 1), range(rows // 2 + 1, rows + 1)
        every = range(1, rows + 1)

        # set-up: dr loaded by snapshot, dr -> primary started after that load
        agents = Agents(config)
        agents.start("dr")
        agents.wait_running("dr")
        agents.start("primary")
        agents.wait_running("primary")
        agents.stop()

        # The one-way engine: the same link in a project of its own, without the pair's
        # row versions (its agent puts none in: one site takes writes).
        for server in servers.values():
            conn = connect(DatabaseURL.parse(server.url()), "bench")
            try:
                rowversions.drop(conn, [("app", "t")])
            finally:
                conn.close()
        engine_agents = Agents(single)
        write_backlog(primary, every, n, seed=0)
        engine = drain(engine_agents, servers, [("primary", "dr")], ["dr"])
        engine_agents.stop()
        # The pair's agents put the versions back when they start (and dr's catches up).
        for site in ("dr", "primary"):
            agents.start(site)
            agents.wait_running(site)
        agents.stop()

        write_backlog(primary, every, n, seed=1)
        one_way = drain(agents, servers, [("primary", "dr")], ["dr"])
        agents.stop()
        agents.start("primary")  # bring dr's side back in step before the next part
        agents.wait_running("primary")
        agents.stop()

        write_backlog(primary, lower, n, seed=2)
        write_backlog(dr, upper, n, seed=3)
        both = [("primary", "dr"), ("dr", "primary")]
        no_overlap = drain(agents, servers, both, ["primary", "dr"])
        agents.stop()

        conflicts_before = conflicts(primary) + conflicts(dr)
        write_backlog(primary, every, n, seed=4)
        write_backlog(dr, every, n, seed=5)
        started = time.monotonic()
        overlap = drain(agents, servers, both, ["primary", "dr"])
        drained = time.monotonic() - started
        while checksum(primary) != checksum(dr):
            if time.monotonic() - started > 900:
                raise SystemExit("the sites did not converge within 15 minutes")
            time.sleep(0.1)
        converged = time.monotonic() - started
        seen = conflicts(primary) + conflicts(dr) - conflicts_before
        agents.stop()
    finally:
        if agents is not None:
            agents.stop()
        for server in servers.values():
            server.stop()

    base = engine["primary->dr"]
    print(f"backlog of {n} transactions (4 single-row updates each) per site, {rows} rows")
    print(f"one-way engine          primary->dr {base:8.0f} tx/s  (one link, no row versions)")
    pair = one_way["primary->dr"]
    print(f"a pair, one direction   primary->dr {pair:8.0f} tx/s  ({pair / base:.2f}x one-way)")
    for name, rate in no_overlap.items():
        print(f"both ways, no overlap   {name:11} {rate:8.0f} tx/s  ({rate / base:.2f}x one-way)")
    for name, rate in overlap.items():
        print(f"both ways, same keys    {name:11} {rate:8.0f} tx/s  ({rate / base:.2f}x one-way)")
    print(
        f"same keys: {seen} conflicts, {seen / drained:.0f}/s while draining;"
        f" identical {converged:.1f} s after the agents started (drained in {drained:.1f} s)"
    )


if __name__ == "__main__":
    main()
