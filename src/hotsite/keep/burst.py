"""Cloud bursting: a second site brought up under load, given a share of the entry
point's traffic, and drained and torn down when the load is gone.

The metric is read from HAProxy's runtime API (``show stat``) of the entry point or
of the watched site's load balancer. A decision needs the threshold crossed for the
policy's duration, and none is taken within ``cooldown`` of the last one, so a load
that hovers around a threshold does not make the burst site flap. Every decision is a
``burst`` entry of ``hotsite history`` with the metric values that caused it and the
time from the threshold crossed to the burst site serving (or torn down).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from hotsite.blueprint import Deployment, DeploymentStore, site_lock
from hotsite.config import ProjectConfig
from hotsite.config_keep import METRICS, BurstPolicy
from hotsite.dr import entry_control
from hotsite.errors import ConfigError, HotsiteError
from hotsite.keep.heal import site_deployment
from hotsite.keep.records import KeepRecords
from hotsite.keep.threaded import ThreadedDuty
from hotsite.logs import get_logger
from hotsite.nodes import open_store

log = get_logger(__name__)
SERVING_TIMEOUT = 60.0
DRAIN_TIMEOUT = 30.0


def metric_value(rows: list[dict[str, str]], name: str) -> float:
    """A policy metric from ``show stat`` rows: request rate and sessions of the
    frontend, queue and response time of the backend (HAProxy's own averages)."""
    field = METRICS[name]
    wanted = ("fe_", "FRONTEND") if name in ("req_rate", "sessions") else ("be_", "BACKEND")
    for row in rows:
        if row.get("pxname", "").startswith(wanted[0]) and row.get("svname") == wanted[1]:
            return float(row.get(field) or 0)
    raise HotsiteError(f"no {wanted[1].lower()} in the HAProxy statistics to read {name} from")


@dataclass
class Burster:
    """The decision, from readings: ``up``, ``down`` or nothing."""

    policy: BurstPolicy
    active: bool = False
    active_since: float | None = None
    last_decision: float = float("-inf")
    crossed_at: float | None = None  # since when the reading is beyond the threshold

    def observe(self, value: float, now: float) -> Literal["up", "down"] | None:
        up, down = self.policy.up, self.policy.down
        assert up.above is not None and down.below is not None
        beyond = value < down.below if self.active else value > up.above
        if not beyond:
            self.crossed_at = None
        elif self.crossed_at is None:
            self.crossed_at = now
        if now - self.last_decision < self.policy.cooldown:
            return None
        limit = self.policy.max_seconds
        if (
            self.active
            and limit
            and self.active_since is not None
            and now - self.active_since >= limit
        ):
            return "down"
        held = up.seconds if not self.active else down.seconds
        if self.crossed_at is not None and now - self.crossed_at >= held:
            return "down" if self.active else "up"
        return None

    def decided(self, direction: str, now: float, active: bool) -> None:
        self.last_decision = now
        self.active = active
        self.active_since = now if active else None
        self.crossed_at = None


class BurstDuty(ThreadedDuty):
    """One bursting policy at work, in the agent of the site it watches."""

    join_timeout = 120.0  # a burst site coming up or going down finishes first

    def __init__(self, config: ProjectConfig, policy: BurstPolicy) -> None:
        super().__init__()
        self.config = config
        self.policy = policy
        self.name = f"burst {policy.site}->{policy.target}"
        self.interval = policy.interval
        self.watched: Deployment | None = None

    def prepare(self) -> None:
        store = open_store(self.config.home)
        self.records = KeepRecords(store, self.policy.site)
        target = DeploymentStore(store).load(self.policy.target)
        self.burster = Burster(self.policy, active=target.status == "up")
        if self.burster.active:
            self.burster.active_since = time.time()
        self.entry = entry_control(self.config)
        self.watched = site_deployment(self.config, self.policy.site)

    async def closing(self) -> None:
        if self.watched is not None:
            await self.watched._close()

    async def round(self) -> str | None:
        assert self.watched is not None
        return await self.step(self.watched)

    async def read(self, watched: Any) -> float:
        if self.policy.metric.source == "entry":
            rows = await asyncio.to_thread(self.entry.stat_rows)
        else:
            rows = await watched.lb_stats()
        return metric_value(rows, self.policy.metric.name)

    async def step(self, watched: Any) -> str | None:
        value = await self.read(watched)
        now = time.time()
        crossed = self.burster.crossed_at
        decision = self.burster.observe(value, now)
        self._status = {
            "metric": self.policy.metric.name,
            "value": value,
            "burst": "serving" if self.burster.active else "idle",
        }
        if decision is None:
            return None
        held = now - (crossed or now)
        summary = {
            "direction": decision,
            "metric": self.policy.metric.name,
            "source": self.policy.metric.source,
            "value": value,
            "threshold": self.policy.up.above if decision == "up" else self.policy.down.below,
            "held_seconds": round(held, 3),
        }
        entry = self.records.begin("burst", self.policy.target, summary)
        self.records.step(
            entry,
            f"decided {decision}",
            f"{self.policy.metric.name} = {value:g} for {held:.1f} s"
            f" ({'above' if decision == 'up' else 'below'} {summary['threshold']:g})",
        )
        log.warning("bursting", policy=self.name, **summary)
        if decision == "up":
            ok = await self._up(entry, summary, crossed or now)
        else:
            ok = await self._down(entry, summary, crossed or now)
        self.burster.decided(decision, time.time(), active=(decision == "up") == ok)
        return decision

    async def _up(self, entry: str, summary: dict[str, Any], crossed: float) -> bool:
        target = self.policy.target
        deployment = site_deployment(self.config, target)
        with site_lock(self.config.home, target):
            outcome = await deployment.up()
        if not outcome.ok:
            problem = outcome.failures[0].detail if outcome.failures else "steps skipped"
            self.records.step(entry, "up failed", problem)
            with site_lock(self.config.home, target):
                await deployment.down(force=True)  # nothing half made is left behind
            self.records.step(entry, "torn down", "after the failed up")
            self.records.finish(entry, "failed", {**summary, "error": problem})
            return False
        self.records.step(entry, "up", f"{target} up in {outcome.seconds:.1f} s")
        host, port = _address(outcome.outputs, self.policy.output, target)
        self.entry.set_address(target, host, port)
        self.entry.set_weight(target, self.policy.weight)
        self.entry.set_state(target, "ready")
        deadline = time.monotonic() + SERVING_TIMEOUT
        while not self._healthy(target):
            if time.monotonic() > deadline:
                self.records.finish(entry, "failed", {**summary, "error": "never healthy"})
                return True  # it is up: the down decision will take it away
            await asyncio.sleep(0.1)
        summary["reaction_seconds"] = round(time.time() - crossed, 3)
        self.records.step(entry, "serving", f"{host}:{port}, weight {self.policy.weight}")
        self.records.finish(entry, "serving", summary)
        return True

    def _healthy(self, site: str) -> bool:
        for server in self.entry.status():
            if server.site == site:
                return server.health.startswith("UP") and server.admin == "ready"
        return False

    async def _down(self, entry: str, summary: dict[str, Any], crossed: float) -> bool:
        target = self.policy.target
        self.entry.set_state(target, "drain")
        self.records.step(entry, "drain", f"{target}: no new requests")
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            busy = [s.sessions for s in self.entry.status() if s.site == target]
            if not any(busy):
                break
            await asyncio.sleep(0.1)
        self.entry.cut(target)
        self.records.step(entry, "out", f"{target} takes no traffic")
        deployment = site_deployment(self.config, target)
        with site_lock(self.config.home, target):
            outcome = await deployment.down()
        if not outcome.ok:
            problem = outcome.failures[0].detail if outcome.failures else "?"
            self.records.finish(entry, "failed", {**summary, "error": problem})
            return False
        summary["reaction_seconds"] = round(time.time() - crossed, 3)
        self.records.step(entry, "torn down", f"{target}: nodes released")
        self.records.finish(entry, "torn down", summary)
        return True


def _address(outputs: dict[str, Any], key: str, site: str) -> tuple[str, int]:
    url = str(outputs.get(key, ""))
    parts = urlsplit(url)
    if not parts.hostname:
        raise ConfigError(
            f"the burst site {site!r} has no output {key!r} with its URL (got {url!r})",
            "add it to the blueprint's outputs, or set bursting.output",
        )
    return parts.hostname, parts.port or 80
