"""``up`` and ``down``: execute a plan on real nodes, in parallel, resumably.

- Nodes are recorded before they are asked for and found again by name after a crash,
  so a re-run never makes duplicates.
- A service is configured and started as soon as the services it depends on are done
  on all their nodes (uploads and installs do not wait); its nodes run concurrently
  (bounded). A failed step stops that service's dependents; everything else carries
  on, and the result lists what failed and why.
- A step is recorded done (with its fingerprint) right after it succeeds — for
  ``start``, after the health check passes — so an interrupted ``up`` resumes at the
  step it was in.
- ``down`` walks the recorded teardown commands in reverse dependency order, so it
  works even when the blueprint has changed since ``up``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from hotsite.blueprint.agent_service import AgentSetup, python_probe, python_problem
from hotsite.blueprint.desired import (
    Desired,
    DesiredNode,
    Placement,
    RenderedStep,
    build,
    desired_nodes,
    environment_secrets_marker,
)
from hotsite.blueprint.model import Blueprint
from hotsite.blueprint.outcome import Event, Observer, Outcome
from hotsite.blueprint.plan import Plan, ServiceRun, make_plan, steps_to_run
from hotsite.blueprint.render import Values
from hotsite.blueprint.runner import Infrastructure, NodeSession, StepFailed, check_command
from hotsite.blueprint.state import DeploymentStore, SiteRecord
from hotsite.blueprint.teardown import Teardown
from hotsite.blueprint.upkeep import Upkeep
from hotsite.errors import ConfigError, HotsiteError
from hotsite.nodes.base import Capability, Node
from hotsite.state import StateStore

REACHABLE_TIMEOUT = 300.0
# Steps that need nothing from other services (see _run_services).
EARLY_STEPS = ("upload", "install")


class Deployment(Teardown, Upkeep):
    """One site built from one blueprint."""

    def __init__(
        self,
        *,
        site: str,
        blueprint: Blueprint,
        blueprint_path: Path,
        inputs: dict[str, Any],
        secrets: dict[str, str],
        default_driver: str,
        store: StateStore,
        infra: Infrastructure,
        concurrency: int = 32,
        observer: Observer | None = None,
        agent: AgentSetup | None = None,
    ) -> None:
        self.site = site
        self.blueprint = blueprint
        self.blueprint_path = blueprint_path
        self.values = Values(site=site, inputs=inputs, secrets=secrets, agent=agent)
        self.default_driver = default_driver
        self.records = DeploymentStore(store)
        self.infra = infra
        self.concurrency = concurrency
        self.observer = observer or (lambda event: None)
        self._sessions: dict[str, NodeSession] = {}
        self._connecting: dict[str, asyncio.Lock] = {}

    # -- planning -------------------------------------------------------------------

    def desired(self, record: SiteRecord) -> Desired:
        nodes = desired_nodes(
            self.blueprint,
            self.site,
            self.default_driver,
            self.values,
            record.counts,
            record.slots,
        )
        addresses = {
            name: rec.node.address for name, rec in record.nodes.items() if rec.node is not None
        }
        return build(self.blueprint, self.site, self.values, nodes, addresses)

    def plan(
        self, unhealthy: set[tuple[str, str]] | None = None
    ) -> tuple[Plan, Desired, SiteRecord]:
        """``unhealthy`` (node, service) pairs failed their check: start them again."""
        record = self.records.load(self.site)
        desired = self.desired(record)
        for node, service in unhealthy or ():
            record.steps.pop((node, service, "start"), None)
        plan = make_plan(desired, record)
        for run in plan.runs:
            if run.key in (unhealthy or ()) and run.steps[-1] == "start":
                run.reasons["start"] = "check failed"
        return plan, desired, record

    async def refresh(self) -> set[tuple[str, str]]:
        """Probe every started service's check once: what is recorded running but is not
        (a process died, a node rebooted) — so `up` keeps the site as described."""
        record = self.records.load(self.site)
        desired = self.desired(record)
        # Only services that are as described: one with changed steps is restarted by
        # the plan anyway, and its new check (another port...) would wrongly fail now.
        probes = [
            p
            for p in desired.placements.values()
            if p.check
            and (p.node, p.service, "start") in record.steps
            and record.nodes[p.node].node is not None
            and not steps_to_run(p, record)[0]
        ]
        limit = asyncio.Semaphore(self.concurrency)

        async def probe(placement: Placement) -> tuple[str, str] | None:
            node = record.nodes[placement.node].node
            assert node is not None and placement.check is not None
            async with limit:
                try:
                    session = await self._session(placement.node, node)
                    result = await session.run(
                        placement.service,
                        "check",
                        check_command(placement.check),
                        placement.env,
                        timeout=placement.check.timeout,
                    )
                    healthy = result.ok
                except HotsiteError:
                    healthy = False
            if not healthy:
                self.observer(Event(placement.node, placement.service, "check", "failed"))
                return (placement.node, placement.service)
            return None

        try:
            found = await asyncio.gather(*(probe(p) for p in probes))
        finally:
            await self._close()
        return {key for key in found if key is not None}

    # -- up ---------------------------------------------------------------------------

    async def up(
        self,
        unhealthy: set[tuple[str, str]] | None = None,
        keep: frozenset[str] = frozenset(),
        untouched: frozenset[str] = frozenset(),
    ) -> Outcome:
        """``keep``: nodes not to release in this run (healing releases a broken node
        itself, after its replacement serves, and copes with a release that fails);
        ``untouched``: nodes not even to stop services on (they do not answer)."""
        started = time.monotonic()
        first_plan, desired, record = self.plan(unhealthy)
        outcome = Outcome(plan=first_plan)
        # Before anything is asked of a node: a wheelhouse that cannot be built (no
        # index, no network) stops `up` with nothing done.
        if _agent_runs(first_plan):
            await self._build_wheelhouse()
        self.records.set_site(self.site, "applying", str(self.blueprint_path))
        try:
            todo = [desired.nodes[n] for n in first_plan.create + first_plan.resume]
            await self._ensure_nodes(todo)
            # Now every node has an address: render again, for real.
            plan, desired, record = self.plan(unhealthy)
            await self._check_agent_pythons(plan, record)
            await self._run_services(plan, outcome)
            removals = [r for r in plan.removals if r.node not in untouched]
            await self._remove(removals, record, outcome)
            await self._release([record.nodes[n] for n in plan.release if n not in keep])
            if outcome.ok:  # outputs name a serving site, or nothing (docs/blueprints.md)
                outcome.outputs = desired.outputs
                self.records.set_outputs(self.site, desired.outputs)
        finally:
            self.records.set_site(self.site, "up" if outcome.ok else "failed")
            await self._close()
        outcome.seconds = time.monotonic() - started
        return outcome

    async def _build_wheelhouse(self) -> None:
        setup = self.values.agent
        assert setup is not None
        if setup.wheelhouse.ready:
            return
        self.observer(Event("controller", "agent", "wheelhouse", "running", setup.wheelhouse.key))
        await asyncio.to_thread(setup.wheelhouse.build)
        self.observer(Event("controller", "agent", "wheelhouse", "done"))

    async def _check_agent_pythons(self, plan: Plan, record: SiteRecord) -> None:
        """The wheels are for the controller's Python: a node with another (or none) is
        refused before any service step runs anywhere on the site."""
        for run in _agent_runs(plan):
            spec = self.blueprint.services[run.placement.service].agent
            node = record.nodes[run.placement.node].node
            assert spec is not None and node is not None
            session = await self._session(run.placement.node, node)
            try:
                result = await session.run(
                    run.placement.service, "python", python_probe(spec.python)
                )
            except StepFailed as exc:
                raise HotsiteError(
                    exc.detail, "check that the node is up, then run up again"
                ) from None
            problem = python_problem(run.placement.node, spec.python, result.stdout)
            if problem:
                raise ConfigError(problem)

    async def _ensure_nodes(self, todo: list[DesiredNode]) -> None:
        by_driver: dict[str, list[DesiredNode]] = {}
        for node in todo:
            self.records.node_intended(self.site, node.name, node.group, node.index, node.driver)
            by_driver.setdefault(node.driver, []).append(node)
        await asyncio.gather(*(self._nodes_of(d, nodes) for d, nodes in by_driver.items()))

    async def _nodes_of(self, driver_name: str, wanted: list[DesiredNode]) -> None:
        driver = self.infra.driver(driver_name)
        names = {n.name for n in wanted}
        for n in wanted:
            self.observer(Event(n.name, "node", "create", "running", driver_name))
        # An interrupted run may have got some of these already: find them by name.
        found = {
            n.name: n
            for n in await driver.list_nodes()
            if n.name in names and n.state == "running"  # not a dead process's half lease
        }
        specs = [n.spec for n in wanted if n.name not in found]
        created = await driver.create(specs) if specs else []
        # Matched by position: a driver may name its nodes its own way.
        for spec, node in zip(specs, created, strict=True):
            found[spec.name] = node
        # Only machines a driver *created* may still be booting; a pool (BYON) probes its
        # hosts when it leases them, and one more SSH handshake per node is not free.
        # One call per node: the contract does not promise a driver probes concurrently.
        if Capability.CREATE in driver.capabilities:
            await asyncio.gather(
                *(driver.wait_reachable([n], timeout=REACHABLE_TIMEOUT) for n in found.values())
            )
        for name, node in found.items():
            self.records.node_ready(self.site, name, node)
            self.observer(Event(name, "node", "create", "done", node.address))

    async def _session(self, name: str, node: Node) -> NodeSession:
        lock = self._connecting.setdefault(name, asyncio.Lock())
        async with lock:
            if name not in self._sessions:
                transport = await self.infra.connect(node)
                self._sessions[name] = NodeSession(
                    node=node,
                    transport=transport,
                    infra=self.infra,
                    site=self.site,
                    secrets=self.values.secret_values,
                    redact=self.values.redact,
                )
            return self._sessions[name]

    async def _close(self) -> None:
        # Locks belong to the event loop that made them; the next run may use another.
        self._sessions, self._connecting = {}, {}
        await self.infra.close()

    async def _run_services(self, plan: Plan, outcome: Outcome) -> None:
        """Every service's nodes at once. `depends_on` gates `configure` and later steps
        only: uploads and installs need nothing from other services, so they overlap
        with the dependencies' own work (the web nodes install while the database
        starts)."""
        record = self.records.load(self.site)
        runs: dict[str, list[ServiceRun]] = {}
        for run in plan.runs:
            runs.setdefault(run.placement.service, []).append(run)
        deps = {name: s.depends_on for name, s in self.blueprint.services.items()}
        done = {name: asyncio.Event() for name in deps}
        healthy: dict[str, bool] = {}
        limit = asyncio.Semaphore(self.concurrency)

        async def ready(name: str) -> list[str]:
            """Wait for the service's dependencies; return the ones that failed."""
            for dep in deps[name]:
                await done[dep].wait()
            return [d for d in deps[name] if not healthy[d]]

        async def service(name: str) -> None:
            try:
                results = await asyncio.gather(
                    *(
                        self._run_one(run, record, limit, outcome, ready(name))
                        for run in runs.get(name, [])
                    )
                )
                broken = await ready(name)
                healthy[name] = all(results) and not broken
            finally:
                healthy.setdefault(name, False)
                done[name].set()

        await asyncio.gather(*(service(name) for name in deps))

    async def _run_one(
        self,
        run: ServiceRun,
        record: SiteRecord,
        limit: asyncio.Semaphore,
        outcome: Outcome,
        gate: Coroutine[Any, Any, list[str]],
    ) -> bool:
        placement = run.placement
        node_record = record.nodes[placement.node]
        assert node_record.node is not None
        name, service = placement.node, placement.service
        early = [s for s in run.steps if s in EARLY_STEPS]
        late = run.steps[len(early) :]
        try:
            if early:
                async with limit:
                    await self._steps(run, record, node_record.node, early, outcome)
            broken = await gate  # not holding a slot while waiting
            if broken:
                why = f"needs {', '.join(broken)}, which failed"
                outcome.skipped.append((name, service, why))
                self.observer(Event(name, service, late[0] if late else "", "skipped", why))
                return False
            if late:
                async with limit:
                    await self._steps(run, record, node_record.node, late, outcome)
            self.observer(Event(name, service, run.steps[-1], "done"))
            return True
        except StepFailed as failure:
            gate.close()
            outcome.failures.append(failure)
            self.observer(Event(name, service, failure.step, "failed", failure.detail))
            return False
        except HotsiteError as exc:  # could not connect
            gate.close()
            outcome.failures.append(StepFailed(name, service, "connect", str(exc), ""))
            self.observer(Event(name, service, "connect", "failed", str(exc)))
            return False

    async def _steps(
        self, run: ServiceRun, record: SiteRecord, node: Node, steps: list[str], outcome: Outcome
    ) -> None:
        placement = run.placement
        name, service = placement.node, placement.service
        session = await self._session(name, node)
        # What `down` will need. A restart keeps the old record until the old service is
        # stopped: that one was started by the old definition (another dir, port...).
        if "stop" not in run.steps:
            self.records.teardown_known(
                self.site, name, service, placement.teardown(), placement.depends_on
            )
        for step_name in steps:
            self.observer(Event(name, service, step_name, "running"))
            step, env = placement.steps[step_name], placement.env
            if step_name == "stop":
                # Forget "start" first: if we die between stop and start, the next
                # run must start it again rather than think it is running.
                self.records.steps_forgotten(self.site, name, service, ["start"])
                old = record.teardown.get((name, service)) or {}
                if old.get("stop"):
                    step = RenderedStep(name="stop", command=old["stop"], timeout=600)
                    env = environment_secrets_marker(old.get("env") or {}, self.values.secrets)
            await session.run_step(service, step, env)
            if step_name == "stop":
                self.records.teardown_known(
                    self.site, name, service, placement.teardown(), placement.depends_on
                )
            if step_name in ("start", "reload") and placement.check:
                self.observer(Event(name, service, "check", "running"))
                await session.check(service, placement.check, placement.env)
            outcome.steps_run += 1
            if step_name != "stop":
                recorded_as = "start" if step_name == "reload" else step_name
                fingerprint = placement.steps[recorded_as].fingerprint
                self.records.step_done(self.site, name, service, recorded_as, fingerprint)


def _agent_runs(plan: Plan) -> list[ServiceRun]:
    """Runs that (re)install the built-in agent: they need the wheelhouse."""
    return [
        run for run in plan.runs if run.placement.agent and {"upload", "install"} & set(run.steps)
    ]
