"""Desired vs recorded → a plan: nodes to create or release, steps to run, services to
remove. Like ``terraform plan``: computed from the state store without touching nodes,
so it is fast and safe to run any time; ``up`` executes exactly this plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hotsite.blueprint.desired import Desired, Placement
from hotsite.blueprint.graph import levels
from hotsite.blueprint.model import UP_STEPS
from hotsite.blueprint.state import SiteRecord


@dataclass
class ServiceRun:
    """Steps to run for one service on one node, in order. ``reasons`` says why."""

    placement: Placement
    steps: list[str]
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.placement.node, self.placement.service)


@dataclass
class Removal:
    """A service to stop and uninstall: its node is released or the blueprint dropped it."""

    node: str
    service: str
    commands: dict[str, Any]
    depends_on: list[str]


@dataclass
class Plan:
    site: str
    create: list[str] = field(default_factory=list)  # node names
    resume: list[str] = field(default_factory=list)  # recorded 'creating': find or create
    release: list[str] = field(default_factory=list)
    runs: list[ServiceRun] = field(default_factory=list)
    removals: list[Removal] = field(default_factory=list)
    order: list[list[str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.resume or self.release or self.runs or self.removals)

    @property
    def step_count(self) -> int:
        return sum(len(run.steps) for run in self.runs) + sum(
            len([s for s in ("stop", "uninstall") if r.commands.get(s)]) for r in self.removals
        )


def steps_to_run(placement: Placement, record: SiteRecord) -> tuple[list[str], dict[str, str]]:
    """The first step whose fingerprint changed, and every step after it. A service that
    was started is reloaded (if it says how) or stopped before it is started again."""
    order = [s for s in UP_STEPS if s in placement.steps]
    reasons: dict[str, str] = {}
    first = None
    for index, step in enumerate(order):
        recorded = record.steps.get((placement.node, placement.service, step))
        if recorded != placement.steps[step].fingerprint:
            first = index
            reasons[step] = "new" if recorded is None else "changed"
            break
    if first is None:
        return [], {}
    run = order[first:]
    for step in run[1:]:
        reasons.setdefault(step, "after " + order[first])
    started = (placement.node, placement.service, "start") in record.steps
    if started and "start" in run:
        if placement.has_reload:
            run[run.index("start")] = "reload"
            reasons["reload"] = reasons.pop("start")
        elif "stop" in placement.steps:
            run.insert(run.index("start"), "stop")
            reasons["stop"] = "restart"
    return run, reasons


def make_plan(desired: Desired, record: SiteRecord) -> Plan:
    plan = Plan(site=desired.site)
    plan.order = levels({name: s.depends_on for name, s in desired.blueprint.services.items()})
    for name in desired.nodes:
        recorded = record.nodes.get(name)
        if recorded is None:
            plan.create.append(name)
        elif recorded.status != "ready":
            plan.resume.append(name)
    plan.release = [name for name in record.nodes if name not in desired.nodes]
    for placement in desired.placements.values():
        steps, reasons = steps_to_run(placement, record)
        if steps:
            plan.runs.append(ServiceRun(placement, steps, reasons))
    for (node, service), info in record.teardown.items():
        if (node, service) not in desired.placements:
            plan.removals.append(Removal(node, service, info, list(info.get("depends_on", []))))
    return plan


def describe(plan: Plan, desired: Desired) -> list[str]:
    """The plan as lines of rich markup: + create, - remove, ~ change."""
    lines: list[str] = []
    for name in plan.create:
        node = desired.nodes[name]
        lines.append(f"[green]+ node {name}[/]  (group {node.group}, driver {node.driver})")
    for name in plan.resume:
        lines.append(f"[yellow]~ node {name}[/]  (creation was interrupted: find or create)")
    for name in plan.release:
        lines.append(f"[red]- node {name}[/]  (release)")
    for removal in plan.removals:
        steps = [s for s in ("stop", "uninstall") if removal.commands.get(s)]
        lines.append(
            f"[red]- {removal.service} on {removal.node}[/]: {', '.join(steps) or 'forget'}"
        )
    by_service: dict[str, list[ServiceRun]] = {}
    for run in plan.runs:
        by_service.setdefault(run.placement.service, []).append(run)
    for level in plan.order:
        for service in level:
            for run in by_service.get(service, []):
                fresh = run.reasons.get(run.steps[0]) == "new" and not (
                    {"stop", "reload"} & set(run.steps)
                )
                symbol = "+" if fresh else "~"
                color = "green" if symbol == "+" else "yellow"
                detail = ", ".join(f"{s} ({run.reasons.get(s, '')})" for s in run.steps)
                lines.append(f"[{color}]{symbol} {service} on {run.placement.node}[/]: {detail}")
    return lines


def as_dict(plan: Plan) -> dict[str, Any]:
    """The plan for machines (``plan --json``)."""
    return {
        "site": plan.site,
        "empty": plan.empty,
        "create": plan.create + plan.resume,
        "release": plan.release,
        "runs": [
            {
                "node": r.placement.node,
                "service": r.placement.service,
                "steps": r.steps,
                "reasons": r.reasons,
            }
            for r in plan.runs
        ],
        "remove": [
            {
                "node": r.node,
                "service": r.service,
                "steps": [s for s in ("stop", "uninstall") if r.commands.get(s)],
            }
            for r in plan.removals
        ],
    }


def summary(plan: Plan) -> str:
    if plan.empty:
        return "nothing to do: the site is as described"
    return (
        f"{len(plan.create) + len(plan.resume)} node(s) to create, {len(plan.release)} to"
        f" release, {plan.step_count} step(s) to run"
    )
