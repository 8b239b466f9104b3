"""verify's command line: values that cannot work are refused in one line, the summary
counts rows that differ, and table names are printed whole whatever the width."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from hotsite.cli import verify as verify_cli
from hotsite.config import load
from hotsite.errors import ConfigError
from hotsite.replication.verify.report import (
    DIFFERENT_ROWS,
    IDENTICAL,
    MISSING,
    SCHEMA,
    RowDiff,
    TableResult,
    VerifyReport,
)
from tests.helpers import hotsite

CONFIG = (
    "sites:\n"
    "  primary: {database: 'mysql://root@127.0.0.1:1/app'}\n"
    "  dr: {database: 'mysql://root@127.0.0.1:2/app'}\n"
    "replication:\n  - {from: primary, to: dr}\n"
)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--chunk-time", "-1"], "--chunk-time -1 must be more than 0 seconds"),
        (["--chunk-time", "0"], "--chunk-time 0 must be more than 0 seconds"),
        (["--wait-timeout", "-0.5"], "--wait-timeout -0.5 must be 0 or more seconds"),
        (["--wait-timeout", "nan"], "--wait-timeout nan must be 0 or more seconds"),
        (["--max-rows", "0"], "--max-rows 0 must be 1 or more"),
        (["--max-rows", "-3"], "--max-rows -3 must be 1 or more"),
    ],
)
def test_values_that_cannot_work_are_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    config = tmp_path / "hotsite.yaml"
    config.write_text(CONFIG)  # no server behind it: the values are refused first
    result = hotsite(config, "verify", "--quiet", *args, timeout=30)
    assert result.returncode == 2, result
    assert result.stderr.startswith(f"error: {says}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def printed(report: VerifyReport, monkeypatch: pytest.MonkeyPatch) -> str:
    out = io.StringIO()
    monkeypatch.setattr(verify_cli, "console", Console(file=out, width=80))
    verify_cli._print_report(report)
    return out.getvalue()


LONG = "app." + "a_table_whose_name_is_long_enough_to_be_cut_at_eighty_columns_by_rich" * 2


def test_summary_counts_rows_that_differ_not_rows_verified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    differs = TableResult(LONG, ("id",), status=DIFFERENT_ROWS, rows=5000, missing=2, extra=1)
    differs.diffs = [RowDiff((1,), MISSING), RowDiff((2,), MISSING)]
    report = VerifyReport("primary-to-dr", "primary", "dr", seconds=1.0)
    report.tables = [
        differs,
        TableResult("app.same", ("id",), status=IDENTICAL, rows=1000),
        TableResult("app.shape", ("id",), status=SCHEMA, schema=["column b: type int vs bigint"]),
    ]
    text = printed(report, monkeypatch)
    summary = text.strip().splitlines()[-1]
    assert summary.startswith("differences found: 3 rows differ, in 2 of 3 tables; 6,000 rows"), (
        summary
    )
    assert report.as_json()["differing_rows"] == 3


def test_table_names_are_never_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    report = VerifyReport("primary-to-dr", "primary", "dr", seconds=1.0)
    report.tables = [TableResult(LONG, ("id",), status=IDENTICAL, rows=10)]
    text = printed(report, monkeypatch)
    assert any(LONG in line for line in text.splitlines()), text
    assert "…" not in text
    assert text.strip().splitlines()[-1].startswith("identical: 10 rows in 1 tables verified")


def test_from_may_name_either_end_of_a_configured_link_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "hotsite.yaml"
    path.write_text(CONFIG.replace("sites:\n", "sites:\n  third: {database: 'mysql://h:3/app'}\n"))
    config = load(path)
    for source, target in (("primary", None), ("primary", "dr"), ("dr", None), ("dr", "primary")):
        link, authority = verify_cli._pick_link(config, None, source, target)
        assert (link.source, link.target, authority) == ("primary", "dr", source)
    for source, target in (("dr", "third"), ("third", "dr"), ("primary", "third")):
        with pytest.raises(ConfigError, match=r"links in .*: primary->dr"):
            verify_cli._pick_link(config, None, source, target)
