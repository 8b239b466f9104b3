"""What flows through the pipeline: source transactions with their row changes or DDL.

Row images, not SQL text, so statements like ``UUID()`` or ``NOW()`` cannot diverge when
re-run. Transactions are stored in the journal as compact JSON: readable with the
sqlite3 shell when debugging, and independent of hotsite's Python version.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class ChangeKind(enum.StrEnum):
    """What a row change does. The values are the journal's wire format ("i", "u", "d"):
    a ``str`` enum, so journals written before it existed read back unchanged."""

    INSERT = "i"
    UPDATE = "u"
    DELETE = "d"


INSERT, UPDATE, DELETE = ChangeKind.INSERT, ChangeKind.UPDATE, ChangeKind.DELETE
_KINDS = {kind.value: kind for kind in ChangeKind}  # a dict lookup: decode is per row

# One row image: column name -> value (as the binlog decoders and pymysql give them).
Row = dict[str, Any]
# A primary key's values, in the key's column order.
Key = tuple[Any, ...]


@dataclass(slots=True)
class RowChange:
    kind: ChangeKind
    schema: str
    table: str
    before: Row | None  # None for INSERT
    after: Row | None  # None for DELETE


@dataclass(slots=True)
class Transaction:
    """One committed source transaction."""

    gtid: str
    commit_ts: float  # source commit time, epoch seconds (binlog: whole seconds)
    changes: list[RowChange] = field(default_factory=list)
    # One DDL statement, run before the row changes (if any): text, or the statement's
    # bytes when they are not utf8 (they are in the session's client character set).
    ddl: str | bytes | None = None
    ddl_schema: str | None = None  # the default schema the DDL ran in
    # The DDL's session on the source: [sql_mode, character_set_client,
    # collation_connection, collation_server] as numbers (capture/query_context.py).
    ddl_context: list[int | None] | None = None
    heartbeat_ts: float | None = None  # set when this is a hotsite heartbeat (µs precision)
    # A transaction too big to hold in memory travels in parts (0, 1, …); apply writes
    # all of them in one target transaction, committed with the final one.
    part: int = 0
    final: bool = True
    size: int = 0  # bytes of its binlog rows events (in memory only, not journaled)

    @property
    def row_count(self) -> int:
        return len(self.changes)


def _encode_value(value: Any) -> Any:
    # JSON cannot carry these types; tag them so decoding restores the exact type.
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode()}
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$d": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"$td": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, dt.time):
        return {"$t": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$n": str(value)}
    if isinstance(value, (set, frozenset)):
        return {"$s": sorted(value)}
    raise TypeError(f"cannot journal a value of type {type(value).__name__}")


_DECODERS: dict[str, Any] = {
    "$b": lambda v: base64.b64decode(v),
    "$dt": dt.datetime.fromisoformat,
    "$d": dt.date.fromisoformat,
    "$td": lambda v: dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "$t": dt.time.fromisoformat,
    "$n": Decimal,
    "$s": lambda v: ",".join(v),  # a SET column is written back as 'a,b'
}


def _decode_object(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        key, value = next(iter(obj.items()))
        decoder = _DECODERS.get(key)
        if decoder is not None:
            return decoder(value)
    return obj


def encode(tx: Transaction) -> bytes:
    body: dict[str, Any] = {"g": tx.gtid, "t": tx.commit_ts}
    if tx.ddl is not None:
        body["ddl"] = tx.ddl
        body["db"] = tx.ddl_schema
        if tx.ddl_context:
            body["ctx"] = tx.ddl_context
    if tx.changes or tx.ddl is None:  # CREATE TABLE … SELECT has both
        body["c"] = [[c.kind, c.schema, c.table, c.before, c.after] for c in tx.changes]
    if tx.heartbeat_ts is not None:
        body["hb"] = tx.heartbeat_ts
    if tx.part:
        body["p"] = tx.part
    if not tx.final:
        body["nf"] = 1
    return json.dumps(body, default=_encode_value, separators=(",", ":")).encode()


def decode(payload: bytes) -> Transaction:
    body = json.loads(payload, object_hook=_decode_object)
    changes = [
        RowChange(_KINDS[kind], schema, table, before, after)
        for kind, schema, table, before, after in body.get("c", ())
    ]
    return Transaction(
        gtid=body["g"],
        commit_ts=body["t"],
        changes=changes,
        ddl=body.get("ddl"),
        ddl_schema=body.get("db"),
        ddl_context=body.get("ctx"),
        heartbeat_ts=body.get("hb"),
        part=body.get("p", 0),
        final=not body.get("nf"),
    )
