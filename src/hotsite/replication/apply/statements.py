"""SQL for applying row images: upserts, deletes by key, ordered inserts/updates, and
the one existence query per table and batch that finds rows not as the source had them.

Statements are built once per (table, columns) and cached: the apply loop only binds
values. Multi-row forms let pymysql send a whole run of changes in one round trip.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from hotsite.replication.schema import TableInfo, quote


def db_value(value: Any) -> Any:
    """A journaled value as the driver should send it (JSON documents as text)."""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


@lru_cache(maxsize=4096)
def upsert_sql(table: str, columns: tuple[str, ...]) -> str:
    cols = ", ".join(quote(c) for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    updates = ", ".join(f"{quote(c)} = VALUES({quote(c)})" for c in columns)
    return f"INSERT INTO {table} ({cols}) VALUES ({marks}) ON DUPLICATE KEY UPDATE {updates}"


@lru_cache(maxsize=4096)
def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    cols = ", ".join(quote(c) for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    return f"INSERT INTO {table} ({cols}) VALUES ({marks})"


@lru_cache(maxsize=4096)
def update_sql(table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    sets = ", ".join(f"{quote(c)} = %s" for c in columns)
    where = " AND ".join(f"{quote(c)} <=> %s" for c in key)
    return f"UPDATE {table} SET {sets} WHERE {where}"


@lru_cache(maxsize=4096)
def delete_one_sql(table: str, key: tuple[str, ...]) -> str:
    where = " AND ".join(f"{quote(c)} <=> %s" for c in key)
    return f"DELETE FROM {table} WHERE {where}"


def delete_many(info: TableInfo, keys: list[tuple[Any, ...]]) -> tuple[str, list[Any]]:
    """One DELETE for many keys: ``WHERE pk IN (...)`` or ``WHERE (a, b) IN ((..), (..))``."""
    if len(info.primary_key) == 1:
        marks = ", ".join(["%s"] * len(keys))
        sql = f"DELETE FROM {info.qualified} WHERE {quote(info.primary_key[0])} IN ({marks})"
        return sql, [db_value(k[0]) for k in keys]
    tuple_marks = "(" + ", ".join(["%s"] * len(info.primary_key)) + ")"
    cols = ", ".join(quote(c) for c in info.primary_key)
    sql = f"DELETE FROM {info.qualified} WHERE ({cols}) IN ({', '.join([tuple_marks] * len(keys))})"
    return sql, [db_value(v) for key in keys for v in key]


def select_keys(info: TableInfo, keys: list[tuple[Any, ...]]) -> tuple[str, list[Any]]:
    """The primary keys of the target rows among ``keys``: one ``WHERE pk IN (...)``."""
    cols = ", ".join(quote(c) for c in info.primary_key)
    if len(info.primary_key) == 1:
        marks = ", ".join(["%s"] * len(keys))
        sql = f"SELECT {cols} FROM {info.qualified} WHERE {cols} IN ({marks})"
        return sql, [db_value(k[0]) for k in keys]
    tuple_marks = "(" + ", ".join(["%s"] * len(info.primary_key)) + ")"
    sql = f"SELECT {cols} FROM {info.qualified} WHERE ({cols}) IN ({', '.join([tuple_marks] * len(keys))})"
    return sql, [db_value(v) for key in keys for v in key]
