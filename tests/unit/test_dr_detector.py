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
