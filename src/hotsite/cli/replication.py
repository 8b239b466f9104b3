"""Replication commands: replicate, status, snapshot."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from hotsite.agent import duty_errors
from hotsite.cli.app import app, console, err_console, print_warning, project
from hotsite.cli.dr import dr_failing, dr_problems, show_dr_report
from hotsite.cli.keep import healing_failures
from hotsite.config import LinkConfig, ProjectConfig
from hotsite.dr import dr_report
from hotsite.replication import GtidState, LinkAgent, LinkStatus, link_lock, link_report
from hotsite.statefiles import require_writable_dir

FROM = typer.Option(None, "--from", help="Source site (default: the only link's).")
TO = typer.Option(None, "--to", help="Target site (default: the only link's).")


@app.command()
def replicate(
    ctx: typer.Context,
    source: str | None = FROM,
    target: str | None = TO,
    until_caught_up: bool = typer.Option(
        False,
        "--until-caught-up",
        help="Exit 0 once the target has applied all the source had at start.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live line."),
) -> None:
    """Stream changes from one site's database to another's until interrupted."""
    # SIGTERM (systemd, kill) stops as cleanly as Ctrl-C: the agent's finally runs.
    signal.signal(signal.SIGTERM, _interrupt)
    with _checked_agent(ctx, source, target) as agent:
        if agent.needs_snapshot():
            _run_snapshot(agent, quiet)
        agent.align_journal()
        goal = agent.source_position() if until_caught_up else None
        agent.start()
        try:
            _stream(agent, goal, quiet)
        except KeyboardInterrupt:
            console.print("stopped; the next 'hotsite replicate' resumes where this one was")
        finally:
            agent.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stream(agent: LinkAgent, goal: GtidState | None, quiet: bool) -> None:
    def caught_up() -> bool:
        return goal is not None and agent.applied_position().reached(goal)

    if quiet or not console.is_terminal:
        last_print = 0.0
        while not caught_up():
            status = agent.poll()
            if not quiet and time.monotonic() - last_print > 5:
                console.print(_line(agent.link, status, agent), highlight=False)
                last_print = time.monotonic()
            time.sleep(0.05)
    else:
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            while not caught_up():
                live.update(_line(agent.link, agent.poll(), agent))
                time.sleep(0.1)
    if goal is not None:
        console.print(f"caught up: {agent.link.target} has applied {agent.applied_position()}")


def _fmt_lag(stage: dict[str, object]) -> str:
    lag = stage.get("lag_seconds")
    return "?" if lag is None else f"{float(lag):.2f}s"  # type: ignore[arg-type]


def _line(link: LinkConfig, status: LinkStatus, agent: LinkAgent) -> str:
    cap, ship, apply = status.capture, status.ship, status.apply
    return (
        f"{link.source}→{link.target}  source {status.source_position or '?'}  "
        f"capture {cap.get('position', '?')} {cap.get('rate', 0):.0f} tx/s lag {_fmt_lag(cap)}  "
        f"ship {ship.get('rate', 0):.0f} tx/s lag {_fmt_lag(ship)}  "
        f"apply {apply.get('position', '?')} {apply.get('rate', 0):.0f} tx/s lag {_fmt_lag(apply)}"
    )


@app.command()
def snapshot(
    ctx: typer.Context,
    source: str | None = FROM,
    target: str | None = TO,
    quiet: bool = typer.Option(False, "--quiet", "-q"),
    force: bool = typer.Option(
        False,
        "--force",
        help="Overwrite target tables holding rows this link did not load (or the rows of a"
        " target that takes writes itself).",
    ),
) -> None:
    """Reload the target from a consistent read of the source (the source keeps taking writes)."""
    signal.signal(signal.SIGTERM, _interrupt)
    with _checked_agent(ctx, source, target, force) as agent:
        _run_snapshot(agent, quiet, force)


@contextmanager
def _checked_agent(
    ctx: typer.Context, source: str | None, target: str | None, force: bool = False
) -> Iterator[LinkAgent]:
    """The link's agent, its lock held and both databases checked."""
    config = project(ctx)
    link = config.link(source, target)
    _require_writable_state(config, link)
    with link_lock(config, link):
        agent = LinkAgent(config, link)
        try:
            for warning in agent.check(force):
                print_warning(warning)
            yield agent
        finally:
            agent.close()


