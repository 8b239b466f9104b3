"""HAProxy, the built-in load balancer: its configuration, its lifecycle commands and
its runtime API.

The blueprint engine renders the configuration from the nodes of the backend service,
so adding or removing web nodes changes the file, which re-runs the load balancer's
configure and *reload* steps (``-sf``: the old process finishes its connections, the
new one takes the port; no dropped requests). Moving traffic without any reload goes
through the runtime API (``set server be/name state maint``): it takes effect in under
a millisecond, which is what failover and drills use.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from dataclasses import dataclass

from hotsite.shellsafe import removable_dir
from hotsite.traffic.sockets import runtime_socket

DEFAULT_DIR = "/opt/hotsite-haproxy"  # on the load balancer's node
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Backend:
    name: str
    address: str
    port: int


@dataclass(frozen=True)
class HAProxySite:
    """Everything the configuration depends on."""

    directory: str
    frontend_port: int
    backends: tuple[Backend, ...]
    health_path: str | None = "/health"
    admin_port: int | None = None
    name: str = "site"

    def __post_init__(self) -> None:
        # `uninstall` is `rm -rf DIR`: never an empty, relative or root directory.
        try:
            removable_dir(self.directory)
        except ValueError as exc:
            raise ValueError(f"the HAProxy directory is refused: {exc}") from None

    @property
    def config_path(self) -> str:
        return f"{self.directory}/haproxy.cfg"

    @property
    def pid_path(self) -> str:
        return f"{self.directory}/haproxy.pid"

    @property
    def socket_path(self) -> str:
        return runtime_socket(str(self.directory), "lb")


def server_name(backend: Backend) -> str:
    return _SAFE.sub("_", backend.name)


def backend_name(site: HAProxySite) -> str:
    """The HAProxy backend holding the site's servers (``be_<service>``)."""
    return "be_" + _SAFE.sub("_", site.name)


def render_config(site: HAProxySite) -> str:
    """The configuration file. Fast health checks (500 ms, 2 failures) so a dead node
    leaves rotation in about a second."""
    backend = _SAFE.sub("_", site.name)
    lines = [
        "# written by hotsite; changes are overwritten by the next `hotsite up`",
        "global",
        f"    pidfile {site.pid_path}",
        f"    stats socket {site.socket_path} mode 600 level admin expose-fd listeners",
        "    maxconn 4096",
        "",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 30s",
        "    timeout server 30s",
        # A check waits this long for an answer (default: inter, 500 ms): a loaded web node
        # answering /health in 600 ms is not down, and a dead one refuses at once anyway.
        "    timeout check 2s",
        "    retries 2",
        "    option redispatch",
        "",
        "frontend fe_site",
        f"    bind *:{site.frontend_port}",
        f"    default_backend be_{backend}",
        "",
        f"backend be_{backend}",
        "    balance roundrobin",
        # A server that dies mid-request (killed, its node lost, stopped by a scale-in)
        # closes the connection unanswered: a GET or HEAD is sent to another server
        # instead of failing (HAProxy's layer-7 retries), never a request that may write.
        "    retry-on conn-failure empty-response response-timeout",
        "    http-request disable-l7-retry unless METH_GET",
    ]
    if site.health_path:
        lines += [
            f"    option httpchk GET {site.health_path}",
            "    http-check expect status 200",
        ]
    lines.append("    default-server inter 500ms fall 2 rise 2")
    for server in site.backends:
        lines.append(f"    server {server_name(server)} {server.address}:{server.port} check")
    if site.admin_port:
        lines += [
            "",
            "listen stats",
            f"    bind *:{site.admin_port}",
            "    stats enable",
            "    stats uri /",
        ]
    return "\n".join(lines) + "\n"


def lifecycle(site: HAProxySite) -> dict[str, str]:
    """Shell commands for each lifecycle step; every one is safe to run twice."""
    cfg, pid, directory = (
        shlex.quote(p) for p in (site.config_path, site.pid_path, site.directory)
    )
    # Not `kill -0`: a stopped HAProxy stays a zombie until its parent reaps it.
    alive = (
        "alive() { s=$(awk '{print $3}' \"/proc/$1/stat\" 2>/dev/null);"
        ' [ -n "$s" ] && [ "$s" != Z ]; }; '
    )
    running = f"[ -f {pid} ] && alive $(cat {pid})"
    log = shlex.quote(f"{site.directory}/haproxy.log")
    quiet = f"</dev/null >{log} 2>&1 || {{ cat {log}; exit 1; }}"
    return {
        "install": (
            "command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || "
            "(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy)"
        ),
        "configure": f"PATH=$PATH:/usr/sbin; haproxy -c -q -f {cfg}",
        "start": (
            f"PATH=$PATH:/usr/sbin; {alive}if {running}; then haproxy -D -f {cfg} -p {pid}"
            f" -sf $(cat {pid}) {quiet}; else haproxy -D -f {cfg} -p {pid} {quiet}; fi"
        ),
        "reload": (
            f"PATH=$PATH:/usr/sbin; {alive}haproxy -D -f {cfg} -p {pid}"
            f" $({running} && echo -sf $(cat {pid})) {quiet}"
        ),
        "stop": (
            f"{alive}if {running}; then kill $(cat {pid}); for i in $(seq 50); do"
            f" {running} || break; sleep 0.1; done; fi; rm -f {pid}"
        ),
        "uninstall": f"rm -rf {directory}",
    }


def runtime_command(site: HAProxySite, command: str) -> str:
    """A shell command that sends one runtime API command on the load balancer's node
    (python3 rather than socat: python3 is on every node we install software on)."""
    script = (
        "import socket,sys;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);"
        "s.sendall(sys.argv[2].encode()+b'\\n');"
        "print(b''.join(iter(lambda:s.recv(65536),b'')).decode(),end='')"
    )
    return (
        f"python3 -c {shlex.quote(script)} {shlex.quote(site.socket_path)} {shlex.quote(command)}"
    )


def set_server_state(site: HAProxySite, backend: Backend, state: str) -> str:
    """``ready``, ``drain`` or ``maint`` for one backend server, without a reload."""
    if state not in ("ready", "drain", "maint"):
        raise ValueError(f"unknown server state {state!r}")
    return runtime_command(
        site, f"set server {backend_name(site)}/{server_name(backend)} state {state}"
    )


def set_server_health(site: HAProxySite, backend: Backend, health: str) -> str:
    """``up`` or ``down``: tell HAProxy a server's health now, not after its next checks
    (healing does, the moment a restarted service passed its own check)."""
    if health not in ("up", "down"):
        raise ValueError(f"unknown server health {health!r}")
    return runtime_command(
        site, f"set server {backend_name(site)}/{server_name(backend)} health {health}"
    )


async def local_runtime(socket_path: str, command: str, timeout: float = 5.0) -> str:
    """Send a runtime API command to an HAProxy on this machine."""
    reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(socket_path), timeout)
    try:
        writer.write(command.encode() + b"\n")
        await writer.drain()
        return (await asyncio.wait_for(reader.read(), timeout)).decode()
    finally:
        writer.close()
