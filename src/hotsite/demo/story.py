"""The story the demo tells, step by step, on two running sites:

kill the primary site → the controller detects it and fails over by itself → the
service answers from the DR site → the old primary comes back → failback (its errant
tail reported) → relocate home → verify both sites identical.

Each step is timed (``Steps``); each move's timeline is read from hotsite's own history
and its RTO and RPO measured from the client's acknowledged writes (measure.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hotsite.demo.control import Control
from hotsite.demo.load import MARK, WriteLoad
from hotsite.demo.measure import client_view
from hotsite.demo.sites import DATABASE, LocalSite
from hotsite.errors import HotsiteError

STEADY = 4.0  # seconds of normal service before the primary dies, and after each move


@dataclass
class Step:
    name: str
    started: float
    ended: float | None = None
    detail: str = ""


@dataclass
class Steps:
    items: list[Step] = field(default_factory=list)
    on_change: Callable[[str], None] = lambda name: None

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        item = Step(name, time.time())
        self.items.append(item)
        self.on_change(name)
        try:
            yield item
        finally:
            item.ended = time.time()

    def current(self) -> str:
        return self.items[-1].name if self.items else "starting"


@dataclass
class Story:
    primary: LocalSite
    dr: LocalSite
    control: Control
    load: WriteLoad
    steps: Steps
    say: Callable[[str], None]
    moves: list[dict[str, Any]] = field(default_factory=list)
    errant: dict[str, Any] = field(default_factory=dict)
    verify: dict[str, Any] = field(default_factory=dict)
    _held_at_failover: set[int] = field(default_factory=set)

    def run(self) -> None:
        # No hand on the failover: the controller's probes and the DR agent's health
        # reports (hotsite.dr.peers) declare the primary dead, and it moves by itself.
        with self.steps.step("normal service on primary"):
            self._serve(self.primary.name, STEADY)
        failover = self.kill_primary_and_fail_over()
        with self.steps.step("service answers from dr"):
            self._serve(self.dr.name, STEADY)
        with self.steps.step("old primary comes back"):
            self.bring_back_primary(failover)
        with self.steps.step("failback: primary re-synchronised from dr, then home"):
            self.errant = self.fail_back()
        with self.steps.step("service answers from primary again"):
            self._serve(self.primary.name, STEADY)
        with self.steps.step("verify both sites identical"):
            self.verify = self.verify_identical()

    def correct(self) -> bool:
        """The story ran and nothing is wrong with the data: the sites are identical and
        hold every acknowledged write, and the planned move lost none. (A machine too
        loaded for the RTO goals is reported in the verdicts, not as a failure.)"""
        relocates = [m for m in self.moves if m["kind"] == "relocate"]
        return bool(
            self.verify.get("identical")
            and not any(self.verify.get("acknowledged_missing", {}).values())
            and relocates
            and all(m["client"]["rpo_writes"] == 0 for m in relocates)
        )

    # -- the failover ---------------------------------------------------------------

    def kill_primary_and_fail_over(self) -> float:
        with self.steps.step("primary site killed") as step:
            died = time.time()
            # The whole site at once: its agent, web node, load balancer and database.
            self.control.kill_agent(self.primary.name)
            self.primary.kill()
            step.detail = "kill -9: agent, app, load balancer, mariadbd"
            self.say("primary site killed (kill -9 of its agent, app, load balancer, database)")
        with self.steps.step("controller detects and fails over"):
            move = self._wait_move("failover", self.dr.name, died, timeout=60)
            self._wait_served(self.dr.name, died, timeout=30)
        held = self.held(self.dr)
        self._held_at_failover = held
        self._add_move(move, died, self.dr.name, held, "the primary site's death")
        return died

    # -- the old primary's return, failback, relocate ----------------------------------

    def bring_back_primary(self, died: float) -> None:
        self.primary.start_db()
        self.control.start_agent(self.primary.name)
        self.control.wait_agent(self.primary.name)
        self.primary.start_web()
        self.primary.wait_healthy()
        self.say("primary is back: its agent keeps it read-only (dr holds the lease)")

    def fail_back(self) -> dict[str, Any]:
        """``hotsite failback``: primary's errant tail (what it committed that dr never
        applied) exported and undone, primary re-synchronised from dr and verified, then
        the service relocated home — one command, as a user runs it."""
        asked = time.time()
        self.control.checked(
            "failback", "--apply-timeout", "30", "--catch-up-timeout", "90", timeout=300
        )
        fb = next(
            m for m in self.control.moves() if m["kind"] == "failback" and m["started"] >= asked - 1
        )
        errant = {
            "transactions": fb.get("tail_transactions", 0),
            "rows": fb.get("tail_rows", 0),
            "exported_to": fb.get("export", []),
            "handled": fb.get("method", ""),
        }
        self.say(
            f"failback {fb['id']}: primary's errant tail {errant['transactions']} transactions"
            f" ({errant['rows']} rows), {errant['handled'] or 'nothing to undo'}"
        )
        move = self._wait_move("relocate", self.primary.name, asked, timeout=60)
        # The planned move's event is its decision (the command takes a while to start).
        decided = next(
            s["at"] for s in self.control.move(move["id"])["steps"] if s["step"] == "decided"
        )
        self._wait_served(self.primary.name, decided, timeout=30)
        held = self.held(self.primary)
        self._add_move(move, decided, self.primary.name, held, "the relocate's decision")
        return errant

    def verify_identical(self) -> dict[str, Any]:
        self.load.stop()
        done = self.control.run(
            "verify", "--link", f"{self.primary.name}-to-{self.dr.name}", "--json", "--quiet",
            "--wait-timeout", "60", timeout=180,
        )  # fmt: skip
        try:
            report: dict[str, Any] = json.loads(done.stdout)
        except ValueError:
            report = {"error": (done.stderr or done.stdout).strip()[-500:]}
        acked = {w.seq for w in self.load.snapshot() if w.ok}
        missing = {
            site.name: sorted(acked - self.held(site))[:100] for site in (self.primary, self.dr)
        }
        return {
            "exit_status": done.returncode,
            "identical": done.returncode == 0,
            "report": report,
            "acknowledged_writes": len(acked),
            "acknowledged_missing": missing,
        }

    # -- helpers ----------------------------------------------------------------------

    def held(self, site: LocalSite) -> set[int]:
        rows = site.db.execute(
            f"SELECT description FROM {DATABASE}.visits WHERE description LIKE '{MARK}%'"
        )
        return {int(str(row[0]).removeprefix(MARK)) for row in rows}

    def _serve(self, site: str, seconds: float) -> None:
        time.sleep(seconds)
        recent = [w for w in self.load.snapshot()[-50:] if w.ok]
        if not recent or recent[-1].site != site:
            self.say(f"warning: the last writes were not served by {site}")

    def _wait_served(self, site: str, since: float, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(w.ok and w.site == site and w.sent >= since for w in self.load.snapshot()):
            if time.monotonic() > deadline:
                raise HotsiteError(f"no write was acknowledged by {site} within {timeout:g} s")
            time.sleep(0.05)

    def _wait_move(self, kind: str, target: str, since: float, timeout: float) -> dict[str, Any]:
        """Until the controller's record names ``target`` primary with no move in flight
        (its API answers at once; the state store may be busy with the move's writes),
        then that move from hotsite's history."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                record = self.control.record()
            except HotsiteError:
                record = {}
            if record.get("primary") == target and record.get("move") is None:
                for move in self.control.moves():
                    if (move["kind"], move["to"]) == (kind, target) and move[
                        "started"
                    ] >= since - 1:
                        return move
            if time.monotonic() > deadline:
                raise HotsiteError(f"no {kind} to {target} finished within {timeout:g} s")
            time.sleep(0.1)

    def _add_move(
        self, move: dict[str, Any], event_at: float, target: str, held: set[int], event: str
    ) -> None:
        shown = self.control.move(move["id"])
        view = client_view(self.load.snapshot(), event_at, target, held)
        shown["client"] = {**view.as_dict(), "event": event}
        self.moves.append(shown)
        rto = "?" if view.rto_seconds is None else f"{view.rto_seconds:.2f} s"
        self.say(
            f"{move['kind']} {move['from']} -> {move['to']} done: RTO {rto} (client write gap),"
            f" RPO {len(view.lost)} acknowledged writes lost"
        )


def _scalar(site: LocalSite, sql: str, *args: object) -> str:
    conn = site.db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args or None)
            row = cur.fetchone()
        return "" if row is None or row[0] is None else str(row[0])
    finally:
        conn.close()
