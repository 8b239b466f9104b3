"""Commands of the control plane: the controller, fencing and promoting a site, the
entry point."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import typer
from rich.table import Table

from hotsite.cli.app import app, console, print_warning, project
from hotsite.config import ProjectConfig
from hotsite.dr import (
    Detector,
    ProjectSites,
    Record,
    control_tls,
    controller_listen,
    controller_url,
    dr_report,
    dr_section,
    entry_control,
    failover,
    load_token,
    move_context,
    move_lock,
    open_records,
    resume,
    site_fence,
    taking_traffic,
    watch,
)
from hotsite.errors import ConfigError, HotsiteError, LockedError, listed


@app.command()
def controller(ctx: typer.Context) -> None:
    """Run the controller: the record of which site is primary, and the primary's lease.

    Agents reach it over HTTP (TLS with control_tls) with the project token. It makes
    the record from dr.primary the first time it starts. Stops on Ctrl-C or SIGTERM.
    """
    # Here, not at the top: the HTTP server (aiohttp) is the controller's alone, and
    # loading it cost every other command a tenth of a second.
    from hotsite.dr import ControllerState, serve, server_context

    config = project(ctx)
    dr = dr_section(config)
    token = load_token(dr)
    records = open_records(config)
    record = records.initialise(dr.primary)
    host, port = controller_listen(config)
    state = ControllerState(records, token, dr.lease, frozenset(config.sites))
    detector = Detector(sorted(config.sites), dr.detection.dead_after)
    state.unreached = detector.view
    state.suspect = lambda site: detector.suspect(site, state.reports)
    probe_timeout = dr.detection.probe_timeout
    probe = ProjectSites(config, timeout=probe_timeout).reachable

    apply_timeout = max(5.0, dr.lease * 4)

    def fail_over(target: str, why: str, failed_at: float) -> None:
        with move_lock(config):
            context = move_context(config, apply_timeout, probe_timeout=probe_timeout)
            result = failover(context, target, detected=why, failed_at=failed_at)
        console.print(
            f"failed over to {target} ({why}): epoch {result.epoch}, move {result.id}",
            highlight=False,
            soft_wrap=True,
        )

    def resume_left_move() -> None:
        # A move in flight whose lock is free: its process died (a kill -9 of the
        # controller in the middle of a failover, say). Carry it on or roll it back.
        try:
            with move_lock(config):
                result = resume(move_context(config, apply_timeout))
        except LockedError:
            return  # another process is running it
        except HotsiteError as exc:
            print_warning(f"the move left in flight could not be resumed: {exc}")
            return
        if result is not None:
            console.print(
                f"resumed {result.kind} {result.id} left in flight: {result.outcome},"
                f" {records.read().primary} primary"  # type: ignore[union-attr]
                f" at epoch {records.read().epoch}",  # type: ignore[union-attr]
                highlight=False,
                soft_wrap=True,
            )

    async def background() -> None:
        if record.move is not None:
            await asyncio.to_thread(resume_left_move)
        auto = fail_over if dr.auto_failover else None
        await watch(state, detector, probe, dr.detection.interval, auto)

    def ready() -> None:
        move = f", move {record.move.id} in flight" if record.move else ""
        console.print(
            f"controller listening on {controller_url(config)}: primary {record.primary},"
            f" epoch {record.epoch}{move}",
            highlight=False,
            soft_wrap=True,
        )

    asyncio.run(serve(state, host, port, server_context(control_tls(config)), ready, background))


@app.command()
def fence(
    ctx: typer.Context,
    site: str = typer.Argument(..., help="The site whose database to fence."),
) -> None:
    """Make a site's database read-only and kill its writer sessions, persistently.

    The fence outlives restarts of the server (the site's agent sets it again) until
    'hotsite promote SITE --force' or a failback.
    """
    config = project(ctx)
    config.site(site)
    state = site_fence(config, site).fence("manual", None, "hotsite fence")
    _warn_bypass(site, state.bypass)
    console.print(f"site {site}: fenced (read-only, {state.killed} sessions killed)")


@app.command()
def promote(
    ctx: typer.Context,
    site: str = typer.Argument(..., help="The site whose database to make writable."),
    force: bool = typer.Option(False, "--force", help="Lift the fence (required)."),
    as_json: bool = typer.Option(False, "--json", help="Print the fence state as JSON."),
) -> None:
    """Lift a site's fence: its database writable again. Only with --force: nothing checks
    that the other site is not writable too (failback does)."""
    config = project(ctx)
    config.site(site)
    if not force:
        raise ConfigError(
            f"promote would make site {site!r} writable without checking the other sites",
            f"run 'hotsite promote {site} --force' if you are sure no other site is primary",
        )
    state = site_fence(config, site).unfence()
    record = open_records(config).read() if config.dr is not None else None
    others = f"; the record names {record.primary} as primary" if record else ""
    print_warning(
        f"site {site} is writable: hotsite did not check that no other site is{others}"
        " ('hotsite record' shows every site's state)"
    )
    if as_json:
        console.print_json(json.dumps(state.as_dict()))
    else:
        console.print(f"site {site}: writable (fence lifted at {time.strftime('%H:%M:%S')})")


def _warn_bypass(site: str, accounts: tuple[str, ...]) -> None:
    if accounts == ("?",):
        print_warning(
            f"site {site}: cannot list the accounts that write through read_only"
            " (no SELECT on mysql.user); see docs/dr.md#fencing"
        )
    elif accounts:
        print_warning(
            f"site {site}: accounts {listed(list(accounts))} can still write (READ_ONLY ADMIN or ALL"
            " PRIVILEGES); keep the application off them (docs/dr.md#fencing)"
        )


entry_app = typer.Typer(help="The global entry point (HAProxy in front of the sites).")
app.add_typer(entry_app, name="entry")


def _record_for_entry(config: ProjectConfig) -> Record:
    records = open_records(config)
    return records.read() or Record(dr_section(config).primary, 0)


@entry_app.command("up")
def entry_up(ctx: typer.Context) -> None:
    """Start the entry point, routing as the record says (the primary takes traffic)."""
    config = project(ctx)
    control = entry_control(config)
    record = _record_for_entry(config)
    active = taking_traffic(control.entry, record)
    if control.up(active):
        console.print(
            f"entry point up on {control.entry.host}:{control.entry.port}:"
            f" traffic to {', '.join(sorted(active))}",
            highlight=False,
            soft_wrap=True,
        )
    else:
        console.print(f"entry point already running (pid {control.running_pid()})")


@entry_app.command("down")
def entry_down(ctx: typer.Context) -> None:
    """Stop the entry point (users can no longer reach any site through it)."""
    control = entry_control(project(ctx))
    console.print("entry point stopped" if control.down() else "entry point was not running")


@entry_app.command("status")
def entry_status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Each site's server at the entry point: ready/drain/maint, health, weight,
    sessions. Exit 1 when the entry point is not running."""
    control = entry_control(project(ctx))
    if control.running_pid() is None:
        if as_json:
            console.print_json(json.dumps({"running": False, "servers": []}))
        else:
            console.print("entry point not running ('hotsite entry up' starts it)")
        raise typer.Exit(1)
    servers = control.status()
    if as_json:
        rows = [s.__dict__ for s in servers]
        console.print_json(json.dumps({"running": True, "servers": rows}))
        return
    table = Table("site", "state", "health", "weight", "sessions")
    for s in servers:
        table.add_row(s.site, s.admin, s.health, str(s.weight), str(s.sessions))
    console.print(f"entry point on {control.entry.host}:{control.entry.port}")
    console.print(table)


@app.command("record")
def record_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Which site is primary, the epoch, the lease holder and its time left, the move in
    flight; each site's database (reachable, read-only, fenced); the entry point's
    routing. Exit 1 when a part could not be read or more than one site is writable."""
    report = dr_report(project(ctx))
    if as_json:
        console.print_json(json.dumps(report))
    else:
        show_dr_report(report)
    if dr_problems(report):
        raise typer.Exit(1)


def show_dr_report(report: dict[str, Any]) -> None:
    """The record, each site's database state and the entry point's routing, as
    ``hotsite record`` prints them (``hotsite status`` too)."""
    record = report["record"]
    if record:
        lease = (
            f"lease held by {record['lease_holder']}, {record['lease_left']:.1f} s left"
            if record["lease_holder"] and record["lease_left"] > 0
            else "no lease held"
        )
        move = record["move"]
        moving = (
            f"; {move['kind']} to {move['target']} in flight ({move['id']}, {move['step']})"
            if move
            else ""
        )
        console.print(
            f"primary {record['primary']}, epoch {record['epoch']}; {lease}{moving}",
            highlight=False,
            soft_wrap=True,
        )
    table = Table("site", "database", "read-only", "fence")
    for name, site in report["sites"].items():
        fence_text = f"{site['kind']} (epoch {site['epoch']})" if site.get("fenced") else ""
        table.add_row(
            name, "reachable" if site["reachable"] else "unreachable",
            "" if "read_only" not in site else ("yes" if site["read_only"] else "no"),
            fence_text,
        )  # fmt: skip
    console.print(table)
    if report["entry"] is not None:
        servers = report["entry"]["servers"]
        routing = ", ".join(f"{s['site']} {s['admin']} ({s['health']})" for s in servers)
        console.print(f"entry point: {routing or 'not running'}", highlight=False, soft_wrap=True)


def dr_failing(report: dict[str, Any]) -> bool:
    """A part of the report could not be read, or more than one site is writable."""
    return bool(report["errors"]) or len(report["writable"]) > 1


def dr_problems(report: dict[str, Any]) -> bool:
    """Warn about what could not be read and about more than one writable site; True
    when there was any (the command exits 1)."""
    for line in report["errors"]:
        print_warning(line)
    if len(report["writable"]) > 1:
        print_warning(f"more than one site is writable: {', '.join(report['writable'])}")
    return dr_failing(report)
