"""The demo's failed verdicts say why: a CI log must show what differed without the
report file at hand."""

from __future__ import annotations

from hotsite.demo.report import verdicts, verify_details


def test_identical_sites_need_no_detail() -> None:
    verify = {"identical": True, "report": {"tables": []}, "acknowledged_missing": {"dr": []}}
    assert verify_details(verify) == []
    assert all(v["ok"] for v in verdicts([], verify))


def test_a_failed_verify_names_its_error_the_differing_table_and_the_missing_writes() -> None:
    table = {"table": "app.visits", "status": "different", "rows": 98, "missing": 3,
             "extra": 0, "different": 1, "unsettled": 0}  # fmt: skip
    verify = {
        "identical": False,
        "exit_status": 1,
        "report": {"tables": [table, {**table, "table": "app.ok", "status": "identical"}]},
        "acknowledged_missing": {"primary": [], "dr": list(range(1, 13))},
    }
    lines = verify_details(verify)
    assert lines[0] == (
        "verify: app.visits different: 3 missing, 0 extra, 1 different, 0 unsettled of 98 rows"
    )
    assert lines[1] == "dr lacks acknowledged writes 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 …"
    assert len(lines) == 2
    failed = {"identical": False, "exit_status": 2, "report": {"error": "timed out"}}
    assert verify_details(failed) == ["verify (exit 2): timed out"]
    assert [v["ok"] for v in verdicts([], verify)] == [False, False]
