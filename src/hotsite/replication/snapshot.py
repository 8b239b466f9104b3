"""Initial load: copy the selected tables from a consistent read of the source, at a
known binlog position, while the source keeps taking writes; streaming starts there.

``START TRANSACTION WITH CONSISTENT SNAPSHOT`` gives both the MVCC read view and, in
MariaDB, the binlog position that view corresponds to (``binlog_snapshot_file/position``
status), which ``BINLOG_GTID_POS`` turns into the GTID position to stream from. No lock
is taken on the source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hotsite.config import DatabaseURL
from hotsite.db import connect, query_value
from hotsite.errors import DatabaseError
from hotsite.faults import fault_point
from hotsite.replication.gtid import GtidState
from hotsite.replication.journal import Journal
from hotsite.replication.schema import (
    APPLIED_TABLE,
    HEARTBEAT_TABLE,
    HOTSITE_SCHEMA,
    ensure_hotsite_schema,
    list_tables,
    quote,
    require_primary_keys,
)

BATCH_ROWS = 5000
Progress = Callable[[str, int, int], None]  # (table, rows done, rows estimated)


@dataclass
class SnapshotResult:
    position: GtidState
    tables: int
    rows: int


def snapshot(
    source_url: DatabaseURL,
    source_site: str,
    target_url: DatabaseURL,
    target_site: str,
    matches: Callable[[str, str], bool],
    journal: Journal,
    link_key: str,
    progress: Progress | None = None,
) -> SnapshotResult:
    """Load every selected table into the target and reset the link to the snapshot position.

    Target tables of the same names are dropped and recreated from the source's
    definition: a snapshot makes the target equal to the source, whatever it held.
    """
    source = connect(source_url, source_site, streaming=True, timeout=10)
    target = connect(target_url, target_site, autocommit=False, timeout=10)
    try:
        meta = connect(source_url, source_site)
        tables = list_tables(meta, matches)
        require_primary_keys(meta, tables)
        ensure_hotsite_schema(meta)
        _mark_source(meta, source_site)  # guarantees a non-empty GTID position
        estimates = {t: _estimate_rows(meta, *t) for t in tables}
        meta.close()

        ensure_hotsite_schema(target)
        with target.cursor() as cur:
            # Forget the old position first: a snapshot that dies half-way must leave a
            # target that the next 'replicate' reloads, never one it streams onto.
            cur.execute(
                f"DELETE FROM {HOTSITE_SCHEMA}.{APPLIED_TABLE} WHERE link_key = %s", (link_key,)
            )
        target.commit()
        position = _consistent_read(source)
        with target.cursor() as cur:
            cur.execute("SET SESSION foreign_key_checks = 0")
            cur.execute("SET SESSION unique_checks = 0")
            cur.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO')")
        total = 0
        for schema, table in tables:
            total += _copy_table(
                source, target, schema, table, estimates[(schema, table)], progress
            )
        source.commit()
        with target.cursor() as cur:
            cur.execute(
                f"INSERT INTO {HOTSITE_SCHEMA}.{APPLIED_TABLE} (link_key, origin, gtid_state)"
                " VALUES (%s, %s, %s)",
                (link_key, source_site, str(position)),
            )
        journal.reset(position)
        target.commit()
        return SnapshotResult(position, len(tables), total)
    finally:
        source.close()
        target.close()


def _mark_source(conn: Any, site: str) -> None:
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO {HOTSITE_SCHEMA}.{HEARTBEAT_TABLE} (site, ts, seq)"
            " VALUES (%s, UNIX_TIMESTAMP(NOW(6)), 1)"
            " ON DUPLICATE KEY UPDATE ts = VALUES(ts), seq = seq + 1",
            (site,),
        )


def _consistent_read(conn: Any) -> GtidState:
    with conn.cursor() as cur:
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
        status = {name: value for name, value in cur.fetchall()}
    file, offset = status.get("Binlog_snapshot_file"), status.get("Binlog_snapshot_position")
    if not file:
        raise DatabaseError(
            "the source did not report a binlog snapshot position", "is log_bin enabled?"
        )
    gtid_text = query_value(conn, "SELECT BINLOG_GTID_POS(%s, %s)", (file, int(offset or 0)))
    return GtidState.parse(gtid_text)


def _estimate_rows(conn: Any, schema: str, table: str) -> int:
    value = query_value(
        conn,
        "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
        (schema, table),
    )
    return int(value or 0)


def _copy_table(
    source: Any, target: Any, schema: str, table: str, estimate: int, progress: Progress | None
) -> int:
    name = f"{quote(schema)}.{quote(table)}"
    with source.cursor() as cur:
        cur.execute(f"SHOW CREATE TABLE {name}")
        create = cur.fetchone()[1]
    with target.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {quote(schema)}")
        cur.execute(f"USE {quote(schema)}")
        cur.execute(f"DROP TABLE IF EXISTS {name}")
        cur.execute(create)
    done = 0
    with source.cursor() as read:
        read.execute(f"SELECT * FROM {name}")
        columns = ", ".join(quote(d[0]) for d in read.description)
        marks = ", ".join(["%s"] * len(read.description))
        insert = f"INSERT INTO {name} ({columns}) VALUES ({marks})"
        while True:
            rows = read.fetchmany(BATCH_ROWS)
            if not rows:
                break
            with target.cursor() as write:
                write.executemany(insert, rows)
            target.commit()
            fault_point("snapshot.mid_copy")
            done += len(rows)
            if progress:
                progress(f"{schema}.{table}", done, max(estimate, done))
    if progress:
        progress(f"{schema}.{table}", done, done)
    return done
