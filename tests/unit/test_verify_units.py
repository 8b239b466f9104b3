"""verify's pure parts: SQL building, chunk sizing, key normalisation, journal windows,
schema comparison, exit codes."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from hotsite.errors import JournalError
from hotsite.replication.gtid import GtidState
from hotsite.replication.journal import Journal
from hotsite.replication.schema import Column, TableInfo
from hotsite.replication.transactions import DELETE, INSERT, UPDATE, RowChange, Transaction
from hotsite.replication.verify.chunks import MAX_ROWS, ChunkSizer, next_step
from hotsite.replication.verify.inflight import JournalReader, normalize
from hotsite.replication.verify.positions import Applied
from hotsite.replication.verify.report import (
    DIFFERENT_ROWS,
    IDENTICAL,
    NO_KEY,
    TableResult,
    VerifyReport,
)
from hotsite.replication.verify.rows import in_range
from hotsite.replication.verify.schema_diff import schema_differences
from hotsite.replication.verify.sql import (
    integer_key,
    keys_in,
    range_where,
    row_image,
)


def shape(*columns: Column, key: tuple[str, ...] = ("id",)) -> TableInfo:
    return TableInfo("app", "t", columns, key)


ID = Column("id", "int", "int(11)", False, None)
NAME = Column("name", "varchar", "varchar(10)", True, "utf8mb4_general_ci")
NOTE = Column("note", "text", "text", True, "utf8mb4_general_ci")
BIN_NAME = Column("code", "varchar", "varchar(10)", False, "utf8mb4_bin")


# --- SQL -------------------------------------------------------------------------------


def test_range_where_single_and_open_ends() -> None:
    assert range_where(("id",), None, None) == ("1=1", [])
    assert range_where(("id",), (5,), None) == ("((`id` > %s))", [5])
    assert range_where(("id",), (5,), (9,)) == ("((`id` > %s)) AND ((`id` <= %s))", [5, 9])


def test_range_where_composite_is_expanded_for_the_range_optimiser() -> None:
    where, args = range_where(("a", "b"), (1, 2), (3, 4))
    assert where == (
        "((`a` > %s) OR (`a` = %s AND `b` > %s)) AND ((`a` < %s) OR (`a` = %s AND `b` <= %s))"
    )
    assert args == [1, 1, 2, 3, 3, 4]


def test_keys_in() -> None:
    assert keys_in(("id",), [(1,), (2,)]) == ("`id` IN (%s, %s)", [1, 2])
    assert keys_in(("a", "b"), [(1, "x"), (2, "y")]) == (
        "(`a`, `b`) IN ((%s, %s), (%s, %s))",
        [1, "x", 2, "y"],
    )


def test_row_image_marks_nulls_and_lengths_and_casts_mixed_collations() -> None:
    plain = row_image(shape(ID, Column("n", "int", "int(11)", False, None)))
    assert plain == "CONCAT_WS('#', `id`, `n`)"  # nothing nullable, no strings
    one_string = row_image(shape(ID, NAME))
    assert one_string == "CONCAT_WS('#', `id`, `name`, CONCAT(ISNULL(`name`)))"
    two = row_image(shape(ID, NAME, NOTE))
    assert "`note`, LENGTH(`name`), CONCAT" in two  # ('a#', 'b') vs ('a', '#b')
    assert "CONCAT(ISNULL(`name`), ISNULL(`note`))" in two
    mixed = row_image(shape(ID, NAME, BIN_NAME))
    assert "CAST(`name` AS BINARY)" in mixed and "CAST(`code` AS BINARY)" in mixed


def test_integer_key() -> None:
    assert integer_key(shape(ID, NAME))
    assert not integer_key(shape(ID, NAME, key=("id", "name")))
    assert not integer_key(shape(ID, NAME, key=("name",)))


# --- chunk sizes -----------------------------------------------------------------------


def test_chunk_sizer_aims_at_the_target_time_and_grows_gently() -> None:
    sizer = ChunkSizer(target_seconds=0.25)
    sizer.observe(1000, 0.001)  # a very fast first chunk (cached)
    assert sizer.rows == 4000  # at most 4x per step
    for _ in range(30):
        sizer.observe(sizer.rows, sizer.rows / 400_000)  # 400k rows/s
    assert sizer.rows == pytest.approx(100_000, rel=0.05)
    sizer.observe(100_000, 10.0)  # suddenly slow: shrinks at once
    assert sizer.rows < 100_000
    for _ in range(30):
        sizer.observe(sizer.rows, sizer.rows / 1e9)
    assert sizer.rows == MAX_ROWS


def test_next_step_strides_over_gaps_and_follows_density() -> None:
    assert next_step(1000, 0, 1000) == 4000
    assert next_step(1000, 100, 1000) == 4000  # sparse: at most 4x
    assert next_step(1000, 2000, 1000) == 500
    assert next_step(1000, 1_000_000, 1000) == 250  # at most /4
    assert next_step(1, 5, 1) == 1


def test_in_range_is_conservative_for_strings() -> None:
    assert in_range((5,), (4,), (5,)) and not in_range((4,), (4,), (5,))
    assert in_range((1,), None, None)
    assert in_range(("zzz",), ("a",), ("b",))  # collation order unknown here: recheck


# --- keys and journal windows ----------------------------------------------------------


def test_normalize_is_coarser_than_collations() -> None:
    assert normalize(("Abc  ",)) == normalize(("abc",))
    assert normalize((Decimal("1.50"),)) == normalize((Decimal("1.5"),))
    assert normalize((b"ab\x00\x00",)) == normalize(("AB",))  # BINARY(4) vs decoded text
    assert normalize((1, "x")) != normalize((2, "x"))


def _tx(seq: int, *changes: RowChange, ddl: str | None = None) -> Transaction:
    return Transaction(gtid=f"0-1-{seq}", commit_ts=0.0, changes=list(changes), ddl=ddl)


def _journal(path: Path, txs: list[Transaction]) -> None:
    journal = Journal(path)
    state = GtidState()
    journal.append(txs, state)
    journal.close()


def test_window_holds_exactly_the_changes_between_two_positions(tmp_path: Path) -> None:
    t = shape(ID, NAME)
    txs = [_tx(1, RowChange(INSERT, "app", "t", None, {"id": 1, "name": "a"}))]
    txs += [_tx(2)]  # an empty transaction (another schema): journaled too
    txs += [_tx(3, RowChange(UPDATE, "app", "t", {"id": 2, "name": "b"}, {"id": 20, "name": "b"}))]
    txs += [_tx(4, RowChange(DELETE, "app", "t", {"id": 3, "name": "c"}, None))]
    txs += [_tx(5, RowChange(INSERT, "app", "other", None, {"id": 5}))]
    path = tmp_path / "journal.db"
    _journal(path, txs)
    reader = JournalReader(path)
    since = GtidState.parse("0-1-2")
    window = reader.window(since, Applied(GtidState.parse("0-1-4"), 4, "0-1-4"))
    assert window is not None and not window.exact
    assert set(window.touched(t) or {}) == {(2,), (20,), (3,)}  # key change: both keys
    assert reader.window(since, Applied(GtidState.parse("0-1-2"), 2, "0-1-2")).exact  # type: ignore[union-attr]
    # From the journal's first entry: proven, nothing was trimmed before it.
    window = reader.window(GtidState(), Applied(GtidState.parse("0-1-1"), 1, "0-1-1"))
    assert window is not None and set(window.touched(t) or {}) == {(1,)}
    # Another journal (or a rebuilt one): cannot prove anything.
    assert reader.window(since, Applied(GtidState.parse("0-1-4"), 4, "0-1-9")) is None
    reader.close()
    assert (
        JournalReader(tmp_path / "missing.db").window(since, Applied(GtidState(), 4, "x")) is None
    )


def test_window_with_ddl_means_any_row(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    _journal(path, [_tx(1), _tx(2, ddl="ALTER TABLE app.t ADD c INT")])
    reader = JournalReader(path)
    window = reader.window(GtidState.parse("0-1-1"), Applied(GtidState.parse("0-1-2"), 2, "0-1-2"))
    assert window is not None and window.touched(shape(ID)) is None
    reader.close()


def test_window_after_a_trim_is_not_proven(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    _journal(path, [_tx(n) for n in range(1, 6)])
    journal = Journal(path)
    journal.trim(3, keep=0)  # entries 1-3 forgotten
    journal.close()
    reader = JournalReader(path)
    # The window back to 0-1-1 would need the trimmed entries: not provable.
    assert (
        reader.window(GtidState.parse("0-1-1"), Applied(GtidState.parse("0-1-5"), 5, "0-1-5"))
        is None
    )
    # One that starts after the trim is.
    window = reader.window(GtidState.parse("0-1-4"), Applied(GtidState.parse("0-1-5"), 5, "0-1-5"))
    assert window is not None and not window.ddl
    reader.close()


def test_a_read_only_journal_writes_nothing(tmp_path: Path) -> None:
    """status and verify open journals beside a running agent: never a table created in a
    file that is not a journal, never a write."""
    other = tmp_path / "not-a-journal.db"
    other.write_bytes(b"")
    reader = Journal(other, read_only=True)
    with pytest.raises(sqlite3.Error):
        reader.source_state()
    reader.close()
    assert other.read_bytes() == b""
    path = tmp_path / "journal.db"
    _journal(path, [_tx(1)])
    before = path.read_bytes()
    reader = Journal(path, read_only=True)
    assert reader.gtid_at(1) == "0-1-1" and reader.gtid_at(2) is None
    assert reader.entries_before(2, 10) == [(1, "0-1-1")]
    assert reader.transaction_at(1) is not None and reader.transaction_at(9) is None
    with pytest.raises(JournalError):
        reader.reset(GtidState())
    reader.close()
    assert path.read_bytes() == before


# --- schemas and reports -----------------------------------------------------------------


def test_schema_differences_name_what_differs() -> None:
    wide = Column("name", "varchar", "varchar(20)", False, "utf8mb4_general_ci")
    extra = Column("extra", "int", "int(11)", True, None)
    assert schema_differences(shape(ID, NAME), shape(ID, NAME)) == []
    assert schema_differences(shape(ID, NAME), shape(ID, wide, extra, key=("id", "name"))) == [
        "columns only on target: extra",
        "name: varchar(10) vs varchar(20)",
        "name: NULL vs NOT NULL",
        "primary key (id) vs (id, name)",
    ]


def test_exit_codes() -> None:
    report = VerifyReport("l", "a", "b", [TableResult("app.t", status=IDENTICAL)])
    assert report.exit_code == 0
    report.tables.append(TableResult("app.u", status=DIFFERENT_ROWS))
    assert report.exit_code == 1
    report.tables.append(TableResult("app.v", status=NO_KEY))
    assert report.exit_code == 2
