"""Whole DR scenarios, end to end: two PetClinic sites and a witness, each in its own
network namespace and subnet (hotsite.testing.drsites) — each site's database, web app
and `hotsite agent` inside the site's network, the controller (auto_failover) and the
entry point (HAProxy) at the witness — and a load generator writing pets through the
entry point the whole time, recording every acknowledged write.

- the primary site's database and web killed → automatic failover; writes succeed again
  through the same entry point; no write acknowledged by the old site after the new
  site's first; the RTO (write to write) measured;
- the primary's network cut entirely (nftables in its namespace) → the same;
- only the link between the sites cut: no failover, and never two writable databases,
  sampled every 50 ms;
- the primary cut from the witness and the DR site, its own clients still reaching it:
  it fences itself before the DR site is promoted (its agent's clock and the history's);
- relocate under load: RPO 0, every acknowledged write is at the new primary;
- kill -9 of the controller in the middle of its automatic failover, restarted: the move
  is carried to its end, never two writable databases.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotsite.dr.history import History
from hotsite.state import StateStore
from hotsite.testing.drsites import DRLab, LoadGenerator, wait_until
from tests.sshhosts_fixtures import missing_for_ssh_hosts, needs_commands

pytestmark = [pytest.mark.slow, needs_commands("nft", "haproxy")]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[DRLab]:
    reason = missing_for_ssh_hosts()
    if reason:
        pytest.skip(reason)
    lab = DRLab(tmp_path / "lab")
    try:
        lab.start()
        lab.wait_ready()
        yield lab
    finally:
        lab.stop()


def history(lab: DRLab) -> History:
    return History(StateStore(lab.base_dir / ".hotsite" / "state.db"))


def steady(lab: DRLab, load: LoadGenerator) -> None:
    """Writes flow and replicate: the first twenty acknowledged are at the DR site."""
    wait_until(lambda: len(load.by("primary")) >= 20, "writes at the primary", 60)
    first = {w.name for w in load.by("primary")[:20]}
    wait_until(lambda: first <= lab.names("dr"), "replication of the writes", 60)


def failover_under_load(lab: DRLab, fault: str) -> None:
    load = LoadGenerator(lab.entry_address).start()
    watch = lab.watch()
    try:
        steady(lab, load)
        failed_at = time.time()
        getattr(lab, fault)("primary")
        wait_until(lambda: lab.record().get("primary") == "dr", "the automatic failover", 60)
        wait_until(lambda: len(load.by("dr")) >= 20, "writes at the new primary", 60)
    finally:
        load.stop()
        watch.stop()
    record = lab.record()
    assert record["epoch"] == 2 and record["move"] is None, record
    old, new = load.by("primary"), load.by("dr")
    # No write acknowledged by the old site after the new site's first.
    first_new = min(w.acked for w in new)
    assert max(w.acked for w in old) < first_new
    assert first_new > failed_at
    # Every write the new primary acknowledged is there; of the old primary's, only an
    # unshipped tail may be missing (the RPO), and only from its last moments.
    at_dr = lab.names("dr")
    assert {w.name for w in new} <= at_dr
    lost = [w for w in old if w.name not in at_dr]
    assert all(w.sent >= failed_at - 5 for w in lost), (len(lost), len(old), lost[:3])
    assert watch.samples > 20 and watch.both_writable == []
    last, first, rto = load.gap(failed_at)
    assert last <= failed_at < first and rto < 60
    move = history(lab).moves()[0]
    assert move.kind == "failover" and move.target == "dr"
    shown = history(lab).get(move.id)
    assert shown is not None
    steps = [step for _, step, _ in shown.steps]
    assert steps[:2] == ["failure detected", "decided"] and "promoted" in steps, steps
    # The entry point saw the first write at dr, and the move's write-to-write RTO (from
    # the controller's last contact with the primary) is what the client saw, nearly.
    # Write to write as the client saw it: the old site's last answer (a request in
    # flight when the network was cut may still be answered after the fault) to the
    # new site's first.
    client_rto = first_new - max(w.acked for w in old)
    assert "first write" in steps, steps
    assert abs(shown.summary["rto_seconds"] - client_rto) < 1.0, (shown.summary, client_rto)
    print(f"{fault}: RTO {client_rto:.2f} s (write to write), {len(lost)} acknowledged writes lost")


def test_a_killed_primary_site_fails_over_by_itself(lab: DRLab) -> None:
    failover_under_load(lab, "kill_site")


def test_a_primary_whose_network_is_cut_fails_over_by_itself(lab: DRLab) -> None:
    failover_under_load(lab, "cut_network")


def test_a_cut_link_between_the_sites_moves_nothing(lab: DRLab) -> None:
    load = LoadGenerator(lab.entry_address).start()
    watch = lab.watch()
    try:
        wait_until(lambda: len(load.by("primary")) >= 10, "writes at the primary", 60)
        lab.cut_between("primary", "dr")
        cut_at = time.time()
        # Far longer than dead_after + the lease: the DR agent reports the primary
        # unreached all along, the controller reaches it, nothing moves.
        wait_until(lambda: "primary" in lab_sites_unreached(lab, "dr"), "the DR agent's report", 60)
        time.sleep(4)
        after = [w for w in load.by("primary") if w.acked > cut_at + 3]
    finally:
        load.stop()
        watch.stop()
        lab.mend("primary")
    record = lab.record()
    assert (record["primary"], record["epoch"], record["move"]) == ("primary", 1, None)
    assert len(after) > 0 and load.by("dr") == []
    assert watch.samples > 60 and watch.both_writable == []
    assert lab.writable("dr") is False
    assert history(lab).moves() == []


def lab_sites_unreached(lab: DRLab, reporter: str) -> set[str]:
    """The peers ``reporter``'s agent says it has not reached for dead_after."""
    entry = lab.controller_sites().get(reporter) or {}
    dead_after = float(lab.timing["detection"]["dead_after"])  # type: ignore[index]
    if entry.get("age") is None or entry["age"] > dead_after:
        return set()  # no fresh report: it confirms nothing
    peers = (entry.get("report") or {}).get("peers") or {}
    return {site for site, age in peers.items() if age >= dead_after}


