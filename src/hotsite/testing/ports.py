"""Free TCP ports on loopback for test servers, safe across parallel test processes.

A port the kernel hands out for ``bind(("127.0.0.1", 0))`` comes from its ephemeral range,
the same range every outgoing connection takes its local port from: between our check and
the server's own bind, some client's connection (or a second test process asking the same
way) can take it. Ports here are drawn at random from below that range, where the kernel
never puts a connection of its own, never twice in one process, and each is checked free
by binding it. What remains (two processes drawing the same port in the same instant) is
for the caller to detect and retry: ``PrivateMariaDB.start`` does.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_SPAN = 12_000  # how many ports below the ephemeral range to draw from
_given: set[int] = set()
_rng = random.SystemRandom()


def _range() -> range | None:
    try:
        low = int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    start = max(1024, low - _SPAN)
    return range(start, low) if low - start >= 1000 else None


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on, not handed out before by this process."""
    ports = _range()
    if ports is not None:
        for _ in range(500):
            port = _rng.choice(ports)
            if port not in _given and _bindable(port):
                _given.add(port)
                return port
    with socket.socket() as sock:  # no usable range: the kernel's choice
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    _given.add(port)
    return port
