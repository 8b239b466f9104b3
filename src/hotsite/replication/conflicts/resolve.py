"""``hotsite conflicts resolve``: settle a parked conflict by hand, at every site at once.

The chosen row is written at the site that parked the conflict, in one transaction with
a row of ``hotsite.hotsite_resolutions``: capture sees that marker and flags the
transaction, and every other site's apply writes its rows as they are (no conflict
check) and settles its own parked conflicts on the same rows. The row is deleted and
written again, so the binlog carries it whole even when it did not change here; a row
chosen to be absent is written and deleted, so its absence travels too.
"""

from __future__ import annotations

import time
from typing import Any

from hotsite.errors import ConfigError
from hotsite.replication.apply import statements as sql
from hotsite.replication.conflicts import log
from hotsite.replication.origins import RESOLUTIONS_TABLE, ensure_origin_tables
from hotsite.replication.schema import HOTSITE_SCHEMA, describe, quote
from hotsite.replication.transactions import Row


def resolve(conn: Any, project: str, site: str, conflict_id: int, take: str) -> log.Conflict:
    """Write the chosen row (``take``: "source", the incoming change; "target", the row the
    site kept) and mark the conflict resolved. The connection is the site's, not in
    autocommit."""
    with conn.cursor() as cur:
        ensure_origin_tables(cur)
    conn.commit()
    try:
        with conn.cursor() as cur:
            conflict = log.get_conflict(cur, project, conflict_id, lock=True)
            if conflict is None:
                raise ConfigError(
                    f"no conflict {site}:{conflict_id}",
                    "list them with 'hotsite conflicts list'",
                )
            if conflict.status != log.PARKED:
                raise ConfigError(
                    f"conflict {site}:{conflict_id} is not waiting for a decision"
                    f" ({conflict.status}{': ' + conflict.resolution if conflict.resolution else ''})",
                    "list the parked ones with 'hotsite conflicts list'",
                )
            schema, table = conflict.table.split(".", 1)
            info = describe(conn, schema, table)
            key = tuple(conflict.key[c] for c in info.primary_key)
            current = _locked_row(cur, info, key)
            chosen = conflict.incoming_after if take == "source" else current
            placeholder = chosen or conflict.incoming_after or conflict.incoming_before or current
            _rewrite(cur, info, key, chosen, placeholder)
            cur.execute(
                f"INSERT INTO {HOTSITE_SCHEMA}.{RESOLUTIONS_TABLE} (project, conflict, resolved_at)"
                " VALUES (%s, %s, %s)",
                (project, conflict.ref, time.time()),
            )
            others = log.parked_on_keys(cur, project, conflict.table, [conflict.key])
            log.mark_resolved(cur, project, others, f"took {take} by hand")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return conflict


def _locked_row(cur: Any, info: Any, key: tuple[Any, ...]) -> Row | None:
    columns = [c.name for c in info.columns if not c.generated]
    where = " AND ".join(f"{quote(c)} <=> %s" for c in info.primary_key)
    cur.execute(
        f"SELECT {', '.join(quote(c) for c in columns)} FROM {info.qualified}"
        f" WHERE {where} FOR UPDATE",
        [sql.db_value(v) for v in key],
    )
    found = cur.fetchone()
    return dict(zip(columns, found, strict=True)) if found else None


def _rewrite(
    cur: Any, info: Any, key: tuple[Any, ...], chosen: Row | None, placeholder: Row | None
) -> None:
    where = " AND ".join(f"{quote(c)} <=> %s" for c in info.primary_key)
    key_args = [sql.db_value(v) for v in key]
    cur.execute(f"DELETE FROM {info.qualified} WHERE {where}", key_args)
    row = chosen if chosen is not None else placeholder
    if row is None:
        return
    names = {c.name for c in info.columns if not c.generated}
    row = {c: v for c, v in row.items() if c in names}
    columns = ", ".join(quote(c) for c in row)
    marks = ", ".join(["%s"] * len(row))
    cur.execute(
        f"INSERT INTO {info.qualified} ({columns}) VALUES ({marks})",
        [sql.db_value(v) for v in row.values()],
    )
    if chosen is None:  # absent was chosen: written and deleted, so the absence travels
        cur.execute(f"DELETE FROM {info.qualified} WHERE {where}", key_args)