def test_a_partitioned_primary_fences_itself_before_the_dr_site_is_promoted(
    lab: DRLab,
) -> None:
    # Its own clients (from the root namespace) write to it directly, past the entry.
    direct = LoadGenerator((lab.primary.address, 8080)).start()
    watch = lab.watch()
    try:
        wait_until(lambda: len(direct.by("primary")) >= 10, "direct writes", 60)
        lab.isolate("primary")
        isolated_at = time.time()
        wait_until(lambda: lab.record().get("primary") == "dr", "the automatic failover", 60)
        time.sleep(1)
    finally:
        direct.stop()
        watch.stop()
    move = history(lab).moves()[0]
    shown = history(lab).get(move.id)
    assert shown is not None
    promoted_at = next(at for at, step, _ in shown.steps if step == "promoted")
    # The primary's side: its lease keeper's fence (its agent's status file), and the
    # last write its clients saw succeed.
    status = json.loads(
        (lab.agent_home("primary") / ".hotsite" / "status" / "agent-primary.json").read_text()
    )
    lease = next(d for d in status["duties"] if d["duty"] == "lease")["status"]
    fenced_at = lease["fenced_at"]
    assert fenced_at is not None, lease
    assert isolated_at < fenced_at < promoted_at, (fenced_at - isolated_at, promoted_at)
    assert max(w.acked for w in direct.by("primary")) < promoted_at
    assert watch.both_writable == []
    assert lab.writable("primary") is False and lab.writable("dr") is True


def test_relocate_under_load_loses_no_acknowledged_write(lab: DRLab) -> None:
    load = LoadGenerator(lab.entry_address).start()
    watch = lab.watch()
    try:
        steady(lab, load)
        result = lab.hotsite("relocate", "--to", "dr")
        assert result.returncode == 0, result.stderr
        wait_until(lambda: len(load.by("dr")) >= 10, "writes at the new primary", 60)
    finally:
        load.stop()
        watch.stop()
    at_dr = lab.names("dr")
    missing = [w.name for w in load.acked if w.name not in at_dr]
    assert missing == []  # RPO 0
    assert max(w.acked for w in load.by("primary")) < min(w.acked for w in load.by("dr"))
    assert watch.both_writable == []
    move = history(lab).moves()[0]
    assert move.kind == "relocate" and move.summary.get("rpo_transactions") == 0, move.summary
    # Write to write as the entry point saw it (the old primary's last answer, the new
    # one's first) is the client's own gap, within the sampling's 20 ms and some slack
    # (a loaded machine delivers the client's answers late: a quarter of the gap).
    gap = min(w.acked for w in load.by("dr")) - max(w.acked for w in load.by("primary"))
    assert "rto_seconds" in move.summary, (move.summary, result.stdout, result.stderr, gap)
    assert abs(move.summary["rto_seconds"] - gap) < max(0.3, gap / 4), (move.summary, gap)


def test_a_controller_killed_mid_failover_finishes_it_when_restarted(lab: DRLab) -> None:
    watch = lab.watch()
    try:
        lab.kill_site("primary")
        # The moment the move is recorded (decided), the controller is killed -9.
        wait_until(lambda: (lab.record().get("move") or None) is not None, "the move", 60)
        lab.kill_controller()
        assert lab.writable("dr") is False  # not promoted yet: the lease had to run out
        time.sleep(1)
        lab.start_controller()
        wait_until(lambda: lab.record().get("primary") == "dr", "the resumed failover", 60)
        wait_until(lambda: lab.record().get("move") is None, "the move's end", 30)
    finally:
        watch.stop()
    assert lab.record()["epoch"] == 2
    assert lab.writable("dr") is True
    assert watch.both_writable == []
    outcome = history(lab).moves()[0]
    assert outcome.kind == "failover" and outcome.target == "dr"
