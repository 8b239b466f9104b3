"""Healing as a duty of the site agent: probe, decide (ladder.py), act, record.

The probes and the actions run in the duty's own thread (threaded.py). Each action holds the site's lock (the one
``up``/``down``/``scale`` take), so healing never runs alongside them; while another
process holds it, healing skips its rounds and forgets its counts (the site is being
changed on purpose).
"""

from __future__ import annotations

import time
from typing import Any

from hotsite.blueprint import Deployment, NodesInfrastructure, open_deployment, site_lock
from hotsite.config import ProjectConfig
from hotsite.errors import HotsiteError, LockedError
from hotsite.keep.ladder import Action, Ladder
from hotsite.keep.records import KeepRecords
from hotsite.keep.threaded import ThreadedDuty
from hotsite.logs import get_logger
from hotsite.nodes import Providers, open_store

log = get_logger(__name__)


def site_deployment(config: ProjectConfig, site: str) -> Deployment:
    """The site's deployment with real nodes, as the CLI's ``up`` builds it."""
    providers = Providers(config.nodes, open_store(config.home), project=config.project_name)
    return open_deployment(
        config,
        site,
        providers.store,
        NodesInfrastructure(providers),
        concurrency=config.nodes.ssh.concurrency,
    )


class HealDuty(ThreadedDuty):
    """Keep the site's services healthy: restart, replace, or give up and say so."""

    def __init__(self, config: ProjectConfig, site: str) -> None:
        super().__init__()
        self.config = config
        self.site = site
        self.name = "heal"
        self.settings = config.healing
        self.interval = config.healing.interval
        self.deployment: Deployment | None = None

    def prepare(self) -> None:
        self.deployment = site_deployment(self.config, self.site)  # secrets read here
        self.records = KeepRecords(self.deployment.records.store, self.site)
        stateful = frozenset(g for g, s in self.deployment.blueprint.nodes.items() if s.stateful)
        self.ladder = Ladder(self.settings, self.records, stateful)

    async def closing(self) -> None:
        if self.deployment is not None:
            await self.deployment._close()

    def _site_busy(self) -> bool:
        try:
            site_lock(self.config.home, self.site).acquire().release()
        except LockedError:
            return True
        return False

    async def round(self) -> list[Action]:
        """One probe of every service, and the actions it calls for (done here)."""
        assert self.deployment is not None
        if self._site_busy():
            self.ladder.reset()
            self._status = {**self._status, "state": "paused: the site is being changed"}
            return []
        probes = await self.deployment.probe(self.settings.probe_timeout)
        record = self.deployment.records.load(self.site)
        groups = {name: rec.group for name, rec in record.nodes.items()}
        actions = self.ladder.observe(probes, groups, time.time())
        failed_now = self.records.failed()
        self.hurry = any(h != "ok" for (_, s), h in probes.items() if s not in failed_now)
        for action in actions:
            if self._stop.is_set():
                break
            await self.act(action)
        failed = self.records.failed()
        self._status = {
            "state": "healing" if not failed else "failed: " + ", ".join(sorted(failed)),
            "probed": len(probes),
            "unhealthy": sorted(f"{s} on {n}" for (n, s), h in probes.items() if h != "ok"),
            "failed": failed,
            "actions": self._status.get("actions", 0) + len(actions),
        }
        return actions

    async def act(self, action: Action) -> None:
        assert self.deployment is not None
        summary: dict[str, Any] = {
            "action": action.kind,
            "service": action.services[0],
            "services": list(action.services),
            "failed": action.reason,
            "detected": action.since,
        }
        try:
            lock = site_lock(self.config.home, self.site).acquire()
        except LockedError:
            self.ladder.reset()
            return
        try:
            if action.kind == "restart":
                await self._restart(action, summary)
            elif action.kind == "replace":
                await self._replace(action, summary)
            elif action.kind == "report":
                self._report(action, summary)
            else:
                self._give_up(action, summary)
        finally:
            lock.release()

    async def _restart(self, action: Action, summary: dict[str, Any]) -> None:
        assert self.deployment is not None
        service = action.services[0]
        entry = self.records.begin("heal", action.node, summary)
        self.records.step(entry, "failed", action.reason)
        log.warning("healing: restart", site=self.site, node=action.node, service=service)
        self.records.step(entry, "restart", f"{service} on {action.node}: stop, start, check")
        outcome = await self.deployment.restart(action.node, service)
        self._finish(entry, summary, outcome.ok, _failure(outcome), action)

    async def _replace(self, action: Action, summary: dict[str, Any]) -> None:
        assert self.deployment is not None
        entry = self.records.begin("heal", action.node, summary)
        self.records.step(entry, "failed", action.reason)
        log.warning("healing: replace node", site=self.site, node=action.node)
        group, index = self.deployment.node_group(action.node)
        self.records.step(entry, "replace", f"a new node for {action.node} (group {group})")
        try:
            new, outcome = await self.deployment.replace(action.node, action.reachable)
        except HotsiteError as exc:
            # No new node (the pool is empty, the cloud refused): the slot stays the old
            # node's, so the next try (within the budget) starts from the same place.
            self.deployment.records.set_slot(self.site, group, index, action.node)
            await self.deployment._close()
            self._finish(entry, summary, False, f"no replacement: {exc}", action)
            return
        summary["replacement"] = new
        self.records.step(entry, "serving" if outcome.ok else "not serving", new)
        problem = await self.deployment.release_broken(action.node, action.reachable)
        await self.deployment._close()
        released = f"{action.node} released" if problem is None else f"{action.node}: {problem}"
        summary["released"] = problem is None
        self.records.step(entry, "released" if problem is None else "kept", released)
        self._finish(entry, summary, outcome.ok, _failure(outcome), action)

    def _finish(
        self, entry: str, summary: dict[str, Any], ok: bool, problem: str, action: Action
    ) -> None:
        if ok:
            summary["healthy_seconds"] = round(time.time() - action.since, 3)
            self.records.step(
                entry, "healthy", f"{summary['healthy_seconds']:.3f} s after the failure"
            )
            self.records.finish(entry, "healthy", summary)
            log.info(
                "healed", site=self.site, node=action.node, action=action.kind, **_short(summary)
            )
        else:
            summary["error"] = problem
            self.records.step(entry, "not healthy", problem)
            self.records.finish(entry, "failed", summary)
            log.error("healing did not help", site=self.site, node=action.node, error=problem)

    def _give_up(self, action: Action, summary: dict[str, Any]) -> None:
        entry = self.records.begin("heal", action.node, summary)
        self.records.step(entry, "failed", action.reason)
        for service in action.services:
            self.records.mark_failed(service, action.reason)
        self.records.step(entry, "gave up", "no more healing: marked failed")
        self.records.finish(entry, "gave up", summary)
        log.error(
            "HEALING GAVE UP: service marked failed",
            site=self.site,
            services=",".join(action.services),
            reason=action.reason,
            fix=f"find the cause ('hotsite logs {self.site}'), then 'hotsite up {self.site}'",
        )

    def _report(self, action: Action, summary: dict[str, Any]) -> None:
        failover = self.config.dr is not None
        entry = self.records.begin("heal", action.node, summary)
        self.records.step(entry, "failed", action.reason)
        handed = (
            "a failover matter: the dr controller's detector decides (hotsite failover)"
            if failover
            else "not replaced (stateful); no dr: section to fail over with"
        )
        self.records.step(entry, "reported", handed)
        self.records.finish(entry, "reported", summary)
        log.error("STATEFUL NODE LOST: not healed", site=self.site, node=action.node, what=handed)


def _failure(outcome: Any) -> str:
    if outcome.failures:
        first = outcome.failures[0]
        return f"{first.service}.{first.step} failed on {first.node}: {first.detail}"
    if outcome.skipped:
        node, service, why = outcome.skipped[0]
        return f"{service} on {node} skipped: {why}"
    return ""


def _short(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k in ("service", "healthy_seconds", "replacement")}
