"""Helpers for the healing, scaling and bursting tests: a project on test hosts, a load
generator through a load balancer, the agent as a real process, the history read."""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.helpers import HOTSITE

SITE_DIR = Path(__file__).resolve().parent / "integration" / "keep_site"
BLUEPRINT = SITE_DIR / "blueprint.yaml"


def pool(hosts: list[Any], roles: list[str]) -> dict[str, Any]:
    return {
        "driver": "byon",
        "hosts": [
            {"name": h.name, "address": h.address, "port": h.port, "tags": {"role": r}}
            for h, r in zip(hosts, roles, strict=True)
        ],
    }


def project(
    directory: Path,
    factory: Any,
    roles: list[str],
    *,
    web_count: int = 2,
    healing: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    inputs: dict[str, Any] | None = None,
) -> tuple[Path, list[Any]]:
    """Site ``primary`` from the keep blueprint on a pool ``rack`` of new test hosts."""
    hosts = factory.create(len(roles), private_dirs=["/opt"])
    config: dict[str, Any] = {
        "sites": {
            "primary": {
                "blueprint": str(BLUEPRINT),
                "driver": "rack",
                "inputs": {"web_count": web_count, **(inputs or {})},
            }
        },
        "nodes": {
            "ssh": {
                "key": str(factory.client_key_path),
                "connect_timeout": 3,
                "accept_new_host_keys": True,
            },
            "providers": {"rack": pool(hosts, roles)},
        },
        "healing": healing or {},
    }
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    path = directory / "hotsite.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, hosts


class Load:
    """GET requests through a URL in a loop, one connection each, until stopped."""

    def __init__(self, url: str, pause: float = 0.01, timeout: float = 10) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "", parts.port or 80
        self.pause, self.timeout = pause, timeout
        self.ok = 0
        self.failures: list[str] = []
        self.served_by: collections.Counter[str] = collections.Counter()
        self.answers: list[tuple[float, float, str]] = []  # (sent, answered, which node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def first_after(self, node: str, since: float) -> float | None:
        """When ``node`` first answered a request sent after ``since`` (None: not yet)."""
        found = [at for sent, at, body in self.answers[-5000:] if sent > since and body == node]
        return found[0] if found else None

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        deadline = time.monotonic() + 600  # bounded, whatever the test does
        while not self._stop.is_set() and time.monotonic() < deadline:
            sent = time.time()
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                conn.request("GET", "/", headers={"Connection": "close"})
                response = conn.getresponse()
                body = response.read().decode(errors="replace")
                conn.close()
                if response.status == 200:
                    self.ok += 1
                    self.served_by[body] += 1
                    self.answers.append((sent, time.time(), body))
                else:
                    self.failures.append(f"{time.time():.3f} status {response.status}")
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"{time.time():.3f} {exc!r}")
            if self.pause:
                self._stop.wait(self.pause)


class Agent:
    """``hotsite agent --site SITE`` as a real process, stopped by its PID."""

    def __init__(self, config: Path, site: str = "primary") -> None:
        self.log = config.parent / f"agent-{site}.log"
        out = self.log.open("w")
        self.process = subprocess.Popen(
            [*HOTSITE, "--config", str(config), "--verbose", "agent", "--site", site, "-q"],
            cwd=config.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def entries(config: Path, kind: str = "heal", site: str = "primary") -> list[dict[str, Any]]:
    """The history's entries of a kind (heal, burst), oldest first, with their steps.

    Read with one plain connection, closed after: a StateStore per call would tighten
    the -wal/-shm files each time (open, close), and closing any descriptor of a file
    drops the POSIX locks this process's other SQLite connections hold on it — the
    reads then saw a stale database while the agent kept writing."""
    db = config.parent / ".hotsite" / "state.db"
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        conn.row_factory = sqlite3.Row
        try:
            moves = conn.execute(
                "SELECT * FROM dr_moves WHERE kind = ? AND source = ? ORDER BY started",
                (kind, site),
            ).fetchall()
        except sqlite3.OperationalError:  # no history table yet
            return []
        found = []
        for row in moves:
            steps = conn.execute(
                "SELECT at, step, detail FROM dr_move_steps WHERE move_id = ? ORDER BY at, rowid",
                (row["id"],),
            ).fetchall()
            found.append(
                {
                    "id": row["id"], "kind": row["kind"], "from": row["source"],
                    "to": row["target"], "started": row["started"], "finished": row["finished"],
                    "outcome": row["outcome"], **json.loads(row["summary"] or "{}"),
                    "steps": [dict(s) for s in steps],
                }
            )  # fmt: skip
    return found


def wait_for(what: str, predicate: Callable[[], Any], timeout: float, explain: Callable[[], str] = str) -> Any:  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{explain()}")
        time.sleep(0.1)


def kill_namespace(host: Any) -> None:
    """The host is lost: every process in its namespace killed, its sshd included."""
    pids = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True)
    for pid in pids.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def app_pid(host: Any) -> int:
    return int((host.private_dirs["/opt"] / "keep" / "pid").read_text().strip())
