"""The embedded record: the lease goes only to the primary at its epoch with no move in
flight; of two moves from one epoch only one begins; finishing increments the epoch."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotsite.dr.record import Move, MoveInFlight, RecordConflict
from hotsite.dr.record_sqlite import SqliteRecordStore
from hotsite.state import StateStore


@pytest.fixture
def records(tmp_path: Path) -> SqliteRecordStore:
    return SqliteRecordStore(StateStore(tmp_path / "state.db"))


def test_lease_rules_and_one_winner_per_epoch(records: SqliteRecordStore, tmp_path: Path) -> None:
    assert records.read() is None
    assert records.initialise("a").epoch == 1
    assert records.initialise("b").primary == "a"  # made once, never overwritten
    grant = records.grant_lease("a", 1, 2.0, now=100.0)
    assert grant.granted and grant.record.lease_expires == 102.0
    assert not records.grant_lease("b", 1, 2.0, now=100.0).granted
    assert "epoch" in records.grant_lease("a", 7, 2.0, now=100.0).reason
    # A renewal never shortens the lease already granted.
    assert records.grant_lease("a", 1, 0.5, now=101.0).record.lease_expires == 102.0

    # A second store on the same file (another process) sees the same record.
    other = SqliteRecordStore(StateStore(tmp_path / "state.db"))
    other.begin_move(Move("m1", "failover", "b", 101.0), expected_epoch=1)
    with pytest.raises(MoveInFlight):
        records.begin_move(Move("m2", "relocate", "b", 101.0), expected_epoch=1)
    refused = records.grant_lease("a", 1, 2.0, now=101.5)
    assert not refused.granted and "in flight" in refused.reason
    assert records.read().lease_expires == 102.0  # type: ignore[union-attr]
    assert records.advance_move("m1", "fenced").move.step == "fenced"  # type: ignore[union-attr]
    with pytest.raises(RecordConflict):
        records.finish_move("m2")
    done = records.finish_move("m1")
    assert (done.primary, done.epoch, done.lease_holder, done.move) == ("b", 2, None, None)
    with pytest.raises(RecordConflict):  # a move that saw epoch 1 cannot begin now
        records.begin_move(Move("m3", "relocate", "a", 103.0), expected_epoch=1)
    records.begin_move(Move("m4", "relocate", "a", 103.0), expected_epoch=2)
    assert records.abort_move("m4").epoch == 2
    assert records.grant_lease("b", 2, 2.0, now=104.0).granted


def test_a_lease_not_extended_runs_out_then_is_refused(records: SqliteRecordStore) -> None:
    records.initialise("a")
    assert records.grant_lease("a", 1, 2.0, now=100.0).ttl == 2.0
    held = records.grant_lease("a", 1, 0.0, now=101.5)  # suspect: what is left, no more
    assert held.granted and held.ttl == 0.5 and held.record.lease_expires == 102.0
    assert records.grant_lease("a", 1, 2.0, now=101.0).ttl == 2.0  # extended again
    ended = records.grant_lease("a", 1, 0.0, now=103.5)
    assert not ended.granted and "not extended" in ended.reason
    assert ended.record.lease_expires == 103.0  # never shortened, never extended
    assert not records.grant_lease("b", 1, 0.0, now=100.0).granted  # not the primary
