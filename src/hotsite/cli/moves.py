"""Moves: failover, relocate, failback, resume, and their history."""

from __future__ import annotations

import datetime
import json

import typer
from rich.table import Table

from hotsite.cli.app import app, console, print_warning, project
from hotsite.dr import (
    FailbackResult,
    History,
    MoveResult,
    ProjectResync,
    failback,
    failover,
    move_context,
    move_lock,
    relocate,
    resume,
)
from hotsite.errors import ConfigError
from hotsite.state import StateStore

TO = typer.Option(..., "--to", help="The site that becomes primary.")
APPLY_TIMEOUT = typer.Option(
    30.0, "--apply-timeout", help="Seconds to wait for the new primary to apply (default 30)."
)


@app.command("failover")
def failover_command(
    ctx: typer.Context,
    target: str = TO,
    apply_timeout: float = APPLY_TIMEOUT,
    force: bool = typer.Option(
        False,
        "--force",
        help="Also when the primary is unreachable and held no lease (make sure it is down).",
    ),
) -> None:
    """Emergency move: fence the primary where reachable (or wait out its lease), apply
    what reached TARGET's journal, promote TARGET, switch traffic, start the next epoch."""
    config = project(ctx)
    config.site(target)
    with move_lock(config):
        context = move_context(config, apply_timeout, console.print)
        _report(failover(context, target, force=force))


@app.command("relocate")
def relocate_command(
    ctx: typer.Context, target: str = TO, apply_timeout: float = APPLY_TIMEOUT
) -> None:
    """Planned move, zero loss: drain and fence the primary, wait until TARGET has applied
    every transaction it committed (GTID), promote TARGET, switch traffic. Rolled back
    (the primary writable again) when TARGET does not catch up in time."""
    config = project(ctx)
    config.site(target)
    with move_lock(config):
        _report(relocate(move_context(config, apply_timeout, console.print), target))


@app.command("failback")
def failback_command(
    ctx: typer.Context,
    stay: bool = typer.Option(
        False,
        "--stay",
        help="Stop once the old primary is re-synchronised (a fenced replica); no relocate.",
    ),
    apply_timeout: float = APPLY_TIMEOUT,
    catch_up_timeout: float = typer.Option(
        120.0, "--catch-up-timeout", help="Seconds for the old primary to catch up (default 120)."
    ),
) -> None:
    """After a failover: export and undo the old primary's errant tail (or re-snapshot
    it), re-synchronise it from the new primary, verify both identical, then relocate
    the service back to it (not with --stay)."""
    config = project(ctx)
    with move_lock(config):
        context = move_context(config, apply_timeout, console.print)
        _report_failback(
            failback(context, ProjectResync(config), stay=stay, catch_up_timeout=catch_up_timeout)
        )


@app.command("resume")
def resume_command(ctx: typer.Context, apply_timeout: float = APPLY_TIMEOUT) -> None:
    """Finish the move in flight after the command running it died (a failover is carried
    to its end; a relocate is rolled back unless it had promoted), and say which."""
    config = project(ctx)
    with move_lock(config):
        result = resume(move_context(config, apply_timeout, console.print))
    if result is None:
        console.print("no move in flight")
        return
    _report(result)


@app.command("history")
def history_command(
    ctx: typer.Context,
    action: str = typer.Argument("list", help="'list', or 'show' with a move id."),
    move_id: str = typer.Argument("", help="The move to show (a unique prefix is enough)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The moves made, newest first ('hotsite history show ID': one move's timeline)."""
    config = project(ctx)
    history = History(StateStore(config.home / "state.db"))
    if action == "show":
        move = history.get(move_id)
        if move is None:
            raise ConfigError(f"no move {move_id!r}", "'hotsite history' lists the moves")
        if as_json:
            console.print_json(json.dumps(move.as_dict()))
            return
        data = move.as_dict()
        # Healing and bursting change no epoch: their entries say what they did instead.
        epochs = f", epoch {move.epoch_before} -> {move.epoch_after}"
        if move.kind in ("heal", "burst"):
            epochs = "".join(
                f", {k} {data[k]}" for k in ("action", "direction", "service") if data.get(k)
            )
        console.print(
            f"{move.kind} {move.id}: {move.source} -> {move.target}, {move.outcome}{epochs}",
            highlight=False,
            soft_wrap=True,
        )
        for step in data["steps"]:
            detail = f"  {step['detail']}" if step["detail"] else ""
            console.print(
                f"  +{step['after']:7.3f}s  {step['step']}{detail}", highlight=False, soft_wrap=True
            )
        return
    if action != "list":
        raise ConfigError(f"unknown history action {action!r}", "use 'list' or 'show ID'")
    moves = history.moves()
    if as_json:
        console.print_json(json.dumps([m.as_dict() for m in moves]))
        return
    table = Table("id", "kind", "from", "to", "started", "outcome", "switch", "RPO")
    for m in moves:
        started = datetime.datetime.fromtimestamp(m.started, datetime.UTC).strftime("%F %T")
        # A heal's or a burst's figure is its time until healthy or serving.
        switch = next(
            (m.summary[k] for k in ("switch_seconds", "healthy_seconds", "reaction_seconds")
             if m.summary.get(k) is not None),
            None,
        )  # fmt: skip
        rpo = m.summary.get("rpo_transactions")
        table.add_row(
            m.id, m.kind, m.source, m.target, started, m.outcome,
            "" if switch is None else f"{switch:.3f}s", "?" if rpo is None else str(rpo),
        )  # fmt: skip
    console.print(table)


def _report(result: MoveResult) -> None:
    rpo = (
        "unknown" if result.rpo_transactions is None else f"{result.rpo_transactions} transactions"
    )
    console.print(
        f"{result.kind} {result.id} {result.outcome}: {result.target} primary at epoch"
        f" {result.epoch}; traffic switched {result.switch_seconds:.3f} s after the decision;"
        f" RPO {rpo}",
        highlight=False,
        soft_wrap=True,
    )
    if result.write_pause_seconds is not None:
        console.print(f"write pause {result.write_pause_seconds:.3f} s (fenced → traffic switched)")
    if result.requests_failed is not None:
        console.print(
            f"requests held at the entry point during the switch; {result.requests_failed}"
            " could not be (answered 5xx)"
        )
    for note in result.notes:
        print_warning(note)


def _report_failback(result: FailbackResult) -> None:
    home = (
        f"{result.old} primary at epoch {result.relocate.epoch}"
        if result.relocate
        else f"{result.old} a replica of {result.new}"
    )
    console.print(
        f"failback {result.id} done: errant tail of {result.tail_transactions} transactions"
        f" ({result.tail_rows} row changes) exported to {result.export[0]}; {result.method};"
        f" {home}",
        highlight=False,
        soft_wrap=True,
    )
    if result.relocate is not None:
        _report(result.relocate)
    for note in result.notes:
        if result.relocate is None or note not in result.relocate.notes:
            print_warning(note)
