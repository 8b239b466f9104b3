"""What flows through the pipeline: source transactions with their row changes or DDL.

"Events" in hotsite are the binlog's (capture/stream.py turns them into a few simple
ones); what capture makes of them, ships, journals and applies are *transactions*,
defined here.

Row images, not SQL text, so statements like ``UUID()`` or ``NOW()`` cannot diverge when
re-run. Transactions are stored in the journal as compact JSON: readable with the
sqlite3 shell when debugging, and independent of hotsite's Python version. orjson writes
and reads it: the standard library's json cost capture and apply ~15% of their time on
a backlog, for the same JSON (values json cannot carry are tagged either way).
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson


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
    # Where the transaction was first committed, when not at the link's source: a site
    # that applied it from elsewhere forwards it around a ring (docs/replication.md,
    # "Both directions"). ``origin_gtid`` is its GTID at the origin; a forwarded group
    # of several origin transactions also names the first of them (``origin_first``).
    origin: str | None = None
    origin_gtid: str | None = None
    origin_first: str | None = None
    # Written by 'hotsite conflicts resolve': every site takes these rows as they are.
    forced: bool = False
    # Deletions that won a conflict, for the site the deleted change came from (written
    # with the decision, conflicts/writer.py): [table, key, the row it must still hold].
    settlements: list[list[Any]] = field(default_factory=list)
    # Row versions of its changes at sites that both take writes, in binlog order: one
    # rowversions.VersionEntry per shadow row event. Apply folds them per key.
    versions: list[list[Any]] = field(default_factory=list)
    # Applied at the source from a site this link does not ship to (an echo): it moves
    # the shipped position but is not journaled (in memory only, like ``size``).
    skip: bool = False

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
    if tx.origin is not None:
        body["o"] = [tx.origin, tx.origin_gtid, tx.origin_first]
    if tx.forced:
        body["f"] = 1
    if tx.settlements:
        body["st"] = tx.settlements
    if tx.versions:
        body["v"] = tx.versions
    try:
        return orjson.dumps(body, default=_encode_value, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        if _has_wide_int(body):
            # No MariaDB type holds one, and orjson would read it back as a float: refuse
            # (the link stops on it) rather than journal a value that comes back changed.
            raise TypeError("cannot journal an integer past 64 bits") from None
        # What else orjson refuses and json takes (a lone surrogate, a key not a str):
        # the same JSON, the slow way; a value neither can carry raises TypeError here.
        return json.dumps(body, default=_encode_value, separators=(",", ":")).encode()


def _has_wide_int(value: Any) -> bool:
    """An int outside orjson's 64 bits anywhere in ``value`` (looked for only when orjson
    refused a body: not on the hot path)."""
    if isinstance(value, int):
        return not -(2**63) <= value < 2**64
    if isinstance(value, dict):
        return any(_has_wide_int(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_wide_int(v) for v in value)
    return False


# Dates and times go through _encode_value too (tagged, so they decode to their type).
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME
# The opening of a tagged value's key. Without it anywhere in a payload no object needs
# _decode_object, and orjson (which has no object hook) reads it all; with it (or a
# string value holding '"$'), json does, as it always has.
_TAG = b'"$'


def decode(payload: bytes) -> Transaction:
    body: dict[str, Any] | None = None
    if _TAG not in payload:
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:  # what json alone reads (NaN, a lone surrogate)
            body = None
    if body is None:
        body = json.loads(payload, object_hook=_decode_object)
    changes = [
        RowChange(_KINDS[kind], schema, table, before, after)
        for kind, schema, table, before, after in body.get("c", ())
    ]
    origin, origin_gtid, origin_first = body.get("o") or (None, None, None)
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
        origin=origin,
        origin_gtid=origin_gtid,
        origin_first=origin_first,
        forced=bool(body.get("f")),
        settlements=body.get("st") or [],
        versions=body.get("v") or [],
    )


def encode_row(row: Row | None) -> str | None:
    """A row image as JSON text (the journal's encoding), for hotsite's own tables."""
    if row is None:
        return None
    return json.dumps(row, default=_encode_value, separators=(",", ":"))


def decode_row(text: str | None) -> Row | None:
    return None if text is None else json.loads(text, object_hook=_decode_object)
