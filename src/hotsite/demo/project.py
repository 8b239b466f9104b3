"""The demo's project file: the two sites, links both ways, the controller, the entry
point and automatic failover — what a user writes for a real deployment, with the
detection timings shortened for a one-minute demo (still within docs/dr.md's rules:
the lease is at least 4 × the probe interval)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml

from hotsite.demo.sites import LocalSite

CLOCK_MARGIN = 0.25


@dataclass(frozen=True)
class Timings:
    lease: float
    interval: float
    dead_after: float


# A quiet machine: detection within a second, the lease renewed every 0.25 s.
QUIET = Timings(lease=1.5, interval=0.25, dead_after=1.0)
# A machine far busier than its cores (other work running): the controller may take a
# second to answer, and a lease of 1.5 s then runs out while it is being renewed — the
# primary fences itself, again and again. A longer lease costs RTO, not safety.
LOADED = Timings(lease=3.0, interval=0.5, dead_after=1.0)


def timings() -> tuple[Timings, float]:
    """The timings for this machine now, and its load per core (1-minute average)."""
    per_core = os.getloadavg()[0] / max(1, os.cpu_count() or 1)
    return (LOADED if per_core > 2.0 else QUIET), per_core


HEARTBEAT = 0.25


@dataclass(frozen=True)
class DemoPorts:
    controller: int
    entry: int


def write_project(
    directory: Path, primary: LocalSite, dr: LocalSite, ports: DemoPorts, times: Timings
) -> tuple[Path, str]:
    """``hotsite.yaml`` and the controller's token file (0600); returns the project file
    and the token (for the demo's own calls to the controller)."""
    token = secrets.token_hex(24)
    token_file = directory / "control.token"
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    config = {
        "sites": {site.name: {"database": site.database_url} for site in (primary, dr)},
        "replication": [
            {"from": a.name, "to": b.name, "heartbeat_interval": HEARTBEAT}
            for a, b in ((primary, dr), (dr, primary))
        ],
        "dr": {
            "primary": primary.name,
            "controller": {
                "listen": f"127.0.0.1:{ports.controller}",
                "token_file": str(token_file),
            },
            "lease": times.lease,
            "clock_margin": CLOCK_MARGIN,
            "detection": {"interval": times.interval, "dead_after": times.dead_after},
            "auto_failover": True,
            "entry": {
                "listen": f"127.0.0.1:{ports.entry}",
                "servers": {site.name: site.lb_address for site in (primary, dr)},
            },
        },
    }
    path = directory / "hotsite.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, token