def _require_writable_state(config: ProjectConfig, link: LinkConfig) -> None:
    """Before any server is touched: the lock, status and journal directories take files."""
    require_writable_dir(config.home / "locks")
    require_writable_dir(config.home / "status")
    journal_hint = "make it writable, or set this link's journal (or state_dir) in the project file"
    require_writable_dir(config.journal_path(link).parent, journal_hint)


def _run_snapshot(agent: LinkAgent, quiet: bool, force: bool = False) -> None:
    started = time.monotonic()
    with Progress(
        TextColumn("snapshot {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        # Ctrl-C and SIGTERM stop the snapshot between two batches, not inside the
        # database driver (an interrupt there leaves a connection it cannot close cleanly).
        stop = threading.Event()
        previous = {
            sig: signal.signal(sig, lambda *_: stop.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }

        def progress(table: str, done: int, total: int) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            if table not in tasks:
                tasks[table] = bar.add_task(table, total=total)
            bar.update(tasks[table], completed=done, total=total)

        try:
            result = agent.snapshot(progress, force)
        except KeyboardInterrupt:
            bar.stop()
            err_console.print(
                f"snapshot interrupted: site {agent.link.target!r} is incomplete and marked so;"
                " the next 'hotsite replicate' or 'hotsite snapshot' reloads it from the start"
            )
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    console.print(
        f"snapshot: {result.tables} tables, {result.rows} rows loaded into {agent.link.target}"
        f" in {time.monotonic() - started:.1f}s; streaming resumes at {result.position}"
    )


@app.command()
def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Positions and lag per stage (capture, ship, apply) for every replication link.

    With a dr: section, first which site is primary, the epoch, the lease and each
    site's read-only/fence state and the entry point's routing, as 'hotsite record'.

    Exit status: 0 every link is healthy, 1 a link has an error (a server unreachable,
    no position yet, an unreadable journal) or (dr) more than one site is writable,
    2 a usage or project-file error.
    """
    config: ProjectConfig = project(ctx)
    reports = [link_report(config, link) for link in config.replication]
    for link, report in zip(config.replication, reports, strict=True):
        failing = duty_errors(config, link.target).get(f"link {link.source}->{link.target}")
        if failing:  # the agent runs it, but it fails and waits to restart
            report["errors"].append(f"the agent of {link.target} restarts this link: {failing}")
    unhealthy = any(report["errors"] for report in reports)
    dr = dr_report(config) if config.dr is not None else None
    if as_json:
        shown: Any = reports if dr is None else {"links": reports, "dr": dr}
        console.print_json(json.dumps(shown, default=str))
        raise typer.Exit(1 if unhealthy or (dr is not None and dr_failing(dr)) else 0)
    if dr is not None:  # which site is primary first: it says which links carry writes
        show_dr_report(dr)
        unhealthy = dr_problems(dr) or unhealthy
    table = Table("link", "stage", "position", "behind (tx)", "lag", "rate", title="replication")
    for report in reports:
        name = report["link"]
        for stage in ("source", "capture", "ship", "apply"):
            info = report[stage]
            lag = info.get("lag_seconds")
            table.add_row(
                name,
                stage,
                info.get("position") or "-",
                "" if info.get("behind") is None else str(info["behind"]),
                "" if lag is None else f"{lag:.2f}s",
                "" if not info.get("rate") else f"{info['rate']:.0f} tx/s",
            )
            name = ""
        conflicts = report["apply"].get("conflicts")
        if conflicts:
            per_table = ", ".join(f"{t} {n}" for t, n in sorted(conflicts.items()))
            parked = report["apply"].get("parked") or 0
            table.add_row("", "conflicts", Text(f"{per_table} ({parked} parked)"), "", "", "")
        for error in report["errors"]:
            # Text, not markup: a message may hold '[...]'.
            table.add_row("", Text("error", style="red"), Text(error), "", "", "")
    console.print(table)
    failed = healing_failures(config)  # services healing gave up on (docs/blueprints.md)
    for line in failed:
        console.print(Text(line, style="bold red"))
    raise typer.Exit(1 if unhealthy or failed else 0)
