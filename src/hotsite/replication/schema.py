"""Tables and keys as the database sees them: what to replicate and how rows are found."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hotsite.db import Connection, Cursor
from hotsite.errors import SchemaError

HOTSITE_SCHEMA = "hotsite"
APPLIED_TABLE = "hotsite_applied"
HEARTBEAT_TABLE = "hotsite_heartbeat"
# On a source: the random id that says which server a position came from (identity.py).
IDENTITY_TABLE = "hotsite_identity"
# One row per repair transaction, written in that transaction: capture recognises
# repairs by it (like applier transactions by their hotsite_applied row) and does not
# ship them back over the other direction of an active/active pair.
REPAIR_TABLE = "hotsite_repair"
# The row-version triggers (rowversions.py) are hotsite's: silent for apply's session,
# so they do not make a table one that apply must write change by change.
VERSION_TRIGGER_PREFIX = "hotsite_v"
# A transaction that writes a row of one of these tables was made by hotsite (apply or
# repair): the capture of the opposite direction must not ship it back.
LOOP_MARKER_TABLES = frozenset({APPLIED_TABLE, REPAIR_TABLE})
SYSTEM_SCHEMAS = {"mysql", "information_schema", "performance_schema", "sys", HOTSITE_SCHEMA}


class NoPrimaryKey(SchemaError):
    """The table has no primary key: its rows cannot be found again exactly."""


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str = ""  # information_schema DATA_TYPE, lower case
    column_type: str = ""  # the full type, e.g. "decimal(10,2) unsigned"
    nullable: bool = True
    collation: str | None = None
    # Computed by the server (VIRTUAL / STORED): never written by apply.
    generated: bool = False


@dataclass(frozen=True)
class TableInfo:
    """A table as hotsite reads it from information_schema: the one model of apply,
    snapshot and verify.

    ``describe`` reads one table whole and refuses a table without a primary key (apply
    cannot find its rows again); ``read_tables`` reads many at once, keyless ones
    included (verify reports them), and leaves the two apply-only facts
    (``has_other_unique_keys``, ``has_triggers``) at False.
    """

    schema: str
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]  # () for a table without one
    has_other_unique_keys: bool = False
    # The target has triggers on it: apply it change by change, so each fires per change.
    has_triggers: bool = False

    @property
    def qualified(self) -> str:
        return f"{quote(self.schema)}.{quote(self.name)}"

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def generated(self) -> frozenset[str]:
        return frozenset(c.name for c in self.columns if c.generated)


TableName = tuple[str, str]
_COLUMNS = (
    "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE,"
    " c.IS_NULLABLE, c.COLLATION_NAME, c.IS_GENERATED FROM information_schema.COLUMNS c"
)


def _column(row: tuple[Any, ...]) -> Column:
    _, _, name, data_type, column_type, nullable, collation, generated = row
    return Column(
        name,
        str(data_type).lower(),
        str(column_type),
        nullable == "YES",
        collation,
        str(generated).upper() == "ALWAYS",
    )


def quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def list_tables(conn: Connection, matches: Callable[[str, str], bool]) -> list[tuple[str, str]]:
    """Base tables that a link's patterns select, system schemas excluded."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES"
            " WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME"
        )
        return [
            (schema, table)
            for schema, table in cur.fetchall()
            if schema not in SYSTEM_SCHEMAS and matches(schema, table)
        ]


