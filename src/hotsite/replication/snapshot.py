"""Initial load: copy the selected tables from a consistent read of the source, at a
known binlog position, while the source keeps taking writes; streaming starts there.

``START TRANSACTION WITH CONSISTENT SNAPSHOT`` gives both the MVCC read view and, in
MariaDB, the binlog position that view corresponds to (``binlog_snapshot_file/position``
status), which ``BINLOG_GTID_POS`` turns into the GTID position to stream from. No lock
is taken on the source.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pymysql

from hotsite.db import Connection, connect, prepare_writer, query_value
from hotsite.dburl import DatabaseURL
from hotsite.errors import DatabaseError, SnapshotRefused, listed
from hotsite.faults import fault_point
from hotsite.replication import rowversions
from hotsite.replication.gtid import GtidState
from hotsite.replication.journal import Journal
from hotsite.replication.origins import ensure_origin_tables, record_load
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
    lineage: str,
    progress: Progress | None = None,
    force: bool = False,
    target_takes_writes: bool = False,
    versions: bool = False,
) -> SnapshotResult:
    """Load every selected table into the target and reset the link to the snapshot position.

    Target tables of the same names are dropped and recreated from the source's
    definition: a snapshot makes the target equal to the source. Tables with rows that
    did not come from this link are only overwritten with ``force``. Nothing on the
    target changes before the source's position is known.
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
        if not force:
            _refuse_foreign_rows(target, target_site, tables, link_key, target_takes_writes)
        position = _consistent_read(source, source_site)
        # From here the target is incomplete until the last commit: say so in the
        # position row first, so the next 'replicate' reloads it and never streams onto it.
        _write_snapshot_row(target, link_key, source_site, lineage, GtidState(), "loading")
        target.commit()
        prepare_writer(target, bulk_load=True)
        total = 0
        for schema, table in tables:
            total += _copy_table(
                source, target, schema, table, estimates[(schema, table)], progress
            )
            if versions:  # the rows' versions come with them, read in the same snapshot
                _copy_shadow(source, target, schema, table)
        source.commit()
        if target_takes_writes:
            _record_load(target, link_key)
        _write_snapshot_row(target, link_key, source_site, lineage, position, "")
        journal.reset(position)
        target.commit()
        return SnapshotResult(position, len(tables), total)
    finally:
        source.close()
        target.close()


def _record_load(target: Any, link_key: str) -> None:
    """Where the link the other way starts: the target's position after the load (the
    load's rows are before it), written in the snapshot's last transaction."""
    target.commit()
    with target.cursor() as cur:
        ensure_origin_tables(cur)
        cur.execute("SELECT @@GLOBAL.gtid_binlog_pos")
        record_load(cur, link_key, str(cur.fetchone()[0] or ""))


def write_start_position(
    target: Any, link_key: str, origin: str, lineage: str, position: GtidState
) -> None:
    """A link's first position, set without a snapshot (agent.seed_from_reverse)."""
    _write_snapshot_row(target, link_key, origin, lineage, position, "")


def _write_snapshot_row(
    target: Any, link_key: str, origin: str, lineage: str, position: GtidState, state: str
) -> None:
    """The link's position row, reset: the snapshot's position, or 'loading' with none."""
    with target.cursor() as cur:
        cur.execute(
            f"REPLACE INTO {HOTSITE_SCHEMA}.{APPLIED_TABLE}"
            " (link_key, origin, source_id, gtid_state, applied_at, snapshot_state)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (link_key, origin, lineage, str(position), time.time(), state),
        )


