"""The global entry point for real: HAProxy in front of two small HTTP backends on
loopback, switched through the runtime API without a reload; a cut site's open
requests are shut down."""

from __future__ import annotations

import http.client
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hotsite.testing.mariadb import free_port
from hotsite.traffic.entry import EntryControl, EntryError, EntryPoint, EntryServer
from tests.helpers import hotsite


class _Site(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(3)
        body = self.server.site.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def entry(tmp_path: Path) -> Iterator[EntryControl]:
    servers = []
    for site in ("primary", "dr"):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Site)
        server.site = site  # type: ignore[attr-defined]
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    point = EntryPoint(
        tmp_path / "entry", "127.0.0.1", free_port(),
        tuple(EntryServer(s.site, "127.0.0.1", s.server_address[1]) for s in servers),  # type: ignore[attr-defined]
    )  # fmt: skip
    control = EntryControl(point)
    yield control
    control.down()
    for server in servers:
        server.shutdown()
        server.server_close()


def get(entry: EntryControl, path: str = "/", timeout: float = 5) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", entry.entry.port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def wait_healthy(entry: EntryControl, sites: set[str]) -> None:
    deadline = time.monotonic() + 10
    while {s.site for s in entry.status() if s.health.startswith("UP")} != sites:
        assert time.monotonic() < deadline, entry.status()
        time.sleep(0.05)


def test_switch_without_reload_and_cut_sessions(entry: EntryControl) -> None:
    assert entry.up({"primary"}) is True
    assert entry.up({"dr"}) is False  # running: left as it is
    pid = entry.running_pid()
    wait_healthy(entry, {"primary"})
    assert {get(entry) for _ in range(6)} == {"primary"}
    status = {s.site: s for s in entry.status()}
    assert (status["primary"].admin, status["dr"].admin) == ("ready", "maint")

    # A slow request is in flight at the primary when the primary is cut.
    outcome: list[str] = []

    def slow() -> None:
        try:
            outcome.append(get(entry, "/slow"))
        except (OSError, http.client.HTTPException) as exc:
            outcome.append(f"cut: {type(exc).__name__}")

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.5)
    cut_at = time.monotonic()
    entry.route({"dr"})
    thread.join(timeout=10)
    assert outcome and outcome[0] != "primary", outcome  # it never got its answer
    assert time.monotonic() - cut_at < 2.0  # cut, not finished after the 3 s sleep
    wait_healthy(entry, {"dr"})
    assert {get(entry) for _ in range(6)} == {"dr"}
    status = {s.site: s for s in entry.status()}
    assert (status["primary"].admin, status["dr"].admin) == ("maint", "ready")

    # Active-active by weights, then back: all through the runtime API.
    entry.route({"primary", "dr"})
    entry.set_weight("dr", 0)
    wait_healthy(entry, {"primary", "dr"})
    assert {get(entry) for _ in range(6)} == {"primary"}
    entry.set_weight("dr", 100)
    assert {get(entry) for _ in range(8)} == {"primary", "dr"}
    assert entry.running_pid() == pid  # never reloaded
    with pytest.raises(EntryError, match="no server for site 'elsewhere'"):
        entry.cut("elsewhere")

    assert entry.down() is True and entry.running_pid() is None
    with pytest.raises(EntryError, match="did not answer"):
        entry.status()


def test_entry_commands(tmp_path: Path, entry: EntryControl) -> None:
    servers = {s.site: f"127.0.0.1:{s.port}" for s in entry.entry.servers}
    config = tmp_path / "hotsite.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "sites": {site: {"database": f"mysql://root@127.0.0.1:{i + 1}/app"}
                          for i, site in enumerate(servers)},
                "dr": {"primary": "dr", "entry": {"listen": f"127.0.0.1:{entry.entry.port}",
                                                  "servers": servers}},
            }
        )
    )  # fmt: skip
    assert hotsite(config, "entry", "status").returncode == 1
    up = hotsite(config, "entry", "up")
    assert up.returncode == 0 and "traffic to dr" in up.stdout, up.stderr
    try:
        deadline = time.monotonic() + 10
        while True:
            status = json.loads(hotsite(config, "entry", "status", "--json").stdout)
            servers_state = {s["site"]: s for s in status["servers"]}
            if servers_state["dr"]["health"].startswith("UP"):
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        assert servers_state["primary"]["admin"] == "maint"
        assert get(entry) == "dr"
    finally:
        down = hotsite(config, "entry", "down")
    assert down.returncode == 0 and "stopped" in down.stdout
