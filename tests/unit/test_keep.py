"""Healing's ladder, bursting's decisions and the refusals of bad input, without hosts.

The ladder counts its budgets from the real history in a real state store (what a
restarted agent reads back), so these also show that budgets survive the agent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hotsite.blueprint.desired import replacement_name
from hotsite.config_keep import BurstPolicy, HealingConfig
from hotsite.keep import KeepRecords, Ladder
from hotsite.keep.burst import Burster, metric_value
from hotsite.state import StateStore
from tests.helpers import hotsite
from tests.keep_helpers import SITE_DIR

OK, FAILED, SILENT = "ok", "failed", "unreachable"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ladder(tmp_path: Path, **settings: object) -> tuple[Ladder, KeepRecords, Clock]:
    clock = Clock()
    records = KeepRecords(StateStore(tmp_path / "state.db"), "primary", clock)
    config = HealingConfig.model_validate(settings)
    return Ladder(config, records, frozenset({"db"})), records, clock


def did(records: KeepRecords, kind: str, node: str, services: list[str]) -> None:
    """What the duty records when it acts."""
    entry = records.begin(
        "heal", node, {"action": kind, "service": services[0], "services": services}
    )
    records.finish(entry, "healthy", {"action": kind, "service": services[0], "services": services})


GROUPS = {"w0": "web", "w1": "web", "d0": "db"}


def test_restart_after_failures_in_a_row_then_replace_then_give_up(tmp_path: Path) -> None:
    lad, records, clock = ladder(tmp_path, failures=2, restarts=2, replacements=1)
    seen = []
    for _ in range(40):
        clock.now += 1
        actions = lad.observe({("w0", "app"): FAILED, ("w1", "app"): OK}, GROUPS, clock.now)
        for action in actions:
            seen.append(action.kind)
            if action.kind in ("restart", "replace"):
                did(records, action.kind, action.node, list(action.services))
            if action.kind == "give-up":
                records.mark_failed("app", action.reason)
    # one probe failing is not enough; the second is; budgets in order; then nothing
    assert seen == ["restart", "restart", "replace", "give-up"]
    assert "app" in records.failed()


def test_one_failed_probe_between_good_ones_does_nothing(tmp_path: Path) -> None:
    lad, _, clock = ladder(tmp_path, failures=2)
    for health in [FAILED, OK, FAILED, OK, FAILED, OK]:
        clock.now += 1
        assert lad.observe({("w0", "app"): health}, GROUPS, clock.now) == []


def test_restarts_outside_the_window_do_not_count(tmp_path: Path) -> None:
    lad, records, clock = ladder(tmp_path, failures=1, restarts=1, window=60)
    did(records, "restart", "w0", ["app"])
    clock.now += 1
    assert lad.observe({("w0", "app"): FAILED}, GROUPS, clock.now)[0].kind == "replace"
    clock.now += 120  # the restart is out of the window: restart again, not replace
    assert lad.observe({("w0", "app"): FAILED}, GROUPS, clock.now)[0].kind == "restart"


def test_a_silent_node_is_replaced_without_a_restart(tmp_path: Path) -> None:
    lad, _, clock = ladder(tmp_path, unreachable_after=3)
    kinds = []
    for _ in range(3):
        clock.now += 1
        kinds += [a for a in lad.observe({("w1", "app"): SILENT}, GROUPS, clock.now)]
    assert [(a.kind, a.node, a.reachable) for a in kinds] == [("replace", "w1", False)]


def test_the_database_node_is_reported_never_replaced(tmp_path: Path) -> None:
    lad, records, clock = ladder(tmp_path, failures=1, restarts=1, unreachable_after=1)
    clock.now += 1
    assert lad.observe({("d0", "db"): FAILED}, GROUPS, clock.now)[0].kind == "restart"
    did(records, "restart", "d0", ["db"])
    clock.now += 1
    action = lad.observe({("d0", "db"): FAILED}, GROUPS, clock.now)[0]
    assert action.kind == "give-up" and "stateful" in action.reason
    for _ in range(3):  # lost: reported once, not every probe
        clock.now += 1
        found = lad.observe({("d0", "db"): SILENT}, GROUPS, clock.now)
        assert [a.kind for a in found] == (["report"] if _ == 0 else [])


def test_budgets_are_read_back_by_a_new_ladder(tmp_path: Path) -> None:
    """An agent restarted (kill -9, a crash) does not get fresh budgets."""
    _, records, clock = ladder(tmp_path, failures=1, restarts=1, replacements=1)
    did(records, "restart", "w0", ["app"])
    did(records, "replace", "w0", ["app"])
    fresh, _, _ = ladder(tmp_path, failures=1, restarts=1, replacements=1)
    fresh.budgets = KeepRecords(StateStore(tmp_path / "state.db"), "primary", clock)
    clock.now += 1
    assert fresh.observe({("w0", "app"): FAILED}, GROUPS, clock.now)[0].kind == "give-up"


def test_replacement_names_keep_the_slot() -> None:
    assert replacement_name("primary-web-1") == "primary-web-1r1"
    assert replacement_name("primary-web-1r1") == "primary-web-1r2"
    assert replacement_name("primary-web-12r9") == "primary-web-12r10"


def policy(**extra: object) -> BurstPolicy:
    return BurstPolicy.model_validate(
        {
            "site": "primary",
            "target": "burst",
            "metric": {"name": "req_rate"},
            "up": {"above": 50, "for": 3},
            "down": {"below": 5, "for": 4},
            "cooldown": 10,
            **extra,
        }
    )


def test_burst_needs_the_threshold_held_and_waits_out_the_cooldown() -> None:
    burster = Burster(policy())
    decisions = []
    readings = [60, 60, 10, 60, 60, 60, 60, 60]  # a dip restarts the count
    for t, value in enumerate(readings):
        decision = burster.observe(value, float(t))
        decisions.append(decision)
        if decision:
            burster.decided(decision, float(t), active=decision == "up")
    assert decisions == [None, None, None, None, None, None, "up", None]
    # Load gone at once: still no down within the cooldown (10 s after t=6).
    found = [(t, burster.observe(0, float(t))) for t in range(8, 30)]
    first = next(t for t, d in found if d == "down")
    assert first == 16


def test_burst_limit_tears_down_even_under_load() -> None:
    burster = Burster(policy(max_seconds=20, cooldown=0))
    burster.decided("up", 0.0, active=True)
    assert burster.observe(100, 10.0) is None
    assert burster.observe(100, 21.0) == "down"


def test_metrics_from_show_stat() -> None:
    rows = [
        {"pxname": "fe_entry", "svname": "FRONTEND", "req_rate": "42", "scur": "7"},
        {"pxname": "be_entry", "svname": "BACKEND", "qcur": "3", "rtime": "12"},
        {"pxname": "be_entry", "svname": "primary", "qcur": "9"},
    ]
    assert [metric_value(rows, m) for m in ("req_rate", "sessions", "queue", "response_time")] == [
        42,
        7,
        3,
        12,
    ]


BLUEPRINT = f"    blueprint: {SITE_DIR / 'blueprint.yaml'}\n"


def project(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "hotsite.yaml"
    path.write_text(
        "sites:\n  primary:\n" + BLUEPRINT + "  burst:\n" + BLUEPRINT + "    driver: cloud2\n"
        "nodes:\n  providers:\n    cloud2: {driver: byon, hosts: []}\n" + extra
    )
    return path


@pytest.mark.parametrize(
    ("args", "extra", "words"),
    [
        (("scale", "primary", "db=2"), "", "no node group 'db'"),
        (("scale", "primary", "web=9"), "", "takes 1 to 4 nodes, not 9"),
        (("scale", "primary", "web=-2"), "", "takes 1 to 4 nodes, not 0"),
        (("scale", "primary", "web"), "", "write GROUP=N, GROUP=+K or GROUP=-K"),
        (("status",), "healing: {restarts: 0}\n", "restarts must be at least 1"),
        (("status",), "healing: {replacements: 0}\n", "replacements must be at least 1"),
        (
            ("status",),
            "bursting:\n  - {site: primary, target: burst, metric: {name: cpu},"
            " up: {above: 5}, down: {below: 1}}\n",
            "unknown metric 'cpu'",
        ),
        (
            ("status",),
            "bursting:\n  - {site: primary, target: primary2, metric: {name: req_rate},"
            " up: {above: 5}, down: {below: 1}}\n",
            "unknown site 'primary2'",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    tmp_path: Path, args: tuple[str, ...], extra: str, words: str
) -> None:
    config = project(tmp_path, extra)
    result = hotsite(config, *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    # nothing recorded, nothing made
    state = tmp_path / ".hotsite" / "state.db"
    if state.exists():
        import sqlite3

        with sqlite3.connect(state) as conn:
            assert conn.execute("SELECT count(*) FROM bp_nodes").fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM bp_counts").fetchone()[0] == 0


def test_a_burst_target_without_a_driver_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hotsite.yaml"
    blueprint = tmp_path / "bp"
    shutil.copytree(SITE_DIR, blueprint)
    path.write_text(
        f"sites:\n  primary: {{blueprint: {blueprint}/blueprint.yaml}}\n"
        f"  burst: {{blueprint: {blueprint}/blueprint.yaml}}\n"
        "bursting:\n  - {site: primary, target: burst, metric: {name: req_rate},"
        " up: {above: 5}, down: {below: 1}}\n"
    )
    result = hotsite(path, "status")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "the burst site 'burst' has no driver" in lines[0]


def test_a_blip_of_fast_probes_is_no_lost_node(tmp_path: Path) -> None:
    """Probes come every 0.1 s while something is wrong; three silent ones in 0.3 s are
    not three probe intervals of silence."""
    lad, _, clock = ladder(tmp_path, unreachable_after=3, interval=1.0)
    for _ in range(3):
        clock.now += 0.1
        assert lad.observe({("w1", "app"): SILENT}, GROUPS, clock.now) == []
    clock.now += 2.0
    assert [a.kind for a in lad.observe({("w1", "app"): SILENT}, GROUPS, clock.now)] == ["replace"]
