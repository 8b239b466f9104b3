"""Pure pieces of apply: SQL literals and statement splitting, key and error texts,
fault point specs. (The behaviour against real servers is in tests/integration.)"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pymysql
import pytest

from hotsite import faults
from hotsite.replication.apply import statements as sql
from hotsite.replication.apply.ddl import schema_matcher, shown, took_effect
from hotsite.replication.apply.errors import without_values
from hotsite.replication.apply.rows import describe_key, duplicate_key_name
from hotsite.replication.schema import Column, TableInfo


class Escaper:
    """What row_literal needs of a connection: the driver's own escaping."""

    @staticmethod
    def escape(value: Any) -> str:
        return str(pymysql.converters.escape_item(value, "utf8mb4"))


def test_row_literal_writes_what_the_driver_would() -> None:
    values = [7, None, "it's", b"\x00\xff", Decimal("1.50"), dt.datetime(2024, 1, 2, 3, 4, 5, 6)]
    expected = "(" + ", ".join(Escaper.escape(v) for v in values) + ")"
    assert sql.row_literal(Escaper, values) == expected
    assert sql.row_literal(Escaper, [True, {"a": [1]}]) == "(1, '{\\\"a\\\": [1]}')"


def test_multi_row_splits_under_the_statement_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql, "MAX_STATEMENT", 30)
    rows = [f"({i})" for i in range(10)]  # 3 characters each, 5 with the separator
    statements = list(sql.multi_row("INS ", rows, " END"))
    assert all(len(s) <= 30 for s in statements)
    assert "".join(s[4:-4] + ", " for s in statements).rstrip(", ") == ", ".join(rows)
    assert list(sql.multi_row("INS ", ["(" + "x" * 50 + ")"], "")) == ["INS (" + "x" * 50 + ")"]
    assert list(sql.multi_row("INS ", [], "")) == []


def test_key_lists_inline_integers_and_bind_the_rest() -> None:
    single = TableInfo("app", "t", (Column("id"), Column("v")), ("id",), False)
    composite = TableInfo("app", "o", (Column("shop"), Column("num")), ("shop", "num"), False)
    assert sql.delete_many(single, [(1,), (2,)]) == (
        "DELETE FROM `app`.`t` WHERE `id` IN (1, 2)",
        None,
    )
    assert sql.select_keys(single, [("a",), (3,)]) == (
        "SELECT `id` FROM `app`.`t` WHERE `id` IN (%s, %s)",
        ["a", 3],
    )
    statement, args = sql.count_keys(composite, [[(1, 2), (3, 4)], [(5, "x")]])
    assert statement == (
        "SELECT (SELECT COUNT(*) FROM `app`.`o` WHERE (`shop`, `num`) IN ((1, 2), (3, 4))),"
        " (SELECT COUNT(*) FROM `app`.`o` WHERE (`shop`, `num`) IN ((%s, %s)))"
    )
    assert args == [5, "x"]
    assert sql.delete_many(single, [(True,)])[1] == [True], "a bool is no integer literal"


def test_texts_name_keys_never_values() -> None:
    assert describe_key(("id",), (5,)) == "id=5"
    assert describe_key(("shop", "num"), (1, "x" * 100)) == "(shop, num)=(1, '" + "x" * 36 + "...)"
    error = pymysql.err.IntegrityError(1062, "Duplicate entry 'me@x' for key 'uq_email'")
    assert duplicate_key_name(error) == "uq_email"
    assert duplicate_key_name(pymysql.err.IntegrityError(1062, "... for key 'users.PRIMARY'")) == (
        "PRIMARY"
    )
    assert duplicate_key_name(pymysql.err.OperationalError(1205, "Lock wait")) is None
    assert without_values("Duplicate entry 'me@x' for key 'uq_email'") == (
        "Duplicate entry '...' for key 'uq_email'"
    )
    assert without_values("Incorrect integer value: 'abc' for column `a`.`t`.`n` at row 1") == (
        "Incorrect integer value: '...' for column `a`.`t`.`n` at row 1"
    )


def test_ddl_helpers() -> None:
    assert shown("ALTER  TABLE\n t ADD x INT") == "ALTER TABLE t ADD x INT"
    long = "CREATE TABLE t (" + "a INT, " * 100 + ")"
    assert len(shown(long)) == 200 and shown(long).endswith("...")
    replicated = schema_matcher(["app.*", "shop.orders"], "ignored")
    assert replicated("app") and replicated("SHOP") and not replicated("audit")
    assert schema_matcher([], "app")("app")
    same, ids, no_ids = "a" * 32, "1" * 32, "0" * 32
    assert not took_effect(same + ids, same + ids)
    assert took_effect(same + ids, same + "2" * 32), "a swap shows in the table ids only"
    assert took_effect(same + ids, "b" * 32 + ids)
    assert not took_effect(same + ids, same + no_ids), "ids unreadable now: structure decides"
    assert not took_effect(same + no_ids, same + ids)


def test_fault_specs() -> None:
    assert faults._parse("") is None
    assert faults._parse("apply.before_commit") == ("apply.before_commit", 1)
    assert faults._parse("ship.after_append:7") == ("ship.after_append", 7)
    assert faults._parse("x:0") == ("x", 1)
    assert faults._parse("x:abc") == ("x", 1)


def test_an_unarmed_fault_point_does_nothing() -> None:
    faults.fault_point("apply.before_commit")  # HOTSITE_FAULT is not set in the test run
