"""Which tables each site has, and whether their definitions agree.

Rows are compared only between tables with the same columns (names, order, types,
nullability, collation) and the same primary key; anything else is reported as a
schema difference, because row hashes of differently shaped tables cannot agree.
"""

from __future__ import annotations

from collections.abc import Callable

from hotsite.db import Connection
from hotsite.replication.schema import SYSTEM_SCHEMAS
from hotsite.replication.verify.sql import Column, TableShape

TableName = tuple[str, str]


def read_shapes(
    conn: Connection, matches: Callable[[str, str], bool]
) -> dict[TableName, TableShape]:
    """Every selected base table with its columns and primary key (empty when it has none)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE,"
            " c.IS_NULLABLE, c.COLLATION_NAME FROM information_schema.COLUMNS c"
            " JOIN information_schema.TABLES t"
            "  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME"
            " WHERE t.TABLE_TYPE = 'BASE TABLE'"
            " ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION"
        )
        columns: dict[TableName, list[Column]] = {}
        for schema, table, name, data_type, column_type, nullable, collation in cur.fetchall():
            if schema in SYSTEM_SCHEMAS or not matches(schema, table):
                continue
            columns.setdefault((schema, table), []).append(
                Column(name, str(data_type).lower(), str(column_type), nullable == "YES", collation)
            )
        cur.execute(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS"
            " WHERE INDEX_NAME = 'PRIMARY' ORDER BY TABLE_SCHEMA, TABLE_NAME, SEQ_IN_INDEX"
        )
        keys: dict[TableName, list[str]] = {}
        for schema, table, name in cur.fetchall():
            if (schema, table) in columns:
                keys.setdefault((schema, table), []).append(name)
    return {
        name: TableShape(name[0], name[1], tuple(cols), tuple(keys.get(name, ())))
        for name, cols in columns.items()
    }


def schema_differences(source: TableShape, target: TableShape) -> list[str]:
    """Human-readable differences between two definitions of one table; [] when equal."""
    found: list[str] = []
    theirs = {c.name: c for c in target.columns}
    mine = {c.name: c for c in source.columns}
    missing = [c.name for c in source.columns if c.name not in theirs]
    extra = [c.name for c in target.columns if c.name not in mine]
    if missing:
        found.append(f"columns missing on target: {', '.join(missing)}")
    if extra:
        found.append(f"columns only on target: {', '.join(extra)}")
    for column in source.columns:
        other = theirs.get(column.name)
        if other is None:
            continue
        if column.column_type != other.column_type:
            found.append(f"{column.name}: {column.column_type} vs {other.column_type}")
        if column.nullable != other.nullable:
            found.append(
                f"{column.name}: {'NULL' if column.nullable else 'NOT NULL'}"
                f" vs {'NULL' if other.nullable else 'NOT NULL'}"
            )
        if column.collation != other.collation:
            found.append(f"{column.name}: collation {column.collation} vs {other.collation}")
    common = [c for c in (c.name for c in source.columns) if c in theirs]
    if not missing and not extra and common != [c.name for c in target.columns]:
        found.append("column order differs")
    if source.primary_key != target.primary_key:
        found.append(
            f"primary key ({', '.join(source.primary_key)}) vs ({', '.join(target.primary_key)})"
        )
    return found
