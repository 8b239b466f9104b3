"""Failback: after a failover, bring the old primary back as a replica of the new one,
re-synchronised, then move the service home (the existing relocate).

The steps, each written to the failback's timeline (``dr.history``, kind ``failback``):

1. **decided** — the last finished move must be a failover to the record's primary (else
   there is nothing to undo: refused); both sites must answer;
2. **fenced** — the old primary is fenced (kind ``move``) again: read-only, its writers
   cut, for as long as it is a replica (the relocate back lifts it);
3. **tail found** — its errant tail (its own transactions the new primary never applied,
   by GTID) is read from its binlog;
4. **exported** — to ``<state_dir>/failback/<id>.jsonl`` and ``.sql``, and to its
   conflict log, before anything is undone: never silently dropped;
5. **undone** (one transaction, marked as hotsite's own so no link ships it) or, where
   undoing is impossible, **re-snapshotted** from the new primary;
6. **caught up** — the link new→old runs (in this process) until the old primary has
   applied everything the new one had committed; **verified** — ``hotsite verify``
   finds both identical;
7. **relocated** — the relocate back (its own move, with its own timeline), unless
   ``stay``: then the old primary stays a fenced replica and the link is left to the site
   agent or ``hotsite replicate``.

The resynchronisation (steps 2–6) is not a move in the record: the new primary keeps its
lease and takes writes meanwhile. Another move started meanwhile from this machine is
refused (the move lock); the relocate is a move like any other.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hotsite.dr.moves import MoveContext, MoveRefused, MoveResult, mark_standby, relocate
from hotsite.errors import HotsiteError
from hotsite.replication.errant import CannotUndo, ErrantTail
from hotsite.replication.gtid import GtidState


class Resync(Protocol):
    def links(self, old: str, new: str) -> Any: ...
    def holding(self, old: str, new: str) -> AbstractContextManager[None]: ...
    def errant_tail(self, old: str, new: str) -> ErrantTail: ...
    def export(self, tail: ErrantTail, name: str) -> tuple[Path, Path, int]: ...
    def undo(self, tail: ErrantTail, old: str, new: str) -> int: ...
    def log_resnapshot(self, tail: ErrantTail, old: str, new: str) -> None: ...
    def resnapshot(self, old: str, new: str) -> int: ...
    def seed(self, old: str, new: str, promoted: GtidState) -> None: ...
    def streaming(self, new: str, old: str) -> AbstractContextManager[None]: ...
    def caught_up(self, new: str, old: str, timeout: float) -> bool: ...
    def verify(self, new: str, old: str) -> tuple[bool, str]: ...


@dataclass
class FailbackResult:
    id: str
    old: str  # the site brought back (primary again unless stay)
    new: str  # the site that had taken over
    tail_transactions: int
    tail_rows: int
    export: tuple[str, str]
    method: str  # undone, re-snapshotted, nothing to undo
    relocate: MoveResult | None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "tail_transactions": self.tail_transactions,
            "tail_rows": self.tail_rows,
            "export": list(self.export),
            "method": self.method,
            "relocate": self.relocate.id if self.relocate else None,
            "notes": self.notes,
        }


def failback(
    ctx: MoveContext,
    resync: Resync,
    stay: bool = False,
    catch_up_timeout: float = 120.0,
    relocate_move: Callable[[MoveContext, str], MoveResult] = relocate,
) -> FailbackResult:
    record, failover = _the_failover(ctx)
    new, old = record.primary, failover.source
    for site in (old, new):
        if not ctx.sites.reachable(site):
            raise MoveRefused(
                f"site {site!r} is not reachable: its database does not answer",
                "a failback needs both sites; bring it back and retry",
            )
    resync.links(old, new)  # both directions configured, or refused before anything
    # Both links' locks for the whole failback: nothing else streams either way while
    # the tail is dealt with, and a link already running is refused before anything.
    with resync.holding(old, new):
        return _resynchronise(ctx, resync, record, failover, stay, catch_up_timeout, relocate_move)


def _resynchronise(
    ctx: MoveContext, resync: Resync, record: Any, failover: Any, stay: bool,
    catch_up_timeout: float, relocate_move: Callable[[MoveContext, str], MoveResult],
) -> FailbackResult:  # fmt: skip
    new, old = record.primary, failover.source
    move_id = f"fb-{uuid.uuid4().hex[:10]}"
    ctx.history.begin(move_id, "failback", new, old, record.epoch)
    notes: list[str] = []
    say = ctx.say
    say(f"failback {move_id}: {old} re-synchronised from {new}, then home")

    def step(name: str, detail: str = "") -> None:
        ctx.history.step(move_id, name, detail)
        say(f"  {name}{': ' + detail if detail else ''}")

    try:
        step("decided", f"undoing failover {failover.id} ({old} -> {new})")
        state = ctx.sites.fence(old, "move", record.epoch, f"failback to {old}: a replica")
        step("fenced", f"{old} read-only, {state.killed} sessions killed")
        tail = resync.errant_tail(old, new)
        step(
            "tail found",
            f"{len(tail.transactions)} transactions, {tail.rows} row changes after"
            f" {tail.start} up to {tail.end}" + (f"; incomplete: {tail.problem}" if tail.problem else ""),
        )  # fmt: skip
        jsonl, sql, entries = resync.export(tail, move_id)
        step("exported", f"{entries} entries to {jsonl} and {sql}")
        method = _settle(ctx, resync, tail, old, new, failover.summary, step, notes)
        moved = None
        with resync.streaming(new, old):
            if not resync.caught_up(new, old, catch_up_timeout):
                raise HotsiteError(
                    f"{old} did not catch up with {new} within {catch_up_timeout:g} s",
                    f"run the link {new}->{old} ('hotsite replicate --from {new} --to {old}'),"
                    f" then 'hotsite relocate --to {old}'",
                )
            step("caught up", f"{old} applied everything {new} had committed")
            identical, verdict = resync.verify(new, old)
            if not identical:
                raise HotsiteError(
                    f"hotsite verify after the re-synchronisation: {verdict}",
                    f"'hotsite verify --from {new} --to {old}' lists the rows; the service"
                    f" stays at {new}",
                )
            step("verified", verdict)
            if not stay:  # the link keeps running: the relocate waits for it to apply all
                moved = relocate_move(ctx, old)
                step("relocated", f"move {moved.id}: {old} primary at epoch {moved.epoch}")
                notes += moved.notes
        if stay:  # a consistent standby now: its site agent may run the link into it
            mark_standby(ctx, move_id, old, new, record.epoch, notes)
            notes.append(
                f"{old} stays a fenced replica of {new} (--stay): run the link {new}->{old}"
                f" (the site agent, or 'hotsite replicate --from {new} --to {old}'), then"
                f" 'hotsite relocate --to {old}' brings the service home"
            )
    except HotsiteError as exc:
        ctx.history.step(move_id, "failed", exc.message)
        ctx.history.finish(move_id, "failed", record.epoch, {"reason": exc.message})
        raise
    result = FailbackResult(
        move_id, old, new, len(tail.transactions), tail.rows, (str(jsonl), str(sql)), method,
        moved, notes,
    )  # fmt: skip
    ctx.history.finish(move_id, "done", moved.epoch if moved else record.epoch, result.summary())
    return result


def _the_failover(ctx: MoveContext) -> tuple[Any, Any]:
    record = ctx.records.read()
    if record is None:
        raise MoveRefused(
            "there is no record of which site is primary yet",
            "start 'hotsite controller' once (it makes the record from dr.primary)",
        )
    if record.move is not None:
        raise MoveRefused(
            f"a {record.move.kind} to {record.move.target} is in flight (move"
            f" {record.move.id}, step {record.move.step})",
            "wait for it, or 'hotsite resume' if the command that ran it died",
        )
    last = ctx.history.last_done()
    if last is None or last.kind != "failover" or last.target != record.primary:
        what = "no move has been made" if last is None else f"the last move was a {last.kind}"
        raise MoveRefused(
            f"there is no failover to undo: {what} ({record.primary} primary at epoch"
            f" {record.epoch})",
            "failback follows a failover; to move the service use 'hotsite relocate --to SITE'",
        )
    return record, last


def _settle(
    ctx: MoveContext, resync: Resync, tail: ErrantTail, old: str, new: str,
    failover: dict[str, Any], step: Callable[[str, str], None], notes: list[str],
) -> str:  # fmt: skip
    """Undo the tail, or re-snapshot the old primary where that is impossible."""
    promoted = failover.get("promoted_position")
    why = None
    if promoted is None:
        why = f"the failover recorded no position of {new} before its promotion"
    elif tail.empty:
        resync.seed(old, new, GtidState.parse(promoted))
        step("undone", "nothing to undo")
        return "nothing to undo"
    else:
        try:
            undone = resync.undo(tail, old, new)
            resync.seed(old, new, GtidState.parse(promoted))
            step("undone", f"{undone} row changes undone on {old} in one transaction")
            return "undone"
        except CannotUndo as exc:
            why = exc.message
    step("undo impossible", why)
    resync.log_resnapshot(tail, old, new)
    rows = resync.resnapshot(old, new)
    step("re-snapshotted", f"{old} loaded from {new}: {rows} rows")
    notes.append(f"{old} was re-snapshotted from {new}: {why}")
    return "re-snapshotted"
