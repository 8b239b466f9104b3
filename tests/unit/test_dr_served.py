"""When sites last and first served during a move, from sampled 2xx counters; and the
entry point's retry interval, which bounds how long a held request waits after the
switch (HAProxy's turn-around is min(1 s, timeout connect))."""

from __future__ import annotations

import time
from pathlib import Path

from hotsite.dr.served import ServedSampler
from hotsite.errors import HotsiteError
from hotsite.traffic.entry import EntryPoint, EntryServer, render_config


class Counters:
    def __init__(self) -> None:
        self.counts = {"a": 10, "b": 0}
        self.broken = False

    def __call__(self) -> dict[str, int]:
        if self.broken:
            raise HotsiteError("the runtime API did not answer")
        return dict(self.counts)


def test_last_and_first_answers_are_seen_by_sampling() -> None:
    counters = Counters()
    sampler = ServedSampler(counters, every=0.01).start()
    try:
        assert sampler.last_served("a") is None  # nothing answered since the start
        counters.counts["a"] = 12
        time.sleep(0.05)
        last = sampler.last_served("a")
        assert last is not None and last <= time.time()
        assert sampler.first_after("b", 0.05) is None  # not routed to yet
        counters.broken = True  # a missed sample tells nothing
        time.sleep(0.03)
        counters.broken = False
        sampler.routed({"b"})
        assert sampler.first_after("b", 0.05) is None  # routed, nothing answered yet
        routed = time.time()
        counters.counts["b"] = 1
        first = sampler.first_after("b", 1.0)
        assert first is not None and routed <= first < routed + 0.5
        assert sampler.last_served("a") == last  # a answered nothing more
    finally:
        sampler.stop()


def test_the_entry_point_retries_held_requests_every_retry_interval() -> None:
    entry = EntryPoint(
        Path("/tmp/entry"), "127.0.0.1", 8080, (EntryServer("a", "10.0.0.1", 80),),
        hold_port=9999, retry_interval=0.1,
    )  # fmt: skip
    config = render_config(entry, {"a"})
    assert "    timeout connect 100ms\n" in config
    assert "    retries 100\n" in config  # still HOLD_SECONDS (10 s) of holding
    assert "retry-on conn-failure" in config
