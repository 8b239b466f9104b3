"""A site is declared dead only when the controller and another site's agent both fail
to reach it for dead_after; a cut link between the sites alone declares nothing."""

from __future__ import annotations

from typing import Any

from hotsite.dr.detector import Detector


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_both_must_fail_to_reach_it() -> None:
    clock = Clock()
    detector = Detector(["a", "b"], dead_after=1.0, clock=clock)
    reports: dict[str, tuple[float, dict[str, Any]]] = {}

    def verdict() -> tuple[bool, str, str | None]:
        return detector.verdict("a", reports)

    detector.observed("a", True)
    clock.now += 5
    # The link between the sites is cut: b cannot reach a, the controller can.
    detector.observed("a", True)
    reports["b"] = (clock.now, {"peers": {"a": 5.0}})
    assert verdict()[0] is False and "controller reaches it" in verdict()[1]
    # The controller is cut from a, b still reaches it.
    clock.now += 2
    reports["b"] = (clock.now, {"peers": {"a": 0.1}})
    assert verdict()[0] is False and "no other site's agent confirms" in verdict()[1]
    # Both fail: dead, and b is the witness.
    reports["b"] = (clock.now, {"peers": {"a": 1.5}})
    dead, why, witness = verdict()
    assert (dead, witness) == (True, "b") and "neither the controller" in why
    # A stale report confirms nothing.
    clock.now += 1.5
    assert verdict()[0] is False
    # A report that is not what agents send confirms nothing either.
    reports["b"] = (clock.now, {"peers": "a"})
    assert verdict()[0] is False
    assert detector.view() == {"a": 3.5, "b": 8.5}


def test_suspect_at_once_when_both_last_probes_failed() -> None:
    clock = Clock()
    detector = Detector(["a", "b"], dead_after=1.0, clock=clock)
    reports: dict[str, tuple[float, dict[str, Any]]] = {}
    detector.observed("a", True)
    reports["b"] = (clock.now, {"peers": {"a": 0.3}, "failing": ["a"]})
    assert not detector.suspect("a", reports)  # the controller reaches it
    detector.observed("a", False)
    assert detector.suspect("a", reports)  # long before dead_after
    assert detector.verdict("a", reports)[0] is False
    reports["b"] = (clock.now, {"peers": {"a": 0.0}, "failing": []})
    assert not detector.suspect("a", reports)  # b reaches it: the controller alone is cut
    reports["b"] = (clock.now, {"peers": {"a": 0.3}})  # an agent that says nothing of it
    assert not detector.suspect("a", reports)
    reports["a"] = (clock.now, {"peers": {"a": 9.0}, "failing": ["a"]})
    assert not detector.suspect("a", reports)  # a site's word about itself counts for nothing
    reports["b"] = (clock.now, {"failing": ["a"]})
    clock.now += 1.5
    assert not detector.suspect("a", reports)  # a stale report
    reports["b"] = (clock.now, {"failing": ["a"]})
    detector.observed("a", True)
    assert not detector.suspect("a", reports)  # reached again
