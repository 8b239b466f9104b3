"""The global entry point: one HAProxy in front of the sites, on the controller's machine.

Each site's load balancer (or web node) is one server of one backend. Traffic moves
between sites through the runtime API — ``set server … state ready|drain|maint``,
``set server … weight``, ``shutdown sessions server …`` — without any reload: a switch
takes well under a millisecond. The configuration file only sets where things start
(servers that take no traffic start ``disabled``, i.e. in maintenance), so a restarted
entry point routes like the one before it once hotsite has told it the record.

A fenced site is cut: ``maint`` (no new requests) and every open session to it shut
down, so a client's keep-alive connection cannot go on writing to it.

**Holding requests during a switch.** HAProxy answers 503 at once when no server of a
backend can take a request; it waits only for a server it may retry. So the backend has
one more server, ``hotsite-hold``, in maintenance except during a switch: its address is
a frontend of the same HAProxy (``fe_hold``, on a loopback port it keeps bound) that is
paused right after start, so a connection to it is refused at once — a connection
failure, which HAProxy retries (``retries``, ``option redispatch 1``: through the load
balancer on every retry) after its turn-around: min(one second, ``timeout connect``).
So ``timeout connect`` is the entry point's ``retry_interval`` (0.2 s by default): with
HAProxy's default turn-around a held request waited a whole second after the switch. While
only the hold server is ready, a request waits there, retried, up to HOLD_SECONDS; once a
site is ready again the next retry goes to it. A connection failure means the request never reached a
server, so a retry never runs a write twice. What could not be held (the hold ran out,
a site answered 5xx meanwhile) is counted from the frontend's 5xx responses
(``failed_responses``).

This module knows nothing of the record or of fencing: the dr layer decides which
sites take traffic and calls it.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hotsite.errors import HotsiteError
from hotsite.traffic.sockets import runtime_socket

BACKEND = "be_entry"
HOLD_SERVER = "hotsite-hold"
HOLD_SECONDS = 10  # how long a request waits while no site takes traffic (retried meanwhile)
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
HAPROXY = "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else "haproxy"
State = Literal["ready", "drain", "maint"]


class EntryError(HotsiteError):
    """The entry point could not be started, stopped or driven."""


@dataclass(frozen=True)
class EntryServer:
    site: str
    host: str
    port: int
    weight: int = 100

    @property
    def name(self) -> str:
        return _SAFE.sub("_", self.site)


@dataclass(frozen=True)
class EntryPoint:
    directory: Path
    host: str
    port: int
    servers: tuple[EntryServer, ...]
    mode: Literal["active-standby", "active-active"] = "active-standby"
    health_path: str | None = "/health"
    hold_port: int = 0  # fe_hold's loopback port; 0: chosen when the entry point starts
    # HAProxy's timeout connect, and so its turn-around between two attempts of a held
    # request: how long after the switch a held request goes on at the latest.
    retry_interval: float = 0.2

    @property
    def config_path(self) -> Path:
        return self.directory / "haproxy.cfg"

    @property
    def pid_path(self) -> Path:
        return self.directory / "haproxy.pid"

    @property
    def socket_path(self) -> Path:
        """The runtime API's socket: in the directory, unless that path is too long for a
        Unix socket (108 bytes, less the suffix HAProxy adds while it binds; a deep state
        directory, or a test's, exceeds it), then a short one named after the directory."""
        return Path(runtime_socket(str(self.directory), "entry"))

    def server(self, site: str) -> EntryServer:
        for server in self.servers:
            if server.site == site:
                return server
        known = ", ".join(s.site for s in self.servers)
        raise EntryError(f"the entry point has no server for site {site!r} (it has {known})")


@dataclass(frozen=True)
class ServerStatus:
    site: str
    admin: str  # ready, drain, maint
    health: str  # UP, DOWN, MAINT, no check, …  (HAProxy's words)
    weight: int
    sessions: int


def render_config(entry: EntryPoint, taking_traffic: set[str]) -> str:
    """Servers outside ``taking_traffic`` start in maintenance (``disabled``)."""
    host = f"[{entry.host}]" if ":" in entry.host else entry.host
    lines = [
        "# written by hotsite (hotsite entry up); moves change it through the runtime API",
        "global",
        f"    pidfile {entry.pid_path}",
        f"    stats socket {entry.socket_path} mode 600 level admin",
        "    maxconn 4096",
        "",
        "defaults",
        "    mode http",
        # Also the turn-around before a retry (min(1 s, this)): a held request goes on at
        # most this long after the switch. A connection to a site must take less.
        f"    timeout connect {round(entry.retry_interval * 1000)}ms",
        "    timeout client 30s",
        "    timeout server 30s",
        # A check waits this long for an answer (default: inter, 500 ms): a loaded web node
        # answering /health in 600 ms is not down, and a dead one refuses at once anyway.
        "    timeout check 2s",
        "    timeout queue 5s",
        # Connection failures only: the request reached no server, a retry is safe.
        "    retry-on conn-failure",
        f"    retries {math.ceil(HOLD_SECONDS / entry.retry_interval)}",
        "    option redispatch 1",
        "",
        "frontend fe_entry",
        f"    bind {host}:{entry.port}",
        f"    default_backend {BACKEND}",
        "",
        "# paused at start (a connection is refused): the hold server's address",
        "frontend fe_hold",
        "    mode tcp",
        f"    bind 127.0.0.1:{entry.hold_port}",
        "",
        f"backend {BACKEND}",
        "    balance roundrobin",
    ]
    if entry.health_path:
        lines += [f"    option httpchk GET {entry.health_path}", "    http-check expect status 200"]
    # A server marked down by its checks loses its sessions too: they lead nowhere.
    lines.append("    default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions")
    for server in entry.servers:
        address = f"[{server.host}]" if ":" in server.host else server.host
        disabled = "" if server.site in taking_traffic else " disabled"
        lines.append(
            f"    server {server.name} {address}:{server.port} check weight {server.weight}"
            f"{disabled}"
        )
    lines.append(f"    server {HOLD_SERVER} 127.0.0.1:{entry.hold_port} weight 1 disabled")
    return "\n".join(lines) + "\n"


class EntryControl:
    """Start, stop and drive one local HAProxy."""

    def __init__(self, entry: EntryPoint, timeout: float = 2.0) -> None:
        self.entry = entry
        self.timeout = timeout

    # -- lifecycle -------------------------------------------------------------------

    def running_pid(self) -> int | None:
        try:
            pid = int(self.entry.pid_path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return None
        return None if state == "Z" else pid

    def up(self, taking_traffic: set[str]) -> bool:
        """Start the entry point (False: it was running already, and is left as it is —
        its routing is the record's, not the configuration's)."""
        if self.running_pid() is not None:
            return False
        self.entry.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.entry.directory, 0o700)
        entry = self.entry
        if not entry.hold_port:
            entry = dataclasses.replace(entry, hold_port=_free_loopback_port())
        self.entry.config_path.write_text(render_config(entry, taking_traffic))
        self._haproxy("-c", "-q", "-f", str(self.entry.config_path))
        self._haproxy("-D", "-f", str(self.entry.config_path), "-p", str(self.entry.pid_path))
        deadline = time.monotonic() + 5
        while not self.entry.socket_path.exists():
            if time.monotonic() > deadline:
                raise EntryError(
                    f"the entry point started but its runtime socket {self.entry.socket_path}"
                    " did not appear",
                    f"see {self.entry.directory}/haproxy.log",
                )
            time.sleep(0.02)
        self._command("disable frontend fe_hold")  # refuse: the hold server's retries
        return True

    def down(self) -> bool:
        pid = self.running_pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while self.running_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.running_pid() is not None:
            os.kill(pid, signal.SIGKILL)
        self.entry.pid_path.unlink(missing_ok=True)
        self.entry.socket_path.unlink(missing_ok=True)
        return True

    def _haproxy(self, *args: str) -> None:
        log = self.entry.directory / "haproxy.log"
        with log.open("w") as out:
            result = subprocess.run(
                [HAPROXY, *args], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        if result.returncode != 0:
            first = (log.read_text().strip().splitlines() or ["no output"])[-1]
            raise EntryError(
                f"haproxy {args[0]} failed for the entry point ({first[:300]})",
                f"see {log}; check dr.entry.listen is free",
            )

    # -- routing through the runtime API -------------------------------------------

    def set_state(self, site: str, state: State) -> None:
        self._command(f"set server {BACKEND}/{self.entry.server(site).name} state {state}")

    def set_weight(self, site: str, weight: int) -> None:
        self._command(f"set server {BACKEND}/{self.entry.server(site).name} weight {weight}")

    def set_address(self, site: str, host: str, port: int) -> None:
        """Point a site's server elsewhere (a burst site's load balancer, once it is up)."""
        name = self.entry.server(site).name
        self._command(f"set server {BACKEND}/{name} addr {host} port {port}")

    def stat_rows(self) -> list[dict[str, str]]:
        """``show stat`` as rows (frontend, backend and servers): the load metrics."""
        text = self._command("show stat")
        return list(csv.DictReader(io.StringIO(text.lstrip("# "))))

    def cut(self, site: str) -> None:
        """No new requests to ``site``, and its open sessions shut down."""
        name = self.entry.server(site).name
        self._command(f"set server {BACKEND}/{name} state maint")
        self._command(f"shutdown sessions server {BACKEND}/{name}")

    def route(self, taking_traffic: set[str]) -> None:
        """Exactly these sites take traffic; the others are cut. The new ones are made
        ready first, so a switch between two live sites never has a moment with none;
        requests held meanwhile go to them at their next retry."""
        for server in self.entry.servers:
            if server.site in taking_traffic:
                self.set_state(server.site, "ready")
        for server in self.entry.servers:
            if server.site not in taking_traffic:
                self.cut(server.site)
        if taking_traffic:
            self.release()

    def hold(self) -> None:
        """From now on a request that no site can take waits (up to HOLD_SECONDS)."""
        self._command(f"set server {BACKEND}/{HOLD_SERVER} state ready")

    def release(self) -> None:
        self._command(f"set server {BACKEND}/{HOLD_SERVER} state maint")

    def failed_responses(self) -> int:
        """5xx answers the entry point gave (its own 503s, and the sites'), since start."""
        for row in csv.DictReader(io.StringIO(self._command("show stat -1 1 -1").lstrip("# "))):
            if row.get("pxname") == "fe_entry" and row.get("svname") == "FRONTEND":
                return int(row.get("hrsp_5xx") or 0)
        return 0

    def served(self) -> dict[str, int]:
        """Site → requests its server answered 2xx through the entry point, since start
        (HAProxy's ``hrsp_2xx``): sampled, it tells when a site last and first served."""
        text = self._command("show stat -1 4 -1")
        by_name = {server.name: server.site for server in self.entry.servers}
        return {
            by_name[row["svname"]]: int(row.get("hrsp_2xx") or 0)
            for row in csv.DictReader(io.StringIO(text.lstrip("# ")))
            if row.get("pxname") == BACKEND and row.get("svname") in by_name
        }

    def status(self) -> list[ServerStatus]:
        text = self._command("show stat -1 4 -1")
        rows = list(csv.DictReader(io.StringIO(text.lstrip("# "))))
        by_name = {server.name: server.site for server in self.entry.servers}
        found = []
        for row in rows:
            if row.get("pxname") != BACKEND or row.get("svname") not in by_name:
                continue
            health = row.get("status", "")
            admin = "maint" if "MAINT" in health else "drain" if "DRAIN" in health else "ready"
            found.append(
                ServerStatus(
                    by_name[row["svname"]], admin, health, int(row.get("weight") or 0),
                    int(row.get("scur") or 0),
                )
            )  # fmt: skip
        return found

    def _command(self, command: str) -> str:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.entry.socket_path))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except OSError as exc:
            raise EntryError(
                f"the entry point's runtime API did not answer ({exc.strerror or exc})",
                "is it running? 'hotsite entry status', 'hotsite entry up'",
            ) from None
        finally:
            sock.close()
        answer = b"".join(chunks).decode(errors="replace")
        lowered = answer.lower()
        if any(word in lowered for word in ("unknown command", "no such", "not found", "require")):
            raise EntryError(f"the entry point refused '{command}': {answer.strip()[:200]}")
        return answer


def _free_loopback_port() -> int:
    """A port for fe_hold, which HAProxy binds (and keeps) right after."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
