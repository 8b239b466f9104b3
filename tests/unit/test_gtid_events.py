import datetime as dt
import json
from decimal import Decimal

import pytest

from hotsite.config import DatabaseURL
from hotsite.replication import transactions
from hotsite.replication.gtid import Gtid, GtidState


def test_gtid_state_compares_per_domain() -> None:
    state = GtidState.parse("0-1-10,1-2-5")
    assert state.covers(Gtid.parse("0-1-10")) and state.covers(Gtid.parse("0-9-3"))
    assert not state.covers(Gtid.parse("0-1-11")) and not state.covers(Gtid.parse("2-1-1"))
    assert state.reached(GtidState.parse("0-1-9,1-2-5"))
    assert not state.reached(GtidState.parse("0-1-9,1-2-6"))
    assert GtidState.parse("0-1-4").behind(state) == 6 + 5
    assert str(GtidState.parse(str(state))) == "0-1-10,1-2-5"
    with pytest.raises(ValueError, match="not a MariaDB GTID"):
        Gtid.parse("abc")


def test_transaction_round_trips_every_value_type() -> None:
    row = {
        "id": 1,
        "name": "ü",
        "blob": b"\x00\xff",
        "at": dt.datetime(2026, 1, 2, 3, 4, 5, 678901),
        "day": dt.date(2026, 1, 2),
        "dur": dt.timedelta(hours=-1, microseconds=5),
        "price": Decimal("12.3400"),
        "nothing": None,
        "flags": {"a", "b"},
        "doc": {"nested": [1, 2]},
    }
    tx = transactions.Transaction(
        "0-1-5", 1.5, [transactions.RowChange(transactions.UPDATE, "app", "t", row, row)]
    )
    back = transactions.decode(transactions.encode(tx))
    assert back.gtid == "0-1-5" and back.commit_ts == 1.5
    after = back.changes[0].after
    assert after is not None
    assert {k: v for k, v in after.items() if k != "flags"} == {
        k: v for k, v in row.items() if k != "flags"
    }
    assert after["flags"] == "a,b"
    ddl = transactions.decode(
        transactions.encode(
            transactions.Transaction("0-1-6", 2.0, ddl="ALTER TABLE t ADD c INT", ddl_schema="app")
        )
    )
    assert (ddl.ddl, ddl.ddl_schema, ddl.changes) == ("ALTER TABLE t ADD c INT", "app", [])


def test_change_kinds_keep_the_journal_wire_format() -> None:
    # A journal written before ChangeKind existed holds plain "i"/"u"/"d": it still reads.
    old = b'{"g":"0-1-7","t":3.0,"c":[["i","app","t",null,{"id":1}],["d","app","t",{"id":2},null]]}'
    back = transactions.decode(old)
    assert [c.kind for c in back.changes] == [
        transactions.ChangeKind.INSERT,
        transactions.ChangeKind.DELETE,
    ]
    assert all(isinstance(c.kind, transactions.ChangeKind) for c in back.changes)
    assert transactions.encode(back) == old  # and is written the same way
    assert transactions.UPDATE == "u" and transactions.ChangeKind("u") is transactions.UPDATE


def test_database_url_hides_password_and_expands_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBPASS", "s3cret")
    url = DatabaseURL.parse("mysql://app:${DBPASS}@db.example:3307/shop")
    assert (url.user, url.password, url.host, url.port, url.database) == (
        "app",
        "s3cret",
        "db.example",
        3307,
        "shop",
    )
    assert "s3cret" not in repr(url) and "s3cret" not in str(url)
    with pytest.raises(ValueError, match="NOPE is not set"):
        DatabaseURL.parse("mysql://a:${NOPE}@h/d")


@pytest.mark.parametrize(
    "value",
    [
        2**64 - 1,  # BIGINT UNSIGNED's largest
        -(2**63),
        'said "$b": not a tag',  # a string holding a tag's opening: read the slow way
        {"$b": "not a tag, two keys", "x": 1},
        "\ud800",  # a lone surrogate (orjson refuses it; json carries it)
        0.1,
        -0.0,
        1e16,
    ],
)
def test_journal_json_reads_back_every_value_exactly(value: object) -> None:
    row = {"id": 1, "v": value}
    tx = transactions.Transaction(
        "0-1-9", 4.0, [transactions.RowChange(transactions.INSERT, "app", "t", None, row)]
    )
    after = transactions.decode(transactions.encode(tx)).changes[0].after
    assert after == row and type(after["v"]) is type(value)
    # The journal's JSON is the same whichever library wrote it: old journals still read.
    slow = json.dumps({"g": "0-1-9", "t": 4.0, "c": [["i", "app", "t", None, row]]})
    assert transactions.decode(slow.encode()).changes[0].after == row


def test_an_integer_past_64_bits_is_refused_not_journaled_as_a_float() -> None:
    tx = transactions.Transaction(
        "0-1-9", 4.0, [transactions.RowChange(transactions.INSERT, "app", "t", None, {"v": 2**64})]
    )
    with pytest.raises(TypeError, match="past 64 bits"):
        transactions.encode(tx)
