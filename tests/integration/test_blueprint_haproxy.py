"""The built-in load balancer for real: lifecycle commands, reload, runtime API."""

from __future__ import annotations

import asyncio
import http.server
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotsite.testing.mariadb import free_port
from hotsite.traffic.haproxy import (
    Backend,
    HAProxySite,
    lifecycle,
    local_runtime,
    render_config,
    set_server_state,
)


class _Named(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.name.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    servers = []
    for name in ("web-a", "web-b"):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Named)
        server.name = name  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield [Backend(s.name, "127.0.0.1", s.server_address[1]) for s in servers]  # type: ignore[attr-defined]
    for server in servers:
        server.shutdown()
        server.server_close()


def sh(command: str) -> None:
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3) as response:
        return str(response.read().decode())


def test_lifecycle_reload_and_runtime_api(tmp_path: Path, backends: list[Backend]) -> None:
    port = free_port()
    site = HAProxySite(str(tmp_path), port, (backends[0],), health_path=None, name="app")
    Path(site.config_path).write_text(render_config(site))
    steps = lifecycle(site)
    try:
        sh(steps["configure"])
        sh(steps["start"])
        assert get(port) == "web-a"
        # The backend service grew: new configuration, reload (no restart).
        site = HAProxySite(str(tmp_path), port, tuple(backends), health_path=None, name="app")
        Path(site.config_path).write_text(render_config(site))
        sh(steps["reload"])
        assert {get(port) for _ in range(6)} == {"web-a", "web-b"}
        # Runtime API: take web-a out of rotation without any reload.
        state = asyncio.run(local_runtime(site.socket_path, "show servers state be_app"))
        assert "web-a" in state and "web-b" in state
        sh(set_server_state(site, backends[0], "maint"))
        assert {get(port) for _ in range(6)} == {"web-b"}
        sh(set_server_state(site, backends[0], "ready"))
        assert "web-a" in {get(port) for _ in range(6)}
    finally:
        sh(steps["stop"])
    sh(steps["stop"])  # twice is fine
    sh(steps["uninstall"])
    assert not tmp_path.exists()