def describe(conn: Connection, schema: str, table: str) -> TableInfo:
    """Columns in order and the primary key; SchemaError when the table has none."""
    with conn.cursor() as cur:
        cur.execute(
            _COLUMNS
            + " WHERE c.TABLE_SCHEMA = %s AND c.TABLE_NAME = %s ORDER BY c.ORDINAL_POSITION",
            (schema, table),
        )
        columns = tuple(_column(row) for row in cur.fetchall())
        cur.execute(
            "SELECT 1 FROM information_schema.TRIGGERS"
            " WHERE EVENT_OBJECT_SCHEMA = %s AND EVENT_OBJECT_TABLE = %s"
            " AND TRIGGER_NAME NOT LIKE %s LIMIT 1",
            (schema, table, VERSION_TRIGGER_PREFIX.replace("_", "\\_") + "%"),
        )
        has_triggers = cur.fetchone() is not None
        cur.execute(
            "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS"
            " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND NON_UNIQUE = 0"
            " ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (schema, table),
        )
        unique: dict[str, list[str]] = {}
        for index, column in cur.fetchall():
            unique.setdefault(index, []).append(column)
    if not columns:
        raise SchemaError(f"table {schema}.{table} does not exist")
    primary = unique.pop("PRIMARY", None)
    if not primary:
        raise NoPrimaryKey(
            f"table {schema}.{table} has no primary key",
            "add one (ALTER TABLE ... ADD PRIMARY KEY) or leave the table out of replication.tables",
        )
    return TableInfo(schema, table, columns, tuple(primary), bool(unique), has_triggers)


def read_tables(
    conn: Connection, matches: Callable[[str, str], bool]
) -> dict[TableName, TableInfo]:
    """Every selected base table with its columns and primary key (() when it has none),
    in two queries whatever the number of tables."""
    with conn.cursor() as cur:
        cur.execute(
            _COLUMNS + " JOIN information_schema.TABLES t"
            "  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME"
            " WHERE t.TABLE_TYPE = 'BASE TABLE'"
            " ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION"
        )
        columns: dict[TableName, list[Column]] = {}
        for row in cur.fetchall():
            schema, table = row[0], row[1]
            if schema in SYSTEM_SCHEMAS or not matches(schema, table):
                continue
            columns.setdefault((schema, table), []).append(_column(row))
        cur.execute(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS"
            " WHERE INDEX_NAME = 'PRIMARY' ORDER BY TABLE_SCHEMA, TABLE_NAME, SEQ_IN_INDEX"
        )
        keys: dict[TableName, list[str]] = {}
        for schema, table, name in cur.fetchall():
            if (schema, table) in columns:
                keys.setdefault((schema, table), []).append(name)
    return {
        name: TableInfo(name[0], name[1], tuple(cols), tuple(keys.get(name, ())))
        for name, cols in columns.items()
    }


def require_primary_keys(conn: Connection, tables: list[tuple[str, str]]) -> None:
    """Refuse to start when any selected table lacks a primary key; name them all.

    Keys are read from information_schema.STATISTICS, which a user with SELECT sees;
    TABLE_CONSTRAINTS shows nothing to a user whose SELECT is global (MariaDB), and every
    table then looked keyless.
    """
    schemas = sorted({schema for schema, _ in tables})
    if not schemas:
        return
    marks = ", ".join(["%s"] * len(schemas))
    with conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT TABLE_SCHEMA, TABLE_NAME FROM information_schema.STATISTICS"
            f" WHERE INDEX_NAME = 'PRIMARY' AND TABLE_SCHEMA IN ({marks})",
            schemas,
        )
        keyed = {(schema, table) for schema, table in cur.fetchall()}
    missing = [f"{schema}.{table}" for schema, table in tables if (schema, table) not in keyed]
    if missing:
        raise SchemaError(
            f"table{'s' if len(missing) > 1 else ''} without a primary key: {', '.join(missing)}",
            "add one (ALTER TABLE ... ADD PRIMARY KEY) or leave them out of replication.tables",
        )


