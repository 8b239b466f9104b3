"""Failover and relocate: moving the primary to another site, never with two writable.

Each move is a function over small interfaces — the record, the sites' databases, the
replication positions, the entry point — so the site agent can plug its own versions in
(over HTTP, with both-directions links) without changing the order of the steps, which
is where the safety lies:

1. the move is recorded (compare-and-set on the epoch): from now on the old primary's
   lease is never renewed, and a second move is refused;
2. traffic is taken off the old primary, and its sessions cut;
3. the old primary is fenced where reachable; where not, the move waits until its lease
   has certainly ended (``lease_expires + clock_margin``): by then it fenced itself;
4. apply finishes what reached the new primary's journal (failover), or everything the
   old primary committed, by GTID (relocate: zero loss, or no move at all);
5. the new primary is made writable, the record names it at epoch + 1, traffic goes there.

Every step is written to the move's timeline (``dr.history``) as it happens, and is
safe to repeat, so a move interrupted by a crash is completed by running it again
(``resume``), or — a relocate that had not promoted yet — rolled back.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hotsite.dr.fence import FenceState
from hotsite.dr.history import History
from hotsite.dr.record import Move, Record, RecordStore
from hotsite.errors import HotsiteError
from hotsite.faults import fault_point
from hotsite.replication.gtid import GtidState


class MoveRefused(HotsiteError):
    """A move that cannot start (or was rolled back): nothing was made writable."""


class Sites(Protocol):
    def reachable(self, site: str) -> bool: ...
    def fence(self, site: str, kind: str, epoch: int | None, reason: str) -> FenceState: ...
    def unfence(self, site: str) -> FenceState: ...
    def mark_standby(self, site: str, of: str, epoch: int) -> None:
        """``site`` is a consistent standby of ``of`` at ``epoch`` (dr.standby)."""


class Positions(Protocol):
    def committed(self, site: str) -> GtidState: ...
    def shipped(self, source: str, target: str) -> GtidState | None: ...
    def applied(self, source: str, target: str) -> GtidState | None: ...


class Traffic(Protocol):
    def drain(self, site: str) -> None: ...
    def cut(self, site: str) -> None: ...
    def route(self, sites: set[str]) -> None: ...
    def unheld(self) -> int | None:
        """Requests that failed while the switch held them (None: nothing was held)."""

    def served(self, old: str, new: str, timeout: float) -> tuple[float | None, float | None]:
        """(old's last successful answer during the move, new's first after the switch),
        wall clock, None where unseen (dr.served)."""


@dataclass
class MoveContext:
    records: RecordStore
    history: History
    sites: Sites
    positions: Positions
    traffic: Traffic
    clock_margin: float
    apply_timeout: float = 30.0
    poll: float = 0.02
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    say: Callable[[str], None] = lambda line: None  # progress, one line per step
    # The replication links configured, (source, target): a move says when none carries
    # the new primary's writes back to the old one.
    links: frozenset[tuple[str, str]] = frozenset()


@dataclass
class MoveResult:
    id: str
    kind: str
    source: str
    target: str
    epoch: int
    outcome: str  # done, rolled back
    rpo_transactions: int | None  # None: the old primary could not be read
    switch_seconds: float  # decided → traffic switched (promoted, if it could not be)
    notes: list[str] = field(default_factory=list)
    # failover: the primary's last sign of life (the controller last reached it) →
    # traffic switched; relocate: the write pause, fenced → traffic switched.
    since_failure_seconds: float | None = None
    write_pause_seconds: float | None = None
    # The new primary's own binlog position just before it became writable: every write
    # it took as primary is after it, so a link back to the old primary starts there
    # (failback). None when it could not be read, or a resumed move had promoted already.
    promoted_position: str | None = None
    # Requests the entry point answered 5xx from the hold to the switch: what the switch
    # could not hold (None: no entry point held any).
    requests_failed: int | None = None
    # decided → the new primary's first successful answer through the entry point; and
    # write to write: the old primary's last one during the move (or, where it served
    # none — it had died before — the controller's last contact with it) → that first.
    # None where the entry point did not see them (no entry point, no traffic).
    first_write_seconds: float | None = None
    rto_seconds: float | None = None

    def summary(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "rpo_transactions": self.rpo_transactions,
            "switch_seconds": round(self.switch_seconds, 3),
            "notes": self.notes,
        }
        for key in (
            "since_failure_seconds", "write_pause_seconds", "first_write_seconds", "rto_seconds"
        ):  # fmt: skip
            value = getattr(self, key)
            if value is not None:
                found[key] = round(value, 3)
        if self.promoted_position is not None:
            found["promoted_position"] = self.promoted_position
        if self.requests_failed is not None:
            found["requests_failed"] = self.requests_failed
        return found


def failover(
    ctx: MoveContext,
    target: str,
    resume: Move | None = None,
    detected: str | None = None,
    failed_at: float | None = None,
    force: bool = False,
) -> MoveResult:
    """Emergency: the old primary may be dead; what reached the target's journal is
    applied, the rest is the RPO. ``detected``: why the controller declared it dead;
    ``failed_at``: when it last reached it (wall clock).

    An unreachable primary is trusted to have stopped writing only if it held the lease
    (its agent's lease keeper fences it when the lease ends); one that never did is
    refused unless ``force``."""
    if resume is None and not force:
        _require_a_lease_or_reach(ctx, target)
    record, move = _begin(ctx, "failover", target, resume, needs_old=False)
    old, epoch = record.primary, record.epoch + 1
    notes: list[str] = []
    if detected:
        ctx.history.step(move.id, "failure detected", detected)
    started = ctx.history.step(move.id, "decided", f"{old} -> {target}, epoch {epoch}")
    _try(ctx, move, "traffic cut", lambda: ctx.traffic.cut(old), notes, f"from {old}")
    old_reachable = ctx.sites.reachable(old)
    fenced = old_reachable and _fence(ctx, move, old, epoch, f"failover to {target}", notes)
    if not fenced:
        # Unreachable (or it refused): it fences itself before its lease ends, and the
        # record has renewed no lease since the move began.
        until = record.lease_expires + ctx.clock_margin
        _wait(ctx, lambda: ctx.clock() >= until, None)
        ctx.history.step(move.id, "lease expired", f"{old}'s lease ended, + {ctx.clock_margin} s")
    shipped = ctx.positions.shipped(old, target) or GtidState()
    applied = _wait_applied(ctx, move, old, target, shipped, notes)
    rpo = None
    if old_reachable:
        try:
            rpo = applied.behind(ctx.positions.committed(old))
        except HotsiteError as exc:
            notes.append(f"the RPO is unknown: {old} could not be read ({exc.message})")
    else:
        notes.append(f"the RPO is unknown: {old} is unreachable (its unshipped tail is lost)")
    if (target, old) not in ctx.links:
        notes.append(_link_back(ctx, target, old) + " ('hotsite failback' needs it)")
    result = _promote(ctx, move, old, target, started, rpo, notes)
    if failed_at is not None:
        result.since_failure_seconds = started + result.switch_seconds - failed_at
    _first_write(ctx, move, result, old, target, started, failed_at)
    ctx.history.finish(move.id, "done", result.epoch, result.summary())
    return result


def relocate(ctx: MoveContext, target: str, resume: Move | None = None) -> MoveResult:
    """Planned, zero loss: the target applies every transaction the old primary
    committed (GTID equality) before it is promoted, or the move is rolled back."""
    record, move = _begin(ctx, "relocate", target, resume, needs_old=True)
    old, epoch = record.primary, record.epoch + 1
    notes: list[str] = []
    started = ctx.history.step(move.id, "decided", f"{old} -> {target}, epoch {epoch}")
    try:
        _try(ctx, move, "drained", lambda: ctx.traffic.drain(old), notes, f"{old}: no new sessions")
        if not _fence(ctx, move, old, epoch, f"relocate to {target}", notes):
            raise MoveRefused(f"{old} could not be fenced ({'; '.join(notes)})")
        fenced_at = ctx.clock()
        _try(ctx, move, "traffic cut", lambda: ctx.traffic.cut(old), notes, f"from {old}")
        goal = ctx.positions.committed(old)
        applied = _wait_applied(ctx, move, old, target, goal, notes)
        if not applied.reached(goal):
            raise MoveRefused(
                f"{target} did not apply everything {old} committed within"
                f" {ctx.apply_timeout:g} s ({applied.behind(goal)} transactions behind)"
            )
    except HotsiteError as exc:
        _roll_back(ctx, move, old, str(exc))
        raise MoveRefused(
            f"relocate to {target} rolled back: {exc.message}; {old} is primary again",
            "check that replication runs ('hotsite status'), then retry",
        ) from None
    result = _promote(ctx, move, old, target, started, 0, notes)
    result.write_pause_seconds = started + result.switch_seconds - fenced_at
    # The old primary served until the move began: where the entry point saw no answer
    # of its during the move (none was in flight at the drain), that is its last one.
    _first_write(ctx, move, result, old, target, started, started)
    # It had applied everything before the switch: the link back may run into it.
    mark_standby(ctx, move.id, old, target, result.epoch, notes)
    ctx.history.finish(move.id, "done", result.epoch, result.summary())
    result.notes.append(_link_back(ctx, target, old))
    return result


def mark_standby(
    ctx: MoveContext, move_id: str, site: str, of: str, epoch: int, notes: list[str]
) -> None:
    try:
        ctx.sites.mark_standby(site, of, epoch)
        ctx.history.step(move_id, "standby marked", f"{site} a standby of {of} at epoch {epoch}")
    except HotsiteError as exc:
        notes.append(f"{site} not marked a standby of {of}: {exc.message}")
        ctx.history.step(move_id, "standby mark failed", exc.message)


def _link_back(ctx: MoveContext, new: str, old: str) -> str:
    if (new, old) in ctx.links:
        return (
            f"the link {new}->{old} now carries the writes back ({old} is the standby): the"
            f" site agent of {old} runs it, or 'hotsite replicate --from {new} --to {old}'"
        )
    return (
        f"nothing replicates back from {new} to {old}: no link {new}->{old} is configured;"
        f" add {{from: {new}, to: {old}}} under replication: to keep {old} as the standby"
    )


def resume(ctx: MoveContext) -> MoveResult | None:
    """The move in flight (a command or controller died mid-way): a failover is carried
    to its end; a relocate that had not promoted is rolled back, one that had, finished."""
    record = ctx.records.read()
    if record is None or record.move is None:
        return None
    move = record.move
    # The command may have died between recording the move and its timeline.
    ctx.history.begin(move.id, move.kind, record.primary, move.target, record.epoch)
    if move.kind == "failover":
        return failover(ctx, move.target, resume=move)
    if move.kind == "relocate":
        if move.step in ("promoted", "epoch"):
            return failover(ctx, move.target, resume=move)
        _roll_back(ctx, move, record.primary, "interrupted before the promotion")
        return MoveResult(
            move.id, "relocate", record.primary, move.target, record.epoch, "rolled back",
            None, 0.0, [f"rolled back: {record.primary} is primary again"],
        )  # fmt: skip
    raise MoveRefused(f"cannot resume a move of kind {move.kind!r} ({move.id})")


# -- steps ----------------------------------------------------------------------------


def _require_a_lease_or_reach(ctx: MoveContext, target: str) -> None:
    record = ctx.records.read()
    if record is None or record.move is not None or record.primary == target:
        return  # _begin refuses these, in its own words
    if record.lease_holder == record.primary or ctx.sites.reachable(record.primary):
        return
    raise MoveRefused(
        f"the primary {record.primary!r} is unreachable and has held no lease at epoch"
        f" {record.epoch}: nothing makes sure it stopped taking writes",
        f"run its agent (the lease keeper), or make sure it is down or fenced, then"
        f" 'hotsite failover --to {target} --force'",
    )


def _begin(
    ctx: MoveContext, kind: str, target: str, resume: Move | None, needs_old: bool
) -> tuple[Record, Move]:
    record = ctx.records.read()
    if record is None:
        raise MoveRefused(
            "there is no record of which site is primary yet",
            "start 'hotsite controller' once (it makes the record from dr.primary)",
        )
    if resume is not None:
        ctx.history.step(resume.id, "resumed", f"at step {resume.step}")
        return record, resume
    if record.move is not None:
        raise MoveRefused(
            f"a {record.move.kind} to {record.move.target} is in flight (move"
            f" {record.move.id}, step {record.move.step})",
            "wait for it, or 'hotsite resume' if the command that ran it died",
        )
    if target == record.primary:
        raise MoveRefused(
            f"site {target!r} is already primary (epoch {record.epoch})",
            "nothing to do; 'hotsite status' shows the record",
        )
    if not ctx.sites.reachable(target):
        raise MoveRefused(
            f"site {target!r} is not reachable: its database does not answer",
            "bring it back (or pick another site) and retry",
        )
    if needs_old:
        if not ctx.sites.reachable(record.primary):
            raise MoveRefused(
                f"the primary {record.primary!r} is not reachable: a relocate needs it",
                f"use 'hotsite failover --to {target}' (emergency, may lose its unshipped tail)",
            )
        if ctx.positions.applied(record.primary, target) is None:
            raise MoveRefused(
                f"site {target!r} has no replication position from {record.primary!r}:"
                " it is not caught up",
                "run replication ('hotsite replicate') until 'hotsite status' shows it caught up",
            )
    move = Move(f"{kind[:2]}-{uuid.uuid4().hex[:10]}", kind, target, ctx.clock())
    ctx.records.begin_move(move, record.epoch)  # compare-and-set: one move wins
    ctx.history.begin(move.id, kind, record.primary, target, record.epoch)
    ctx.say(
        f"{kind} {move.id}: {record.primary} -> {target} (epoch {record.epoch} -> {record.epoch + 1})"
    )
    return ctx.records.read() or record, move


def _step(ctx: MoveContext, move: Move, step: str, detail: str = "") -> float:
    at = ctx.history.step(move.id, step, detail)
    ctx.records.advance_move(move.id, step)
    ctx.say(f"  {step}{': ' + detail if detail else ''}")
    return at


def _try(
    ctx: MoveContext, move: Move, step: str, action: Callable[[], None], notes: list[str],
    detail: str,
) -> None:  # fmt: skip
    try:
        action()
        _step(ctx, move, step, detail)
    except HotsiteError as exc:
        notes.append(f"{step}: {exc.message}")
        ctx.history.step(move.id, f"{step} failed", exc.message)


def _fence(
    ctx: MoveContext, move: Move, site: str, epoch: int, reason: str, notes: list[str]
) -> bool:
    try:
        state = ctx.sites.fence(site, "move", epoch, reason)
    except HotsiteError as exc:
        notes.append(f"fencing {site} failed: {exc.message}")
        ctx.history.step(move.id, "fence failed", exc.message)
        return False
    _step(ctx, move, "fenced", f"{site} read-only, {state.killed} sessions killed")
    accounts = [a for a in state.bypass if a != "?"]
    if accounts:
        notes.append(f"{site}: accounts {', '.join(accounts)} can write through read_only")
    return True


def _wait_applied(
    ctx: MoveContext, move: Move, source: str, target: str, goal: GtidState, notes: list[str]
) -> GtidState:
    latest: list[GtidState] = [GtidState()]

    def reached() -> bool:
        latest[0] = ctx.positions.applied(source, target) or GtidState()
        return latest[0].reached(goal)

    if _wait(ctx, reached, ctx.apply_timeout):
        _step(ctx, move, "applied to the end", f"{target} at {latest[0]}")
    else:
        notes.append(
            f"{target} had not applied up to {goal} after {ctx.apply_timeout:g} s"
            f" ({latest[0].behind(goal)} transactions short)"
        )
        ctx.history.step(move.id, "apply timed out", str(latest[0]))
    return latest[0]


def _promote(
    ctx: MoveContext, move: Move, old: str, target: str, started: float, rpo: int | None,
    notes: list[str],
) -> MoveResult:  # fmt: skip
    """The target writable, named primary at the next epoch, traffic to it; the caller
    finishes the move's history once it has its figures."""
    promoted_at = _position_before_writes(ctx, move, target, notes)
    # The record says "promoted" before the target is writable: a move that dies in
    # between is carried forward on resume (the unfence is repeated), never rolled back
    # — a roll-back after the unfence would leave both sites writable.
    ctx.records.advance_move(move.id, "promoted")
    ctx.sites.unfence(target)
    fault_point("move.after_unfence")
    # Without a traffic switch (no entry point), the promotion is when writes resume.
    switched = ctx.history.step(move.id, "promoted", f"{target} writable")
    ctx.say(f"  promoted: {target} writable")
    record = ctx.records.finish_move(move.id)
    ctx.history.step(move.id, "epoch", f"{record.primary} primary at epoch {record.epoch}")
    try:
        ctx.traffic.route({target})
        switched = ctx.history.step(move.id, "traffic switched", f"to {target}")
    except HotsiteError as exc:
        notes.append(f"traffic not switched: {exc.message}")
        ctx.history.step(move.id, "traffic switch failed", exc.message)
    unheld = ctx.traffic.unheld()
    if unheld:
        notes.append(f"{unheld} requests failed at the entry point during the switch")
    result = MoveResult(
        move.id, move.kind, old, target, record.epoch, "done", rpo, switched - started, notes,
        promoted_position=promoted_at, requests_failed=unheld,
    )  # fmt: skip
    ctx.say(f"done: {target} is primary at epoch {record.epoch}")
    return result


# Seconds a move waits to see the new primary's first answer. A client whose request
# went to the old site waits out its own timeout (a few seconds) before it tries again:
# 6 s missed the first write on a loaded CI machine; the wait ends at the first answer.
FIRST_WRITE_WAIT = 15.0


def _first_write(
    ctx: MoveContext, move: Move, result: MoveResult, old: str, target: str, started: float,
    failed_at: float | None,
) -> None:  # fmt: skip
    """The new primary's first successful answer through the entry point, and the write
    to write RTO from the old primary's last one (or, where the entry point saw none
    during the move, from ``failed_at``: the fault's time, or a relocate's start)."""
    try:
        last, first = ctx.traffic.served(old, target, FIRST_WRITE_WAIT)
    except HotsiteError:
        return
    if first is None:
        return
    ctx.history.step(move.id, "first write", f"{target} answered through the entry point", first)
    result.first_write_seconds = first - started
    since = last if last is not None else failed_at
    if since is not None:
        result.rto_seconds = first - since


def _position_before_writes(
    ctx: MoveContext, move: Move, target: str, notes: list[str]
) -> str | None:
    """The target's binlog position while it is still read-only: a resumed move whose
    target was promoted already may have taken writes since, so it records none."""
    if move.step in ("promoted", "epoch"):
        return None
    try:
        return str(ctx.positions.committed(target))
    except HotsiteError as exc:
        notes.append(f"{target}'s position before the promotion is unknown ({exc.message})")
        return None


def _roll_back(ctx: MoveContext, move: Move, old: str, why: str) -> None:
    """A relocate that cannot finish: the old primary is writable again, and takes the
    traffic; the record keeps its primary and epoch."""
    ctx.history.step(move.id, "rolling back", why)
    ctx.sites.unfence(old)
    try:
        ctx.traffic.route({old})
        ctx.traffic.served(old, old, 0.0)  # ends the sampling; no RTO for a roll-back
    except HotsiteError as exc:
        ctx.history.step(move.id, "traffic switch failed", exc.message)
    record = ctx.records.abort_move(move.id)
    ctx.history.step(move.id, "rolled back", f"{old} primary at epoch {record.epoch}")
    ctx.history.finish(move.id, "rolled back", record.epoch, {"reason": why})


def _wait(ctx: MoveContext, done: Callable[[], bool], timeout: float | None) -> bool:
    deadline = None if timeout is None else time.monotonic() + timeout
    while not done():
        if deadline is not None and time.monotonic() >= deadline:
            return False
        ctx.sleep(ctx.poll)
    return True
