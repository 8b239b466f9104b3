"""Blueprint commands: plan, up, down, outputs (docs/blueprints.md).

Exit codes: ``plan`` 0 = nothing to do, 2 = changes (like ``terraform plan
-detailed-exitcode``), 1 = error. ``up``/``down`` 0 = done, 1 = a step failed (the
summary names node, step and output tail), 2 = could not start (bad blueprint, site
locked...), as every other hotsite command.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Coroutine
from typing import Any

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hotsite.blueprint import (
    Deployment,
    DeploymentStore,
    Event,
    NodesInfrastructure,
    Observer,
    Outcome,
    as_dict,
    describe,
    open_deployment,
    site_lock,
    summary,
)
from hotsite.cli.app import app, console, err_console, print_warning, project, providers_of
from hotsite.config import ProjectConfig
from hotsite.errors import ConfigError, HotsiteError
from hotsite.keep import clear_failed
from hotsite.nodes import open_store

SITE = typer.Argument(..., help="The site, as named under sites in the project file.")
ACCEPT_NEW = typer.Option(
    False, "--accept-new-host-keys", help="Trust and record host keys seen for the first time."
)
QUIET = typer.Option(False, "--quiet", "-q", help="No live view; one line per finished step.")


def _deployment(
    ctx: typer.Context,
    site: str,
    *,
    accept_new: bool = False,
    need_secrets: bool = True,
    observer: Observer | None = None,
) -> tuple[Deployment, ProjectConfig]:
    config: ProjectConfig = project(ctx)
    # The same project name as 'hotsite nodes': both tag and find the same cloud nodes.
    providers = providers_of(config, accept_new_host_keys=accept_new)
    deployment = open_deployment(
        config,
        site,
        providers.store,
        NodesInfrastructure(providers),
        observer=observer,
        concurrency=config.nodes.ssh.concurrency,
        need_secrets=need_secrets,
    )
    return deployment, config


REFRESH = typer.Option(
    False, "--refresh", help="Also probe every running service's check (touches the nodes)."
)


@app.command()
def plan(
    ctx: typer.Context,
    site: str = SITE,
    refresh: bool = REFRESH,
    accept_new: bool = ACCEPT_NEW,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """What `up` would do now: nodes to create or release, steps to run. Exit 0 = nothing
    to do, 2 = changes, 1 = error."""
    try:
        deployment, _ = _deployment(ctx, site, need_secrets=False, accept_new=accept_new)
        unhealthy = asyncio.run(deployment.refresh()) if refresh else set()
        the_plan, desired, _ = deployment.plan(unhealthy)
    except HotsiteError as exc:
        exc.exit_code = 1  # 2 means "changes" here
        raise
    if as_json:
        console.print_json(json.dumps(as_dict(the_plan)))
    else:
        for line in describe(the_plan, desired):
            console.print(line, highlight=False, soft_wrap=True)
        console.print(summary(the_plan), highlight=False, soft_wrap=True)
    raise SystemExit(0 if the_plan.empty else 2)


class _View:
    """Live per-node progress: one row per node and service, its current step."""

    def __init__(self, quiet: bool) -> None:
        self.rows: dict[tuple[str, str], tuple[str, str, str, float]] = {}
        self.quiet = quiet or not console.is_terminal
        self.live: Live | None = None

    def __call__(self, event: Event) -> None:
        key = (event.node, event.service)
        started = self.rows.get(key, ("", "", "", time.monotonic()))[3]
        if event.status == "running" and key not in self.rows:
            started = time.monotonic()
        self.rows[key] = (event.step, event.status, event.detail, started)
        if self.quiet:
            if event.status in ("done", "failed", "skipped"):
                detail = f"  {event.detail}" if event.detail else ""
                console.print(
                    f"{event.node:<24} {event.service:<12} {event.step:<10} {event.status}{detail}",
                    highlight=False,
                    soft_wrap=True,
                )
        elif self.live is not None:
            self.live.update(self.table())

    def table(self) -> Table:
        table = Table("node", "service", "step", "status", "time", box=None, pad_edge=False)
        colors = {"running": "yellow", "done": "green", "failed": "red", "skipped": "dim"}
        for (node, service), (step, status, detail, started) in sorted(self.rows.items()):
            shown = status + (f": {detail}" if detail and status != "done" else "")
            table.add_row(
                node,
                service,
                step,
                Text(shown[:60], style=colors.get(status, "")),
                f"{time.monotonic() - started:.1f}s" if status == "running" else "",
            )
        return table

    def run(self, work: Coroutine[Any, Any, Outcome]) -> Outcome:
        if self.quiet:
            return asyncio.run(work)
        with Live(self.table(), console=console, refresh_per_second=8, transient=True) as live:
            self.live = live
            try:
                return asyncio.run(work)
            finally:
                live.update(self.table())
                self.live = None


def _report(outcome: Outcome, verb: str, site: str) -> None:
    for failure in outcome.failures:
        err_console.print(
            f"[bold red]failed:[/] {failure.service}.{failure.step} on {failure.node}:"
            f" {failure.detail}",
            highlight=False,
            soft_wrap=True,
        )
        if failure.tail:
            for line in failure.tail.splitlines():
                err_console.print(f"    {line}", highlight=False, markup=False)
        err_console.print(
            f"    full log: hotsite logs {site} --node {failure.node}"
            f" --step {failure.service}.{failure.step}",
            highlight=False,
            soft_wrap=True,
        )
    for node, service, why in outcome.skipped:
        err_console.print(
            f"[yellow]skipped:[/] {service} on {node}: {why}", highlight=False, soft_wrap=True
        )
    state = "done" if outcome.ok else "incomplete"
    console.print(
        f"{verb} {site}: {state} — {outcome.steps_run} step(s) run in {outcome.seconds:.1f}s",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def up(
    ctx: typer.Context,
    site: str = SITE,
    accept_new: bool = ACCEPT_NEW,
    quiet: bool = QUIET,
    no_refresh: bool = typer.Option(
        False, "--no-refresh", help="Trust the records: skip probing running services."
    ),
) -> None:
    """Bring the site up as its blueprint describes: create nodes, run the steps that are
    not done yet, restart what fails its check, in dependency order, nodes in parallel.
    Safe to re-run at any time."""
    view = _View(quiet)
    deployment, config = _deployment(ctx, site, accept_new=accept_new, observer=view)
    with site_lock(config.home, site):
        unhealthy = set() if no_refresh else asyncio.run(deployment.refresh())
        the_plan, _, _ = deployment.plan(unhealthy)
        if the_plan.empty:
            clear_failed(deployment.records.store, site)  # as described: heal it again
            console.print(f"up {site}: nothing to do, the site is as described")
            return
        console.print(f"up {site}: {summary(the_plan)}", highlight=False, soft_wrap=True)
        outcome = view.run(deployment.up(unhealthy))
    _report(outcome, "up", site)
    if outcome.ok:  # as described again: healing takes on services it had given up on
        clear_failed(deployment.records.store, site)
    if outcome.outputs and outcome.ok:
        for key, value in outcome.outputs.items():
            console.print(f"  {key} = {value}", highlight=False, soft_wrap=True)
    if not outcome.ok:
        raise SystemExit(1)


_CHANGE = re.compile(r"^([a-z][a-z0-9_-]*)=([+-]?)(\d{1,4})$")


@app.command()
def scale(
    ctx: typer.Context,
    site: str = SITE,
    change: str = typer.Argument(..., help="GROUP=N, GROUP=+K or GROUP=-K, e.g. web=4."),
    drain_timeout: float = typer.Option(
        30.0, "--drain-timeout", help="Seconds to wait for a leaving node's requests to end."
    ),
    accept_new: bool = ACCEPT_NEW,
    quiet: bool = QUIET,
) -> None:
    """Set a node group's size (within its min/max in the blueprint) and bring the site
    to it, as `up` does. Nodes that go are drained at the load balancer first (no new
    requests, the open ones finish), then stopped and released."""
    match = _CHANGE.match(change.strip())
    if match is None:
        raise ConfigError(
            f"cannot read {change!r} as a group size",
            "write GROUP=N, GROUP=+K or GROUP=-K (e.g. web=4, web=+2)",
        )
    group, sign, number = match.groups()
    view = _View(quiet)
    deployment, config = _deployment(ctx, site, accept_new=accept_new, observer=view)
    with site_lock(config.home, site):
        current = deployment.group_count(group)  # an unknown group: one line, nothing done
        count = current + int(sign + number) if sign else int(number)
        deployment.checked_count(group, count)
        if count == current:
            console.print(f"scale {site}: {group} has {count} node(s) already")
            return
        console.print(f"scale {site}: {group} {current} -> {count}", highlight=False)
        outcome = view.run(deployment.scale(group, count, drain_timeout))
    _report(outcome, "scale", site)
    if not outcome.ok:
        raise SystemExit(1)


@app.command()
def down(
    ctx: typer.Context,
    site: str = SITE,
    keep_nodes: bool = typer.Option(
        False, "--keep-nodes", help="Stop and uninstall, but leave the machines (and leases)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Release the nodes even if stop/uninstall failed (dead hosts)."
    ),
    accept_new: bool = ACCEPT_NEW,
    quiet: bool = QUIET,
) -> None:
    """Stop and uninstall every service in reverse dependency order, then release or
    destroy the site's nodes."""
    view = _View(quiet)
    try:
        deployment, config = _deployment(ctx, site, accept_new=accept_new, observer=view)
    except ConfigError as exc:
        if "secret" not in str(exc):
            raise
        # Teardown commands rarely need secrets; run them without rather than refuse.
        print_warning(f"{exc}; running teardown without it")
        deployment, config = _deployment(
            ctx, site, accept_new=accept_new, observer=view, need_secrets=False
        )
    with site_lock(config.home, site):
        outcome = view.run(deployment.down(keep_nodes=keep_nodes, force=force))
    _report(outcome, "down", site)
    if not outcome.ok:
        raise SystemExit(1)


@app.command()
def outputs(
    ctx: typer.Context,
    site: str = SITE,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """The site's outputs (its URL...) as rendered by its last successful `up`."""
    config: ProjectConfig = project(ctx)
    config.site(site)
    record = DeploymentStore(open_store(config.home)).load(site)
    if not record.outputs:
        # Only a successful `up` records outputs: a script must not be handed the URL of
        # a site whose load balancer never started.
        raise HotsiteError(
            f"site {site!r} has no outputs (status: {record.status}): only a successful"
            " `up` records them, and `down` clears them",
            f"run hotsite up {site}",
        )
    if record.status != "up":
        print_warning(
            f"the last `up` of site {site!r} did not finish (status: {record.status});"
            " these outputs are from the last one that succeeded"
        )
    if as_json:
        console.print_json(json.dumps(record.outputs))
        return
    for key, value in record.outputs.items():
        console.print(f"{key} = {value}", highlight=False, soft_wrap=True)
