"""Which links run under an active-standby dr: both directions listed are a failover
pair (no writers, no conflicts), the links from the record's primary carry its writes,
and the gate of a site agent's link follows the record."""

from __future__ import annotations

from typing import Any

from hotsite.dr.client import ControllerUnreachable
from hotsite.dr.standby import LinkGate
from hotsite.topology import Routes

PAIR = [("primary", "dr"), ("dr", "primary")]


def test_both_directions_are_a_failover_pair_not_two_writers() -> None:
    assert Routes.of(PAIR).writers() == {"primary", "dr"}  # active-active
    standby = Routes.of(PAIR, one_writer=True)
    assert standby.writers() == set() and not standby.two_way("dr")
    assert standby.problems() == []
    assert standby.running_from("primary") == {("primary", "dr")}
    assert standby.running_from("dr") == {("dr", "primary")}


def test_running_from_follows_a_chain_and_never_back_into_the_primary() -> None:
    chain = Routes.of([("a", "b"), ("b", "c"), ("c", "a"), ("b", "a")], one_writer=True)
    assert chain.running_from("a") == {("a", "b"), ("b", "c")}


def _gate(record: Any) -> LinkGate:
    def read() -> dict[str, Any]:
        if isinstance(record, Exception):
            raise record
        return dict(record)

    def no_database() -> Any:
        raise AssertionError("the gate needs no standby mark here")

    return LinkGate("dr", "primary", "p/dr-to-primary", Routes.of(PAIR, True), read, no_database)


def test_the_gate_follows_the_record() -> None:
    run, why = _gate({"primary": "primary", "epoch": 1})()
    assert run is False and "dr is not the primary (primary is, epoch 1)" in why
    assert _gate({"primary": "dr", "epoch": 1})() == (True, "")  # no move yet
    run, why = _gate(ControllerUnreachable("the controller did not answer"))()
    assert run is None and "cannot read the record" in why
