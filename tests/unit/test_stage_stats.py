"""A stage's report (StageStats.as_dict, written by hand for speed) carries every field."""

from __future__ import annotations

from dataclasses import fields

from hotsite.replication.stats import StageStats


def test_a_stages_report_names_every_field_and_its_lag() -> None:
    stats = StageStats(position="0-1-5", transactions=5, pending=0)
    report = stats.as_dict(0.0)
    assert set(report) == {f.name for f in fields(StageStats)} - {"_samples"} | {"lag_seconds"}
    assert report["position"] == "0-1-5" and report["transactions"] == 5
    assert report["lag_seconds"] == 0.0  # nothing pending, no heartbeats: caught up
