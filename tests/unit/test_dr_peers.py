"""The agent's health report, step by step: how long since it last reached each other
site, as the controller's detector reads it (the real processes: test_dr_e2e.py and
test_dr_agent_report.py)."""

from __future__ import annotations

from typing import Any

from hotsite.dr.client import ControllerUnreachable
from hotsite.dr.detector import Detector
from hotsite.dr.peers import PeerReporter
from hotsite.duty import Duty


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


class Inbox:
    """The controller's side: the last report of each site, by the detector's clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.reports: dict[str, tuple[float, dict[str, Any]]] = {}
        self.up = True

    def report(self, site: str, report: dict[str, Any]) -> dict[str, Any]:
        if not self.up:
            raise ControllerUnreachable("no answer")
        self.reports[site] = (self.clock(), report)
        return {"ok": True}

    def close(self) -> None:
        pass


def test_reports_what_it_reaches_and_the_detector_believes_it() -> None:
    clock, reach = Clock(), {"a": True}
    inbox = Inbox(clock)
    reporter = PeerReporter(
        "b", ["a", "b"], lambda site: reach[site], inbox, interval=0.1, clock=clock
    )
    assert isinstance(reporter, Duty) and reporter.peers == ("a",)
    detector = Detector(["a", "b"], dead_after=1.0, clock=clock)
    assert reporter.step() == {"a": 0.0}
    # The primary dies: the controller stops reaching it, and so does b.
    reach["a"] = False
    clock.now += 2.0
    assert reporter.step() == {"a": 2.0}
    dead, why, witness = detector.verdict("a", inbox.reports)
    assert dead and witness == "b", why
    # Back: b reaches it again, its next report says so and a is not dead.
    reach["a"] = True
    reporter.step()
    assert inbox.reports["b"][1]["peers"] == {"a": 0.0}
    assert not detector.verdict("a", inbox.reports)[0]


def test_a_peer_never_reached_counts_from_the_start() -> None:
    clock = Clock()
    inbox = Inbox(clock)
    reporter = PeerReporter("b", ["a", "b"], lambda site: False, inbox, interval=0.1, clock=clock)
    clock.now += 3.0
    assert reporter.step() == {"a": 3.0}


def test_a_controller_that_does_not_answer_is_said_and_retried() -> None:
    clock = Clock()
    inbox = Inbox(clock)
    reporter = PeerReporter("b", ["a", "b"], lambda site: True, inbox, interval=0.1, clock=clock)
    inbox.up = False
    reporter.step()
    assert "no answer" in reporter.poll()["error"] and reporter.sent == 0
    inbox.up = True
    reporter.step()
    assert reporter.poll()["error"] == "" and reporter.sent == 1