def snapshot_state(conn: Connection, link_key: str) -> str:
    """'loading' while (or after an interrupted) snapshot fills the target, else ''."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT snapshot_state FROM {HOTSITE_SCHEMA}.{APPLIED_TABLE} WHERE link_key = %s",
            (link_key,),
        )
        row = cur.fetchone()
    return str(row[0]) if row else ""


def _refuse_foreign_rows(
    target: Any, target_site: str, tables: list[tuple[str, str]], link_key: str, writable: bool
) -> None:
    """Refuse to drop target tables holding rows when this link never loaded them.

    A link's own earlier snapshot (its position row exists, even half-loaded) made those
    tables; anything else — another application's table of the same name, the rows of a
    site that was taking writes — is data only the user may decide to overwrite.
    """
    with target.cursor() as cur:
        cur.execute(
            f"SELECT 1 FROM {HOTSITE_SCHEMA}.{APPLIED_TABLE} WHERE link_key = %s", (link_key,)
        )
        if cur.fetchone() is not None and not writable:
            return
        holding = []
        for schema, table in tables:
            try:
                cur.execute(f"SELECT 1 FROM {quote(schema)}.{quote(table)} LIMIT 1")
            except pymysql.MySQLError:
                continue  # not there (or not readable): nothing of the target to lose
            if cur.fetchone() is not None:
                holding.append(f"{schema}.{table}")
    if holding:
        shown = listed(holding)
        why = (
            "and takes writes of its own (it is the source of another link)"
            if writable
            else "which this link did not load"
        )
        raise SnapshotRefused(
            f"site {target_site!r} already holds rows in {shown}, {why}; a snapshot would"
            " drop them",
            "check that the project file points at the right servers; to overwrite them,"
            " run 'hotsite snapshot --force'",
        )


def _mark_source(conn: Connection, site: str) -> None:
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO {HOTSITE_SCHEMA}.{HEARTBEAT_TABLE} (site, ts, seq)"
            " VALUES (%s, UNIX_TIMESTAMP(NOW(6)), 1)"
            " ON DUPLICATE KEY UPDATE ts = VALUES(ts), seq = seq + 1",
            (site,),
        )


def _consistent_read(conn: Connection, site: str) -> GtidState:
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
    if not gtid_text:
        # Seen after an event larger than max_allowed_packet: without a position the
        # stream would start from the binlog's beginning. Refuse before anything changes.
        raise DatabaseError(
            f"site {site!r}: the source could not tell the GTID position of the snapshot"
            f" (BINLOG_GTID_POS({file}, {offset}) returned nothing); the target is unchanged",
            "run the snapshot again; if it persists, raise max_allowed_packet on the source"
            " above its largest binlog event",
        )
    return GtidState.parse(gtid_text)


def _estimate_rows(conn: Connection, schema: str, table: str) -> int:
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
    _ensure_schema(source, target, schema)
    with target.cursor() as cur:
        cur.execute(f"USE {quote(schema)}")
        cur.execute(f"DROP TABLE IF EXISTS {name}")
        cur.execute(create)
    names, selected = _copied_columns(source, schema, table)
    done = 0
    with source.cursor() as read:
        read.execute(f"SELECT {', '.join(selected)} FROM {name}")
        marks = ", ".join(["%s"] * len(names))
        insert = f"INSERT INTO {name} ({', '.join(map(quote, names))}) VALUES ({marks})"
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


def _copy_shadow(source: Any, target: Any, schema: str, table: str) -> None:
    """The target's row versions of the table become the source's (rowversions.py): the
    next change of each row is then made on a version both sites hold."""
    shadow = rowversions.qualified_shadow(schema, table)
    with target.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {shadow}")
    with source.cursor() as cur:
        if not rowversions.has_shadow(cur, schema, table):
            return
        cur.execute(f"SHOW CREATE TABLE {shadow}")
        create = cur.fetchone()[1]
    with target.cursor() as cur:
        cur.execute(f"USE {HOTSITE_SCHEMA}")
        cur.execute(create)
    with source.cursor() as read:
        read.execute(f"SELECT * FROM {shadow}")
        while rows := read.fetchmany(BATCH_ROWS):
            marks = ", ".join(["%s"] * len(rows[0]))
            with target.cursor() as write:
                write.executemany(f"INSERT INTO {shadow} VALUES ({marks})", rows)
            target.commit()


def _copied_columns(source: Any, schema: str, table: str) -> tuple[list[str], list[str]]:
    """The columns to copy and how to read each: generated columns are left to the
    target to compute (they cannot be written); text in a character set other than the
    utf8 family is read as its bytes, which the target stores unchanged — a round trip
    through the connection's utf8mb4 could alter them."""
    with source.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME, IS_GENERATED, CHARACTER_SET_NAME FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (schema, table),
        )
        columns = cur.fetchall()
    names, selected = [], []
    for column, generated, charset in columns:
        if str(generated).upper() == "ALWAYS":
            continue
        names.append(column)
        if charset and str(charset).lower() not in ("utf8mb4", "utf8mb3", "utf8"):
            selected.append(f"CAST({quote(column)} AS BINARY) AS {quote(column)}")
        else:
            selected.append(quote(column))
    return names, selected


def _ensure_schema(source: Any, target: Any, schema: str) -> None:
    """The target's schema with the source's default character set and collation, which
    tables created later without their own (by replicated DDL) inherit."""
    with source.cursor() as cur:
        cur.execute(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME"
            " FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
            (schema,),
        )
        charset, collation = cur.fetchone()
    options = f"CHARACTER SET {charset} COLLATE {collation}"
    with target.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {quote(schema)} {options}")
        cur.execute(f"ALTER DATABASE {quote(schema)} {options}")
