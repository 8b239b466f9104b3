"""The lease keeper's decisions, step by step, against a scripted controller and a
database fence that records what was done to it (the real ones: integration tests)."""

from __future__ import annotations

from typing import Any

from hotsite.dr.client import ControllerUnreachable
from hotsite.dr.fence import FenceState
from hotsite.dr.fence_duty import FenceDuty
from hotsite.dr.lease import LeaseKeeper
from hotsite.duty import Duty


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeController:
    def __init__(self) -> None:
        self.primary, self.epoch, self.move = "a", 1, None
        self.up = True
        self.refuse = ""
        self.ttl = 2.0  # what the controller says is left of the lease

    def record(self) -> dict[str, Any]:
        self._check()
        return {"primary": self.primary, "epoch": self.epoch, "move": self.move}

    def lease(self, site: str, epoch: int) -> dict[str, Any]:
        self._check()
        granted = not self.refuse and site == self.primary and epoch == self.epoch
        return {"granted": granted, "ttl": self.ttl, "reason": self.refuse, "record": self.record()}

    def _check(self) -> None:
        if not self.up:
            raise ControllerUnreachable("no answer")


class FakeFence:
    def __init__(self, read_only: bool = False) -> None:
        self.current = FenceState(read_only=read_only, fenced=False)
        self.calls: list[str] = []

    def state(self) -> FenceState:
        return self.current

    def fence(
        self, kind: str, epoch: int | None, reason: str, list_bypass: bool = True
    ) -> FenceState:
        self.calls.append(f"fence {kind} {epoch}")
        if not (self.current.fenced and kind == "lease" and self.current.kind != "lease"):
            self.current = FenceState(True, True, kind, epoch, reason)
        return self.current

    def unfence(self) -> FenceState:
        self.calls.append("unfence")
        self.current = FenceState(False, False)
        return self.current


def keeper(
    controller: FakeController, fence: FakeFence, clock: Clock, site: str = "a"
) -> LeaseKeeper:
    return LeaseKeeper(site, controller, fence, interval=0.25, fence_before=0.7, clock=clock)


def test_renews_fences_before_the_end_and_lifts_its_own_fence() -> None:
    controller, fence, clock = FakeController(), FakeFence(), Clock()
    k = keeper(controller, fence, clock)
    assert isinstance(k, Duty) and isinstance(FenceDuty("a", lambda: None), Duty)
    k.step()
    assert k.poll()["holding"] and k.poll()["lease_left"] == 2.0 and fence.calls == []
    controller.up = False
    clock.now = 1.0
    k.step()  # 1.0 s left: more than fence_before, nothing yet
    assert fence.calls == [] and k.poll()["holding"]
    clock.now = 1.31
    k.step()  # 0.69 s left: fence now, while the lease still holds
    assert fence.calls == ["fence lease 1"] and not k.poll()["holding"]
    clock.now = 5.0
    k.step()
    assert fence.calls == ["fence lease 1"]  # once
    controller.up = True
    k.step()  # granted again at the same epoch: no move began, the fence is ours to lift
    assert fence.calls[-1] == "unfence" and k.poll()["holding"]


def test_a_refusal_fences_at_once_and_a_move_fence_is_never_lifted() -> None:
    controller, fence, clock = FakeController(), FakeFence(), Clock()
    k = keeper(controller, fence, clock)
    k.step()
    controller.refuse = "a relocate to b is in flight"
    clock.now = 0.25
    k.step()
    assert fence.calls == ["fence lease 1"]
    fence.fence("move", 2, "relocate to b")  # the move's own fence, on top
    controller.refuse, controller.primary, controller.epoch = "", "b", 2
    clock.now = 0.5
    k.step()
    assert k.poll()["role"] == "standby" and fence.current.kind == "move"
    assert "unfence" not in fence.calls


def test_at_start_without_the_controller_a_writable_database_is_fenced() -> None:
    controller, fence, clock = FakeController(), FakeFence(), Clock()
    controller.up = False
    k = keeper(controller, fence, clock)
    k.step()
    assert fence.calls == ["fence lease None"]
    controller.up = True
    clock.now = 0.25
    k.step()  # primary at epoch 1, granted: the start-up fence (epoch None) is lifted
    assert fence.calls[-1] == "unfence" and k.poll()["holding"]


def test_a_writable_standby_is_fenced() -> None:
    controller, fence, clock = FakeController(), FakeFence(), Clock()
    controller.primary, controller.epoch = "b", 2
    k = keeper(controller, fence, clock, site="a")
    k.step()
    assert k.poll()["role"] == "standby" and fence.calls == ["fence move 2"]
    k.step()
    assert fence.calls == ["fence move 2"]  # already read-only: nothing more


def test_a_standby_being_promoted_is_left_alone() -> None:
    controller, fence, clock = FakeController(), FakeFence(), Clock()
    controller.move = {"id": "fa-1", "kind": "failover", "target": "b", "step": "promoted"}  # type: ignore[assignment]
    k = keeper(controller, fence, clock, site="b")
    k.step()  # the move has made b writable and is about to name it primary
    assert fence.calls == [] and k.poll()["role"] == "standby"
    controller.move, controller.primary, controller.epoch = None, "b", 2
    k.step()
    assert k.poll()["role"] == "primary" and k.poll()["holding"] and fence.calls == []


def test_a_lease_not_extended_is_counted_down_and_its_fence_not_lifted_too_late() -> None:
    controller, fence, clock = FakeController(), FakeFence(), Clock()
    k = keeper(controller, fence, clock)
    k.step()
    controller.ttl = 1.2  # suspect: what is left of the lease, from the controller's now
    clock.now = 0.8
    k.step()
    assert k.poll()["lease_left"] == 1.2 and fence.calls == []
    controller.ttl = 0.5  # less than fence_before left: fence now
    clock.now = 1.5
    k.step()
    assert fence.calls == ["fence lease 1"]
    clock.now = 1.6
    k.step()  # granted again but still not extended: the fence stays
    assert fence.calls == ["fence lease 1"]
    controller.ttl = 2.0  # extended again
    clock.now = 1.7
    k.step()
    assert fence.calls == ["fence lease 1", "unfence"] and k.poll()["holding"]
