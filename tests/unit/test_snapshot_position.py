"""A snapshot whose source cannot name its GTID position fails before touching the target.

The source's answer (BINLOG_GTID_POS returning NULL after an event larger than its
max_allowed_packet) cannot be produced on demand, so a stand-in connection gives it.
"""

from __future__ import annotations

from typing import Any

import pytest

from hotsite.errors import DatabaseError
from hotsite.replication.snapshot import _consistent_read


class _Cursor:
    def __init__(self, answers: dict[str, list[tuple[Any, ...]]]) -> None:
        self.answers = answers
        self.rows: list[tuple[Any, ...]] = []

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str, args: Any = None) -> None:
        self.rows = next((rows for key, rows in self.answers.items() if key in sql), [])

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None


class _Connection:
    def __init__(self, gtid: str | None) -> None:
        self.answers = {
            "SHOW STATUS": [
                ("Binlog_snapshot_file", "binlog.000001"),
                ("Binlog_snapshot_position", "4"),
            ],
            "BINLOG_GTID_POS": [(gtid,)],
        }

    def cursor(self) -> _Cursor:
        return _Cursor(self.answers)


def test_unknown_snapshot_position_is_an_error_not_an_empty_position() -> None:
    with pytest.raises(DatabaseError, match="could not tell the GTID position"):
        _consistent_read(_Connection(None), "primary")
    assert str(_consistent_read(_Connection("0-1-5"), "primary")) == "0-1-5"
