"""The conflict log: a table in the hotsite schema of the site that saw each conflict.

A conflict is written in the same target transaction as the decision it records, so a
crash loses both or neither, and the log needs no agent to read it: ``hotsite
conflicts`` reads it straight from each site's database. Row images are stored as the
journal encodes them (transactions.encode_row): exact types, no loss.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from hotsite.replication.schema import HOTSITE_SCHEMA
from hotsite.replication.transactions import Row, decode_row, encode_row

CONFLICTS_TABLE = "hotsite_conflicts"
SETTLED, PARKED, RESOLVED = "settled", "parked", "resolved"


def ensure_conflicts_table(cur: Any) -> None:
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {HOTSITE_SCHEMA}.{CONFLICTS_TABLE} ("
        " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " project VARCHAR(64) NOT NULL,"
        " site VARCHAR(64) NOT NULL,"
        " link_key VARCHAR(255) NOT NULL,"
        " origin VARCHAR(64) NOT NULL,"
        " origin_gtid VARCHAR(64) NOT NULL,"
        " table_name VARCHAR(200) NOT NULL,"
        " row_key TEXT NOT NULL,"
        " kind VARCHAR(40) NOT NULL,"
        " target_row LONGTEXT NULL,"
        " incoming_before LONGTEXT NULL,"
        " incoming_after LONGTEXT NULL,"
        " policy VARCHAR(20) NOT NULL,"
        " decision VARCHAR(20) NOT NULL,"
        " status VARCHAR(10) NOT NULL,"
        " seen_at DOUBLE NOT NULL,"
        " resolved_at DOUBLE NULL,"
        " resolution VARCHAR(200) NULL,"
        " KEY parked (project, status, table_name)"
        ") ENGINE=InnoDB"
    )


def conflicts_logged(cur: Any) -> bool:
    """Whether the site has a conflict log (apply creates it; readers never do)."""
    cur.execute(
        "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
        (HOTSITE_SCHEMA, CONFLICTS_TABLE),
    )
    return cur.fetchone() is not None


@dataclass
class Conflict:
    id: int
    site: str
    link_key: str
    origin: str
    origin_gtid: str
    table: str
    key: Row
    kind: str
    target_row: Row | None
    incoming_before: Row | None
    incoming_after: Row | None
    policy: str
    decision: str
    status: str
    seen_at: float
    resolved_at: float | None = None
    resolution: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.site}:{self.id}"

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "id": self.ref}


_COLUMNS = (
    "id, site, link_key, origin, origin_gtid, table_name, row_key, kind, target_row,"
    " incoming_before, incoming_after, policy, decision, status, seen_at, resolved_at,"
    " resolution"
)


def record(
    cur: Any,
    project: str,
    site: str,
    link_key: str,
    origin: str,
    origin_gtid: str,
    table: str,
    key: Row,
    kind: str,
    target_row: Row | None,
    before: Row | None,
    after: Row | None,
    policy: str,
    decision: str,
) -> None:
    status = PARKED if decision == "parked" else SETTLED
    cur.execute(
        f"INSERT INTO {HOTSITE_SCHEMA}.{CONFLICTS_TABLE} (project, site, link_key, origin,"
        " origin_gtid, table_name, row_key, kind, target_row, incoming_before, incoming_after,"
        " policy, decision, status, seen_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            project, site, link_key, origin, origin_gtid, table, encode_row(key), kind,
            encode_row(target_row), encode_row(before), encode_row(after), policy, decision,
            status, time.time(),
        ),
    )  # fmt: skip


def _conflict(row: tuple[Any, ...]) -> Conflict:
    return Conflict(
        int(row[0]), row[1], row[2], row[3], row[4], row[5], decode_row(row[6]) or {},
        row[7], decode_row(row[8]), decode_row(row[9]), decode_row(row[10]), row[11],
        row[12], row[13], float(row[14]), row[15], row[16],
    )  # fmt: skip


def list_conflicts(
    cur: Any, project: str, table: str | None = None, status: str | None = None, limit: int = 1000
) -> list[Conflict]:
    where, args = ["project = %s"], [project]
    if table:
        where.append("table_name = %s")
        args.append(table)
    if status:
        where.append("status = %s")
        args.append(status)
    cur.execute(
        f"SELECT {_COLUMNS} FROM {HOTSITE_SCHEMA}.{CONFLICTS_TABLE}"
        f" WHERE {' AND '.join(where)} ORDER BY id LIMIT %s",
        (*args, limit),
    )
    return [_conflict(row) for row in cur.fetchall()]


def get_conflict(cur: Any, project: str, conflict_id: int, lock: bool = False) -> Conflict | None:
    cur.execute(
        f"SELECT {_COLUMNS} FROM {HOTSITE_SCHEMA}.{CONFLICTS_TABLE}"
        " WHERE project = %s AND id = %s" + (" FOR UPDATE" if lock else ""),
        (project, conflict_id),
    )
    row = cur.fetchone()
    return _conflict(row) if row else None


def counts_by_table(cur: Any, project: str, link_key: str) -> dict[str, int]:
    cur.execute(
        f"SELECT table_name, COUNT(*) FROM {HOTSITE_SCHEMA}.{CONFLICTS_TABLE}"
        " WHERE project = %s AND link_key = %s GROUP BY table_name",
        (project, link_key),
    )
    return {name: int(count) for name, count in cur.fetchall()}


def parked_count(cur: Any, project: str, link_key: str) -> int:
    cur.execute(
        f"SELECT COUNT(*) FROM {HOTSITE_SCHEMA}.{CONFLICTS_TABLE}"
        " WHERE project = %s AND link_key = %s AND status = %s",
        (project, link_key, PARKED),
    )
    return int(cur.fetchone()[0])


def mark_resolved(cur: Any, project: str, ids: list[int], resolution: str) -> None:
    if not ids:
        return
    marks = ", ".join(["%s"] * len(ids))
    cur.execute(
        f"UPDATE {HOTSITE_SCHEMA}.{CONFLICTS_TABLE} SET status = %s, resolved_at = %s,"
        f" resolution = %s WHERE project = %s AND status = %s AND id IN ({marks})",
        (RESOLVED, time.time(), resolution, project, PARKED, *ids),
    )


def parked_on_keys(cur: Any, project: str, table: str, keys: list[Row]) -> list[int]:
    """Parked conflicts on these rows (a resolution from another site settles them)."""
    if not keys:
        return []
    wanted = {encode_row(key) for key in keys}
    cur.execute(
        f"SELECT id, row_key FROM {HOTSITE_SCHEMA}.{CONFLICTS_TABLE}"
        " WHERE project = %s AND status = %s AND table_name = %s",
        (project, PARKED, table),
    )
    return [int(i) for i, key in cur.fetchall() if key in wanted]
