"""What verify found: per table, per row; as a rich table for people and JSON for machines.

Exit status: 0 when every table is identical, 1 when differences were found (rows,
schemas, tables on one side only; also when they were repaired), 2 when the
verification could not be completed (rows that kept changing faster than they could
be compared at a common position, tables without a primary key) or for errors.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hotsite.replication.verify.sql import Key

MISSING, EXTRA, DIFFERENT = "missing", "extra", "different"

IDENTICAL = "identical"
DIFFERENT_ROWS = "rows differ"
SCHEMA = "schema differs"
SOURCE_ONLY = "missing on target"
TARGET_ONLY = "only on target"
NO_KEY = "no primary key"
UNSETTLED = "unsettled"


@dataclass(frozen=True)
class RowDiff:
    key: Key
    kind: str  # MISSING (on target), EXTRA (on target), DIFFERENT
    columns: tuple[str, ...] = ()


@dataclass
class TableResult:
    table: str
    primary_key: tuple[str, ...] = ()
    status: str = IDENTICAL
    rows: int = 0  # rows read on the authoritative side
    chunks: int = 0
    missing: int = 0
    extra: int = 0
    different: int = 0
    unsettled: int = 0  # keys (or chunks' rows) never seen at a common position
    repaired: int = 0
    row_rounds: int = 0  # row-level comparisons (differing chunks, keys that moved)
    schema: list[str] = field(default_factory=list)
    diffs: list[RowDiff] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def differences(self) -> int:
        return self.missing + self.extra + self.different

    def add(self, diff: RowDiff, detail_limit: int) -> None:
        if diff.kind == MISSING:
            self.missing += 1
        elif diff.kind == EXTRA:
            self.extra += 1
        else:
            self.different += 1
        if len(self.diffs) < detail_limit:
            self.diffs.append(diff)

    def finish(self) -> None:
        if self.status == IDENTICAL and self.differences:
            self.status = DIFFERENT_ROWS
        if self.status == IDENTICAL and self.unsettled:
            self.status = UNSETTLED


@dataclass
class VerifyReport:
    link: str
    source: str  # the authoritative site
    target: str
    tables: list[TableResult] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    repair: bool = False

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def differing_rows(self) -> int:
        """Rows missing, extra or different on the target (not rows verified)."""
        return sum(t.differences for t in self.tables)

    @property
    def differing_tables(self) -> int:
        """Tables found different (rows, schema, one side only), not those left unsettled."""
        return sum(
            t.status in (DIFFERENT_ROWS, SCHEMA, SOURCE_ONLY, TARGET_ONLY) for t in self.tables
        )

    @property
    def exit_code(self) -> int:
        if any(t.status in (UNSETTLED, NO_KEY) or t.unsettled for t in self.tables):
            return 2
        if any(t.status != IDENTICAL for t in self.tables):
            return 1
        return 0

    def as_json(self) -> dict[str, Any]:
        return {
            "link": self.link,
            "source": self.source,
            "target": self.target,
            "identical": self.exit_code == 0,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 3),
            "rows": self.rows,
            "differing_rows": self.differing_rows,
            "repair": self.repair,
            "tables": [_table_json(t) for t in self.tables],
        }


def _table_json(t: TableResult) -> dict[str, Any]:
    return {
        "table": t.table,
        "status": t.status,
        "rows": t.rows,
        "chunks": t.chunks,
        "missing": t.missing,
        "extra": t.extra,
        "different": t.different,
        "unsettled": t.unsettled,
        "repaired": t.repaired,
        "row_rounds": t.row_rounds,
        "schema": t.schema,
        "seconds": round(t.seconds, 3),
        "diffs": [
            {
                "key": dict(zip(t.primary_key, (json_value(v) for v in d.key), strict=False)),
                "kind": d.kind,
                "columns": list(d.columns),
            }
            for d in t.diffs
        ],
    }


def json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (dt.date, dt.time, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (Decimal, dt.timedelta)):
        return str(value)
    return value


def key_text(key: Key) -> str:
    return ", ".join(str(json_value(v)) for v in key)