def ensure_hotsite_schema(conn: Connection) -> None:
    """hotsite's own tables: the applied position per origin, and heartbeats."""
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {HOTSITE_SCHEMA}")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {HOTSITE_SCHEMA}.{APPLIED_TABLE} ("
            # project/link: two projects or links against one target never share a row
            " link_key VARCHAR(255) NOT NULL PRIMARY KEY,"
            " origin VARCHAR(64) NOT NULL,"
            # the identity of the source server the position belongs to (identity.py)
            " source_id VARCHAR(64) NOT NULL DEFAULT '',"
            " gtid_state VARCHAR(1024) NOT NULL,"
            " last_gtid VARCHAR(64) NOT NULL DEFAULT '',"
            " journal_seq BIGINT NOT NULL DEFAULT 0,"
            " transactions BIGINT NOT NULL DEFAULT 0,"
            " source_commit_ts DOUBLE NOT NULL DEFAULT 0,"
            " applied_at DOUBLE NOT NULL DEFAULT 0,"
            " ddl_in_progress VARCHAR(64) NOT NULL DEFAULT '',"
            # the target schema's fingerprint before the DDL in progress ran
            " ddl_fingerprint VARCHAR(64) NOT NULL DEFAULT '',"
            # changes whose target row was not as the source's before-image said
            " mismatches BIGINT NOT NULL DEFAULT 0,"
            # 'loading' while a snapshot fills the target: the target is incomplete
            " snapshot_state VARCHAR(16) NOT NULL DEFAULT '',"
            # changes left out per table (no primary key), as JSON: {"app.t": 3}
            " skipped TEXT NULL"
            ") ENGINE=InnoDB"
        )
        _upgrade_applied_table(cur)
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {HOTSITE_SCHEMA}.{IDENTITY_TABLE} ("
            " id TINYINT NOT NULL PRIMARY KEY,"
            " lineage CHAR(32) NOT NULL,"
            " created_at DOUBLE NOT NULL"
            ") ENGINE=InnoDB"
        )
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {HOTSITE_SCHEMA}.{HEARTBEAT_TABLE} ("
            " site VARCHAR(64) NOT NULL PRIMARY KEY,"
            " ts DECIMAL(17,6) NOT NULL,"
            " seq BIGINT NOT NULL"
            ") ENGINE=InnoDB"
        )


def ensure_repair_table(conn: Connection) -> None:
    """The marker table written by ``hotsite verify --repair`` (see docs/verify.md)."""
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {HOTSITE_SCHEMA}")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {HOTSITE_SCHEMA}.{REPAIR_TABLE} ("
            " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
            " origin VARCHAR(64) NOT NULL,"
            " table_name VARCHAR(200) NOT NULL,"
            " origin_position VARCHAR(1024) NOT NULL,"
            " rows_written INT NOT NULL,"
            " rows_deleted INT NOT NULL,"
            " repaired_at DOUBLE NOT NULL"
            ") ENGINE=InnoDB"
        )


def _upgrade_applied_table(cur: Cursor) -> None:
    """Positions written before links had keys were keyed by origin alone: they cannot be
    told apart from another project's, so they are set aside (renamed) and the link
    starts from a snapshot, never from a position that may not be its own."""
    cur.execute(
        "SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s"
        " AND TABLE_NAME = %s AND COLUMN_NAME = 'link_key'",
        (HOTSITE_SCHEMA, APPLIED_TABLE),
    )
    keyed = cur.fetchone() is not None
    cur.execute(
        "SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s"
        " AND TABLE_NAME = %s AND COLUMN_NAME = 'skipped'",
        (HOTSITE_SCHEMA, APPLIED_TABLE),
    )
    if keyed and cur.fetchone() is None:  # keyed, from before 'skipped' was counted
        cur.execute(f"ALTER TABLE {HOTSITE_SCHEMA}.{APPLIED_TABLE} ADD COLUMN skipped TEXT NULL")
    if not keyed:
        cur.execute(
            f"RENAME TABLE {HOTSITE_SCHEMA}.{APPLIED_TABLE}"
            f" TO {HOTSITE_SCHEMA}.{APPLIED_TABLE}_unkeyed_{int(time.time())}"
        )
        ensure_hotsite_schema(cur.connection)
