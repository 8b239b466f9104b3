"""Keeping a site as described, step by step: probe, restart, replace a node, scale.

The healing ladder and the bursting policy (hotsite.keep) decide *when*; this module
is *how*, with the engine ``up`` uses, so a restart, a replacement or a scale leaves
the same records an ``up`` would (and a later ``up`` has nothing to redo):

- ``probe``: each started service's check, once, per node — healthy, failed, or the
  node did not answer at all (SSH), which healing treats differently;
- ``restart``: the service's ``stop`` (the recorded one) then ``start`` and its check;
- ``replace``: the node's slot gets a new node (``SITE-GROUP-IDXr1``), which ``up``
  creates, sets up and puts into the load balancer before the broken one leaves it;
- ``scale``: a group's count set for the site; the nodes that go are drained at every
  load balancer in front of them first, so no request is sent to a stopping node.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from hotsite.blueprint.desired import Desired, Placement, group_size, replacement_name
from hotsite.blueprint.outcome import Outcome
from hotsite.blueprint.plan import Plan, ServiceRun, steps_to_run
from hotsite.blueprint.runner import NodeSession, check_command
from hotsite.blueprint.state import DeploymentStore, SiteRecord
from hotsite.errors import ConfigError, HotsiteError
from hotsite.nodes import records as driver_records
from hotsite.nodes.base import Capability
from hotsite.traffic.haproxy import (
    Backend,
    backend_name,
    runtime_command,
    server_name,
    set_server_health,
    set_server_state,
)

if TYPE_CHECKING:
    from hotsite.blueprint.model import Blueprint
    from hotsite.blueprint.runner import Infrastructure
    from hotsite.nodes.base import Node

Health = Literal["ok", "failed", "unreachable"]
DRAIN_POLL = 0.2


class Upkeep:
    """Mixed into Deployment, which provides these."""

    site: str
    blueprint: Blueprint
    records: DeploymentStore
    infra: Infrastructure
    _sessions: dict[str, NodeSession]

    def desired(self, record: SiteRecord) -> Desired:
        raise NotImplementedError

    async def _session(self, name: str, node: Node) -> NodeSession:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    async def _run_services(self, plan: Plan, outcome: Outcome) -> None:
        raise NotImplementedError

    async def up(
        self,
        unhealthy: set[tuple[str, str]] | None = None,
        keep: frozenset[str] = frozenset(),
        untouched: frozenset[str] = frozenset(),
    ) -> Outcome:
        raise NotImplementedError

    # -- probing ----------------------------------------------------------------------

    async def probe(self, timeout: float = 5.0) -> dict[tuple[str, str], Health]:
        """Every started service's check once, on every node. Connections stay open
        between calls (a prober calls this every second); a node whose connection fails
        or whose probe does not come back within ``timeout`` is ``unreachable``."""
        record = self.records.load(self.site)
        desired = self.desired(record)
        ready = {n for n, rec in record.nodes.items() if rec.node is not None}
        probes = [
            p
            for p in desired.placements.values()
            if p.check and (p.node, p.service, "start") in record.steps and p.node in ready
        ]
        # A service that should run on a ready node but never got started (its `up`, or
        # a replacement's, failed on it) is as good as failed: the ladder takes it on.
        never: dict[tuple[str, str], Health] = {
            (p.node, p.service): "failed"
            for p in desired.placements.values()
            if "start" in p.steps
            and p.node in ready
            and (p.node, p.service, "start") not in record.steps
        }

        async def one(placement: Placement) -> Health:
            node = record.nodes[placement.node].node
            assert node is not None and placement.check is not None
            try:
                session = await asyncio.wait_for(self._session(placement.node, node), timeout)
                result = await session.run(
                    placement.service,
                    "check",
                    check_command(placement.check),
                    placement.env,
                    timeout=timeout,
                    logged_run=False,
                )
            except (HotsiteError, TimeoutError, OSError):
                await self._drop_session(placement.node)
                return "unreachable"
            return "ok" if result.ok else "failed"

        found = await asyncio.gather(*(one(p) for p in probes))
        return never | {(p.node, p.service): h for p, h in zip(probes, found, strict=True)}

    async def _drop_session(self, name: str) -> None:
        """Forget a node's connection, so that the next probe connects afresh (a link
        that went down leaves a connection that looks open)."""
        session = self._sessions.pop(name, None)
        if session is not None:
            try:
                await asyncio.wait_for(session.transport.close(), 2)
            except (HotsiteError, TimeoutError, OSError):
                pass

    # -- restart and replace ------------------------------------------------------------

    async def restart(self, node: str, service: str) -> Outcome:
        """The service's recorded ``stop``, then its ``start`` and check, on one node."""
        record = self.records.load(self.site)
        desired = self.desired(record)
        placement = desired.placements.get((node, service))
        if placement is None or "start" not in placement.steps:
            raise ConfigError(f"{service} on {node} has no start step to restart it with")
        # What is not done yet (a failed `up` left it half set up) and then the start;
        # a service that is as described is stopped and started.
        steps, reasons = steps_to_run(placement, record)
        if not steps:
            steps = (["stop"] if "stop" in placement.steps else []) + ["start"]
            reasons = {"start": "healing"}
        plan = Plan(site=self.site, runs=[ServiceRun(placement, steps, reasons)])
        outcome = Outcome(plan=plan)
        started = time.monotonic()
        await self._run_services(plan, outcome)
        if outcome.ok:
            # Its check passed on the node: back into rotation now, not after the load
            # balancer's own checks come round (rise 2 × 500 ms).
            await self._balancers_run(
                desired,
                record,
                service,
                lambda lb: set_server_health(lb, Backend(node, "", 0), "up"),
            )
        outcome.seconds = time.monotonic() - started
        return outcome

    async def _balancers_run(
        self, desired: Desired, record: SiteRecord, service: str, command: Any
    ) -> None:
        """A runtime API command at every started load balancer whose backends are
        ``service``; one that does not answer is left to its own health checks."""
        for placement in desired.placements.values():
            lb = placement.lb
            lb_node = record.nodes.get(placement.node)
            if lb is None or lb.name != service or lb_node is None or lb_node.node is None:
                continue
            if (placement.node, placement.service, "start") not in record.steps:
                continue
            try:
                session = await self._session(placement.node, lb_node.node)
                await session.run(placement.service, "health", command(lb), timeout=10)
            except HotsiteError:
                continue

    def node_group(self, node: str) -> tuple[str, int]:
        record = self.records.load(self.site)
        if node not in record.nodes:
            raise ConfigError(f"site {self.site!r} has no node {node!r}")
        return record.nodes[node].group, record.nodes[node].index

    async def replace(self, node: str, reachable: bool) -> tuple[str, Outcome]:
        """A new node in ``node``'s slot, set up and in the load balancer; then the old
        one's services are stopped (only if it still answers). Returns the new node's
        name and the ``up`` outcome. Releasing the old machine is the caller's
        (``release_broken``), as is putting the slot back if this raises (no new node)."""
        group, index = self.node_group(node)
        new = replacement_name(node)
        self.records.set_slot(self.site, group, index, new)
        await self._close()  # connections of this loop only; up opens its own
        # Nobody can stop what runs on a host that does not answer: leave it be.
        untouched = frozenset() if reachable else frozenset({node})
        outcome = await self.up(keep=frozenset({node}), untouched=untouched)
        return new, outcome

    async def release_broken(self, node: str, reachable: bool) -> str | None:
        """The replaced node leaves the site. A cloud node is destroyed; a pool's host is
        given back only if it answers (and its scrub passes): a dead host given back would
        be the next lease's, so it stays leased (``releasing``) until someone has looked
        at it and run ``hotsite nodes destroy``. Returns why it was kept, or None."""
        record = self.records.load(self.site)
        rec = record.nodes.get(node)
        if rec is None:
            return None
        problem = None
        driver = self.infra.driver(rec.driver)
        if rec.node is not None and not reachable and Capability.CREATE not in driver.capabilities:
            driver_records.save(
                self.records.store, replace(rec.node, state=driver_records.RELEASING)
            )
            problem = (
                f"the host {rec.node.driver_id} did not answer: it stays leased (releasing),"
                f" out of the pool; check it, then 'hotsite nodes destroy {node}'"
            )
        else:
            try:
                if rec.node is not None:
                    await driver.destroy([rec.node])
            except HotsiteError as exc:
                problem = str(exc)
        for host, service in list(record.teardown):
            if host == node:
                self.records.service_gone(self.site, node, service)
        self.records.node_gone(self.site, node)
        return problem

    # -- scaling ------------------------------------------------------------------------

    def group_count(self, group: str) -> int:
        if group not in self.blueprint.nodes:
            raise ConfigError(
                f"no node group {group!r} in the blueprint of site {self.site!r}",
                f"groups: {', '.join(sorted(self.blueprint.nodes))}",
            )
        record = self.records.load(self.site)
        if group in record.counts:
            return record.counts[group]
        return group_size(self.blueprint, group, self.desired(record).values)

    def checked_count(self, group: str, count: int) -> int:
        """``count`` if the group's min/max allow it; else a ConfigError saying the bounds."""
        spec = self.blueprint.nodes[group]
        if not spec.min <= count <= spec.max:
            raise ConfigError(
                f"group {group!r} of site {self.site!r} takes {spec.min} to {spec.max} nodes,"
                f" not {count}",
                f"change nodes.{group}.min/max in the blueprint, or ask for another count",
            )
        return count

    async def scale(self, group: str, count: int, drain_timeout: float = 30.0) -> Outcome:
        """Set the group's count and bring the site to it with ``up``. Nodes that go are
        drained first (HAProxy ``drain``: no new requests, the open ones finish)."""
        self.group_count(group)  # an unknown group is refused before anything changes
        self.checked_count(group, count)
        record = self.records.load(self.site)
        leaving = [
            name for name, rec in record.nodes.items() if rec.group == group and rec.index >= count
        ]
        try:
            if leaving:
                await self.drain(leaving, drain_timeout)
        finally:
            await self._close()
        self.records.set_count(self.site, group, count)
        return await self.up()

    async def drain(self, nodes: list[str], timeout: float) -> None:
        """Every load balancer whose backends run on ``nodes``: set those servers to
        ``drain``, then wait until none has a session left (or ``timeout``)."""
        record = self.records.load(self.site)
        desired = self.desired(record)
        groups = {record.nodes[n].group for n in nodes}
        backend_groups = {name: s.group for name, s in self.blueprint.services.items()}
        balancers = [
            p
            for p in desired.placements.values()
            if p.lb is not None
            and backend_groups.get(p.lb.name) in groups
            and (p.node, p.service, "start") in record.steps
        ]
        for placement in balancers:
            lb = placement.lb
            assert lb is not None
            lb_node = record.nodes[placement.node].node
            assert lb_node is not None
            session = await self._session(placement.node, lb_node)
            servers = [Backend(n, "", 0) for n in nodes]
            for backend in servers:
                await session.run(
                    placement.service, "drain", set_server_state(lb, backend, "drain")
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                result = await session.run(
                    placement.service, "drain", runtime_command(lb, "show stat"), timeout=10
                )
                busy = sessions_of(result.stdout, backend_name(lb))
                if not any(busy.get(server_name(b), 0) for b in servers):
                    break
                await asyncio.sleep(DRAIN_POLL)

    async def lb_stats(self) -> list[dict[str, str]]:
        """``show stat`` of the site's (first) load balancer, as rows: its load."""
        record = self.records.load(self.site)
        desired = self.desired(record)
        for placement in desired.placements.values():
            node = record.nodes.get(placement.node)
            if placement.lb is None or node is None or node.node is None:
                continue
            session = await self._session(placement.node, node.node)
            result = await session.run(
                placement.service,
                "stats",
                runtime_command(placement.lb, "show stat"),
                timeout=10,
                logged_run=False,
            )
            return list(csv.DictReader(io.StringIO(result.stdout.lstrip("# "))))
        raise ConfigError(f"site {self.site!r} has no load balancer to read its load from")


def sessions_of(show_stat: str, backend: str) -> dict[str, int]:
    """Current sessions per server of one backend, from HAProxy's ``show stat`` CSV."""
    rows = csv.DictReader(io.StringIO(show_stat.lstrip("# ")))
    return {
        row["svname"]: int(row.get("scur") or 0)
        for row in rows
        if row.get("pxname") == backend and row.get("svname") not in ("FRONTEND", "BACKEND")
    }
