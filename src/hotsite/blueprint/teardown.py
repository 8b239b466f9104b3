"""Teardown: stop and uninstall services (dependents first), release nodes.

Works from the commands recorded when each service was set up, not from the current
blueprint, so a service the blueprint no longer has is still removed properly.
"""

from __future__ import annotations

import asyncio
import time

from hotsite.blueprint.desired import environment_secrets_marker
from hotsite.blueprint.graph import levels
from hotsite.blueprint.outcome import Event, Observer, Outcome
from hotsite.blueprint.plan import Plan, Removal
from hotsite.blueprint.render import Values
from hotsite.blueprint.runner import (
    Infrastructure,
    NodeSession,
    StepFailed,
    output_tail,
    step_lock,
)
from hotsite.blueprint.state import DeploymentStore, NodeRecord, SiteRecord
from hotsite.errors import HotsiteError
from hotsite.nodes.base import Node


class Teardown:
    """Mixed into Deployment, which provides these."""

    site: str
    records: DeploymentStore
    values: Values
    infra: Infrastructure
    observer: Observer

    async def _session(self, name: str, node: Node) -> NodeSession:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    async def _remove(self, removals: list[Removal], record: SiteRecord, outcome: Outcome) -> None:
        """Stop and uninstall, dependents first."""
        deps: dict[str, list[str]] = {}
        for removal in removals:
            deps.setdefault(removal.service, []).extend(removal.depends_on)
        for level in reversed(levels(deps)):
            batch = [r for r in removals if r.service in level]
            await asyncio.gather(*(self._remove_one(r, record, outcome) for r in batch))

    async def _remove_one(self, removal: Removal, record: SiteRecord, outcome: Outcome) -> None:
        node_record = record.nodes.get(removal.node)
        if node_record is None or node_record.node is None:
            self.records.service_gone(self.site, removal.node, removal.service)
            return
        env = environment_secrets_marker(
            dict(removal.commands.get("env") or {}), self.values.secrets
        )
        try:
            session = await self._session(removal.node, node_record.node)
            for step in ("stop", "uninstall"):
                command = removal.commands.get(step)
                if not command:
                    continue
                self.observer(Event(removal.node, removal.service, step, "running"))
                result = await session.run(
                    removal.service, step, str(command), env, 600, exclusive=True
                )
                outcome.steps_run += 1
                if not result.ok:
                    raise StepFailed(
                        removal.node,
                        removal.service,
                        step,
                        f"exit status {result.exit_status}",
                        output_tail(result, self.values.redact),
                    )
            # The step lock (see NodeSession.run): nothing of the service stays behind.
            await session.run(
                removal.service, "uninstall", f"rm -f {step_lock(removal.node, removal.service)}"
            )
            self.records.service_gone(self.site, removal.node, removal.service)
            self.observer(Event(removal.node, removal.service, "uninstall", "done"))
        except StepFailed as failure:
            outcome.failures.append(failure)
            self.observer(Event(removal.node, removal.service, failure.step, "failed"))
        except HotsiteError as exc:
            outcome.failures.append(
                StepFailed(removal.node, removal.service, "connect", str(exc), "")
            )

    async def _release(self, nodes: list[NodeRecord]) -> None:
        by_driver: dict[str, list[NodeRecord]] = {}
        for rec in nodes:
            by_driver.setdefault(rec.driver, []).append(rec)

        async def one(driver_name: str, recs: list[NodeRecord]) -> None:
            driver = self.infra.driver(driver_name)
            known = [r.node for r in recs if r.node is not None]
            if any(r.node is None for r in recs):  # interrupted creation: ask the driver
                names = {r.name for r in recs if r.node is None}
                known += [n for n in await driver.list_nodes() if n.name in names]
            for rec in recs:
                self.observer(Event(rec.name, "node", "release", "running"))
            if known:
                await driver.destroy(known)
            for rec in recs:
                self.records.node_gone(self.site, rec.name)
                self.observer(Event(rec.name, "node", "release", "done"))

        await asyncio.gather(*(one(d, recs) for d, recs in by_driver.items()))

    async def down(self, keep_nodes: bool = False, force: bool = False) -> Outcome:
        """``force``: release the nodes even when teardown failed (a dead site's hosts)."""
        started = time.monotonic()
        record = self.records.load(self.site)
        outcome = Outcome(plan=Plan(site=self.site))
        removals = [
            Removal(node, service, info, list(info.get("depends_on", [])))
            for (node, service), info in record.teardown.items()
        ]
        outcome.plan.removals = removals
        try:
            await self._remove(removals, record, outcome)
            await self._close()
            if not keep_nodes and (force or not outcome.failures):
                outcome.plan.release = list(record.nodes)
                await self._release(list(record.nodes.values()))
                self.records.forget_scaling(self.site)
            if force or not outcome.failures:
                self.records.set_outputs(self.site, {})
        finally:
            self.records.set_site(self.site, "down" if not outcome.failures else "failed")
            await self._close()
        outcome.seconds = time.monotonic() - started
        return outcome
