"""Refusals whose server answer cannot be produced here, given by a stand-in connection.

A snapshot whose source cannot name its GTID position fails before touching the target;
a MySQL source is refused at start. Neither answer (BINLOG_GTID_POS returning NULL after
an event larger than max_allowed_packet; a MySQL server) can be produced on demand here.
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


def test_a_mysql_source_is_refused_at_start() -> None:
    """No MySQL server runs here: a stand-in answers VERSION() as MySQL 8 does."""
    from hotsite.errors import SourceSettingsError
    from hotsite.replication.support import _refuse_mysql

    class _Mysql(_Connection):
        def __init__(self, version: str) -> None:
            self.answers = {"VERSION()": [(version,)]}

    with pytest.raises(SourceSettingsError, match=r"runs MySQL 8\.0\.36"):
        _refuse_mysql(_Mysql("8.0.36"), "primary")
    _refuse_mysql(_Mysql("10.11.9-MariaDB-0+deb12u1-log"), "primary")
