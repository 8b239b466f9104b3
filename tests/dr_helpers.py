"""Helpers for the dr tests: the controller as a real process, waiting for a state."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import yaml

from hotsite.dr.record_sqlite import SqliteRecordStore
from hotsite.state import StateStore
from hotsite.testing.mariadb import PrivateMariaDB
from tests.helpers import HOTSITE, write_config

TOKEN = "s3cret-token-0123456789abcdef"


def app_servers(
    mariadb_factory: Callable[..., PrivateMariaDB],
) -> tuple[PrivateMariaDB, PrivateMariaDB]:
    """Two servers, each with the database ``app`` and its application user ``app``
    (password ``pw``; no READ_ONLY ADMIN, so a fence stops its writes)."""
    primary, dr = mariadb_factory(), mariadb_factory()
    for server in (primary, dr):
        server.execute(
            "CREATE DATABASE app", "CREATE USER app@'%' IDENTIFIED BY 'pw'",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO app@'%'",
        )  # fmt: skip
    return primary, dr


def app_write(server: PrivateMariaDB, *statements: str) -> None:
    """Each statement its own acknowledged transaction, as the application's user."""
    conn = pymysql.connect(
        host="127.0.0.1", port=server.port, user="app", password="pw", database="app",
        autocommit=True, connect_timeout=2,
    )  # fmt: skip
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def pets(server: PrivateMariaDB) -> list[tuple[Any, ...]]:
    return server.execute("SELECT id, name FROM app.pets ORDER BY id")


def read_only(server: PrivateMariaDB) -> bool:
    return server.execute("SELECT @@GLOBAL.read_only") == [(1,)]


def dr_project(
    directory: Path,
    mariadb_factory: Callable[..., PrivateMariaDB],
    pets_table: str = "id INT PRIMARY KEY, name VARCHAR(20)",
    both_ways: bool = False,
) -> dict[str, Any]:
    """Two app servers, ``app.pets`` at the primary, a project file with the link
    primary->dr (and dr->primary with ``both_ways``) and a dr: section, and the record
    made: {"config", "primary", "dr", "records"}."""
    primary, dr = app_servers(mariadb_factory)
    primary.execute(f"CREATE TABLE app.pets ({pets_table})")
    config = write_config(directory, primary, dr)
    data = yaml.safe_load(config.read_text())
    if both_ways:
        data["replication"].append({"from": "dr", "to": "primary", "heartbeat_interval": 0})
    data["dr"] = {"primary": "primary", "lease": 1.0, "clock_margin": 0.2}
    config.write_text(yaml.safe_dump(data))
    records = SqliteRecordStore(StateStore(directory / ".hotsite" / "state.db"))
    records.initialise("primary")
    return {"config": config, "primary": primary, "dr": dr, "records": records}


class Controller:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.process: subprocess.Popen[str] | None = None
        self.stderr = config.parent / "controller.err"

    def start(self) -> Controller:
        env = {**os.environ, "HOTSITE_CONTROL_TOKEN": TOKEN}
        self.process = subprocess.Popen(
            [*HOTSITE, "--config", str(self.config), "controller"],
            stdout=subprocess.PIPE,
            stderr=self.stderr.open("a"),
            text=True,
            env=env,
            cwd=self.config.parent,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert "controller listening on" in line, line + self.stderr.read_text()
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)
        self.process = None


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def answer(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes) -> None:
    """One HTTP/1.1 response with its length (so keep-alive works)."""
    handler.send_response(status)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class _Named(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        answer(self, 200, self.server.site.encode())  # type: ignore[attr-defined]

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def web_sites(*names: str) -> Iterator[dict[str, int]]:
    """A tiny HTTP server per site on loopback that answers its site's name; site → port."""
    servers = []
    for name in names:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Named)
        server.site = name  # type: ignore[attr-defined]
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    try:
        yield {name: s.server_address[1] for name, s in zip(names, servers, strict=True)}
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def get(port: int, timeout: float = 3.0) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


class CuttableProxy:
    """A TCP proxy on loopback whose ``cut()`` drops every connection through it and
    refuses new ones (a network partition, for one path only); ``mend()`` restores it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self.cut_off = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_off:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.cut_off = True
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
            self._open = []

    def mend(self) -> None:
        self.cut_off = False

    def close(self) -> None:
        self.cut()
        self.listener.close()
