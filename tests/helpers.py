"""Helpers for tests that drive the real ``hotsite`` command against private servers."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from hotsite.testing.mariadb import PrivateMariaDB

HOTSITE = [sys.executable, "-m", "hotsite"]


def write_config(
    directory: Path, source: PrivateMariaDB, target: PrivateMariaDB, **link: Any
) -> Path:
    link = {"from": "primary", "to": "dr", "heartbeat_interval": 0, **link}
    config = {
        "sites": {"primary": {"database": source.url()}, "dr": {"database": target.url()}},
        "replication": [link],
    }
    path = directory / "hotsite.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def hotsite(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HOTSITE, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=config.parent,
    )


def start_replicate(config: Path, *args: str, timeout: float = 60) -> subprocess.Popen[str]:
    """``hotsite replicate`` in the background, in its own process group; returns once its
    agent streams (so a fault a test injects next hits streaming, not start-up checks):
    its capture process has reported, not just the agent (on a loaded machine the
    capture process takes seconds to start, and a test timing a window from here would
    time the start-up instead)."""
    process = subprocess.Popen(
        [*HOTSITE, "--config", str(config), "replicate", "--quiet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=config.parent,
        start_new_session=True,
    )
    ends = {flag: args[i + 1] for i, flag in enumerate(args[:-1]) if flag in ("--from", "--to")}
    name = f"{ends.get('--from', 'primary')}-to-{ends.get('--to', 'dr')}"
    status = config.parent / ".hotsite" / "status" / f"{name}.json"
    started = time.time()
    deadline = time.monotonic() + timeout
    while not _capture_reported(status, started):
        if process.poll() is not None:
            raise AssertionError(
                f"replicate exited: {process.stderr.read() if process.stderr else ''}"
            )
        assert time.monotonic() < deadline, "replicate did not start streaming"
        time.sleep(0.05)
    return process


def _capture_reported(status: Path, since: float) -> bool:
    """The agent started after ``since`` has had a report from its capture process."""
    try:
        if status.stat().st_mtime <= since:
            return False
        return bool(json.loads(status.read_text()).get("capture"))
    except (OSError, ValueError):
        return False  # not written yet, or caught mid-write


def start_agent(
    config: Path, site: str, timeout: float = 90, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``hotsite agent --site SITE`` in its own process group (``env`` added to this
    process's environment); returns once every duty runs. Its log goes to
    ``agent-SITE.log`` beside the config (``agent_log``): a pipe nobody reads would
    stop the agent once full, and a failing test wants to show why a duty failed."""
    with agent_log(config, site).open("a") as log:  # the agent holds its own copy
        process = subprocess.Popen(
            [*HOTSITE, "--config", str(config), "agent", "--site", site, "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
            cwd=config.parent,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    status = config.parent / ".hotsite" / "status" / f"agent-{site}.json"
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"agent exited: {agent_log(config, site).read_text()}")
        try:
            view = json.loads(status.read_text())
            if view["updated_at"] and all(d["running"] for d in view["duties"]):
                return process
        except (OSError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            kill_group(process)
            raise AssertionError(f"agent of {site} did not start: {status.read_text()}")
        time.sleep(0.1)


def agent_log(config: Path, site: str) -> Path:
    return config.parent / f"agent-{site}.log"


def agent_log_tail(config: Path, last: int, containing: str = "") -> list[str]:
    """The last ``last`` lines of each test agent's log beside ``config`` (those with
    ``containing``): what a failing test shows of why a duty failed."""
    return [
        line
        for log in sorted(config.parent.glob("agent-*.log"))
        for line in log.read_text().splitlines()[-last:]
        if containing in line
    ]


def kill_group(process: subprocess.Popen[str], sig: int = signal.SIGKILL) -> None:
    """Kill the replicate process and its capture child (same process group)."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
    process.wait(timeout=30)


def catch_up(config: Path, timeout: float = 120) -> None:
    result = hotsite(config, "replicate", "--until-caught-up", "--quiet", timeout=timeout)
    assert result.returncode == 0, result.stderr


def table_checksums(server: PrivateMariaDB, database: str = "app") -> dict[str, Any]:
    tables = [row[0] for row in server.execute(f"SHOW TABLES FROM {database}")]
    if not tables:
        return {}
    names = ", ".join(f"`{database}`.`{t}`" for t in tables)
    return dict(server.execute(f"CHECKSUM TABLE {names} EXTENDED"))


def rows(server: PrivateMariaDB, table: str) -> list[tuple[Any, ...]]:
    return server.execute(f"SELECT * FROM {table} ORDER BY 1")


def source_seq(server: PrivateMariaDB) -> int:
    """The source's GTID sequence number in domain 0: its count of transactions."""
    position = str(server.execute("SELECT @@gtid_binlog_pos")[0][0])
    return int(position.split("-")[-1]) if position else 0


def applied(target: PrivateMariaDB, origin: str = "primary") -> tuple[str, int]:
    row = target.execute(
        f"SELECT gtid_state, transactions FROM hotsite.hotsite_applied WHERE origin = '{origin}'"
    )[0]
    return str(row[0]), int(row[1])


class Workload:
    """A mixed write load on ``app.items`` and ``app.orders``: multi-row transactions of
    inserts, updates (including key changes) and deletes, from one or more threads."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS app.items (id INT PRIMARY KEY, name VARCHAR(64), qty INT,"
        " price DECIMAL(10,2), seen DATETIME(6), note TEXT NULL, blob_col BLOB NULL)",
        "CREATE TABLE IF NOT EXISTS app.orders (shop INT, num INT, item INT, total DECIMAL(12,2),"
        " PRIMARY KEY (shop, num))",
    )

    def __init__(self, server: PrivateMariaDB, threads: int = 2, seed: int = 7) -> None:
        self.server = server
        self.threads = threads
        self.seed = seed
        self.stop_event = threading.Event()
        self.transactions = 0
        self._workers: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self._next_ids = {n: 1_000_000 * (n + 1) for n in range(threads)}

    def create(self, initial_rows: int = 200) -> None:
        self.server.execute(*self.SCHEMA)
        values = ", ".join(
            f"({i}, 'item{i}', {i % 17}, {i}.25, NOW(6), NULL, x'0001ff')"
            for i in range(initial_rows)
        )
        self.server.execute(f"INSERT INTO app.items VALUES {values}")

    def start(self) -> Workload:
        self.stop_event.clear()
        self._workers = []
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for worker in self._workers:
            worker.join(timeout=30)
        assert not self.errors, self.errors

    def run_for(self, seconds: float) -> None:
        self.start()
        time.sleep(seconds)
        self.stop()

    def _run(self, worker: int) -> None:
        rng = random.Random(self.seed + worker + self._next_ids[worker])
        base = 1_000_000 * (worker + 1)
        next_id = self._next_ids[worker]
        try:
            conn = self.server.connect("app")
            conn.autocommit(False)
            with conn.cursor() as cur:
                while not self.stop_event.is_set():
                    for _ in range(rng.randint(1, 4)):
                        op = rng.random()
                        if op < 0.4:
                            next_id += 1
                            cur.execute(
                                "INSERT INTO items VALUES (%s, %s, %s, %s, NOW(6), %s, %s)",
                                (
                                    next_id,
                                    f"n{next_id}",
                                    rng.randint(0, 9),
                                    rng.randint(1, 999) / 4,
                                    rng.choice([None, "ü text", ""]),
                                    rng.choice([None, b"\x00\x01", b""]),
                                ),
                            )
                        elif op < 0.7:
                            cur.execute(
                                "UPDATE items SET qty = qty + 1, note = %s WHERE id = %s",
                                (
                                    rng.choice([None, "upd"]),
                                    rng.choice([rng.randint(0, 199), next_id]),
                                ),
                            )
                        elif op < 0.8:
                            cur.execute(
                                "DELETE FROM items WHERE id = %s", (rng.randint(base, next_id + 1),)
                            )
                        elif op < 0.9:
                            cur.execute(
                                "INSERT INTO orders VALUES (%s, %s, %s, %s) ON DUPLICATE KEY UPDATE total = total + 1",
                                (
                                    worker,
                                    rng.randint(0, 500),
                                    rng.randint(0, 199),
                                    rng.randint(0, 10**6) / 100,
                                ),
                            )
                        else:
                            # A primary-key change: the row moves to a new key.
                            cur.execute(
                                "UPDATE IGNORE orders SET num = num + 1000 WHERE shop = %s AND num = %s",
                                (worker, rng.randint(0, 500)),
                            )
                    conn.commit()
                    self._next_ids[worker] = next_id
                    self.transactions += 1
            conn.close()
        except BaseException as exc:
            self.errors.append(exc)


def one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Assert a refusal: exit 2, no traceback, one 'error:' line holding every fragment."""
    stderr = result.stderr
    assert result.returncode == 2, (result.returncode, stderr)
    assert "Traceback" not in stderr
    joined = " ".join(line for line in stderr.splitlines() if line.strip())
    assert joined.startswith("error:"), stderr
    for fragment in fragments:
        assert fragment in joined, (fragment, stderr)
    return joined


def offline_pair_config(directory: Path) -> Path:
    """A project file of two sites on ports nothing listens on, one link: for unit
    tests of what reads the file, never a server."""
    path = directory / "hotsite.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "sites": {
                    "primary": {"database": "mysql://root@127.0.0.1:1/app"},
                    "dr": {"database": "mysql://root@127.0.0.1:2/app"},
                },
                "replication": [{"from": "primary", "to": "dr"}],
            }
        )
    )
    return path
