"""How far the new primary's journal reaches, as a failover asks it: from the health
report of the site's agent (its journal may be on a node of its own site), sent after
the question; from the journal on this machine only when no agent reports the link."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hotsite.config import load
from hotsite.dr.adapters import REPORT_WAIT, LinkPositions
from hotsite.dr.client import ControllerUnreachable
from hotsite.dr.peers import PeerReporter
from hotsite.replication.gtid import GtidState
from hotsite.replication.journal import Journal
from tests.helpers import offline_pair_config


def _config(tmp_path: Path) -> Any:
    return load(offline_pair_config(tmp_path))


class Reports:
    """The controller's /v1/sites: dr's report, which arrives ``late`` calls after asked."""

    def __init__(self, shipped: dict[str, str] | None, late: int = 0) -> None:
        self.shipped, self.late, self.calls = shipped, late, 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        fresh = self.calls > self.late
        report = None if self.shipped is None else {"shipped": self.shipped}
        return {"dr": {"age": 0.0 if fresh else 60.0, "report": report}}


def test_the_agents_report_is_taken_once_it_was_sent_after_the_question(
    tmp_path: Path,
) -> None:
    reports = Reports({"primary": "0-1-42"}, late=2)
    shipped = LinkPositions(_config(tmp_path), reports).shipped("primary", "dr")
    assert shipped == GtidState.parse("0-1-42") and reports.calls == 3


def test_without_a_report_of_the_link_the_journal_here_says(tmp_path: Path) -> None:
    config = _config(tmp_path)
    link = config.link("primary", "dr")
    assert LinkPositions(config, Reports(None)).shipped("primary", "dr") is None
    journal = Journal(config.journal_path(link))
    try:
        journal.reset(GtidState.parse("0-1-7"))
    finally:
        journal.close()
    assert LinkPositions(config, Reports({"other": "0-9-9"})).shipped(
        "primary", "dr"
    ) == GtidState.parse("0-1-7")

    def unreachable() -> dict[str, Any]:
        raise ControllerUnreachable("no answer")

    assert LinkPositions(config, unreachable).shipped("primary", "dr") == GtidState.parse("0-1-7")
    # An agent that reports it wins over a journal left here by a hand-run link.
    assert LinkPositions(config, Reports({"primary": "0-1-9"})).shipped(
        "primary", "dr"
    ) == GtidState.parse("0-1-9")


def test_a_report_that_never_comes_fresh_is_used_after_the_wait(tmp_path: Path) -> None:
    began = time.monotonic()
    reports = Reports({"primary": "0-1-5"}, late=10_000)
    assert LinkPositions(_config(tmp_path), reports).shipped("primary", "dr") == GtidState.parse(
        "0-1-5"
    )
    assert REPORT_WAIT <= time.monotonic() - began < REPORT_WAIT + 1


class Inbox:
    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []

    def report(self, site: str, report: dict[str, Any]) -> dict[str, Any]:
        self.reports.append(report)
        return {"ok": True}

    def close(self) -> None:
        pass


def test_the_health_report_carries_the_journals_positions() -> None:
    inbox = Inbox()
    reporter = PeerReporter(
        "dr", ["primary", "dr"], lambda site: True, inbox, interval=0.1,
        shipped=lambda: {"primary": "0-1-3"},
    )  # fmt: skip
    reporter.step()
    assert inbox.reports[-1]["shipped"] == {"primary": "0-1-3"}
