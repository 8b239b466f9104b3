"""What a link cannot replicate exactly, refused at start with the table and the way out.

Each check reads information_schema on the source (and a setting of the target) once,
before anything is written. What can only be seen in the stream (a statement-logged
change, a prepared XA transaction, a DDL of a non-transactional table) stops the link at
the event instead (capture/binlog.py, capture/ddl.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hotsite.db import Connection, query_value
from hotsite.errors import SchemaError, SourceSettingsError, listed
from hotsite.replication.schema import SYSTEM_SCHEMAS

Matches = Callable[[str, str], bool]
_UTF8 = ("utf8mb4", "utf8mb3", "utf8")


def check_link_support(
    source: Any,
    source_site: str,
    target: Any,
    target_site: str,
    matches: Matches,
    decoder: str,
) -> None:
    _refuse_mysql(source, source_site)
    _refuse_engines(source, matches)
    _refuse_cascades(source, matches)
    if decoder == "library":
        _refuse_library_charsets(source, matches)
    _refuse_smaller_packets(source, source_site, target, target_site)


def _refuse_mysql(conn: Connection, site: str) -> None:
    version = str(query_value(conn, "SELECT VERSION()") or "")
    if "mariadb" not in version.lower():
        raise SourceSettingsError(
            f"site {site!r} runs MySQL {version}: hotsite captures from MariaDB only for now"
            " (MySQL's GTID sets are not supported yet)",
            "replicate from a MariaDB server (10.5 or newer)",
        )


def _rows(conn: Connection, sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def _refuse_engines(conn: Connection, matches: Matches) -> None:
    """Exactly-once needs the rows and the position in one target transaction, and a
    rolled-back source transaction to leave no trace: only InnoDB gives both. Sequences
    are tables of their own kind that apply cannot write."""
    found = [
        f"{schema}.{table} ({'a sequence' if kind == 'SEQUENCE' else engine})"
        for schema, table, engine, kind in _rows(
            conn,
            "SELECT TABLE_SCHEMA, TABLE_NAME, ENGINE, TABLE_TYPE FROM information_schema.TABLES"
            " WHERE TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE')",
        )
        if schema not in SYSTEM_SCHEMAS and matches(schema, table)
        if kind == "SEQUENCE" or str(engine).upper() != "INNODB"
    ]
    if found:
        raise SchemaError(
            f"not replicated exactly: {listed(found)} — only InnoDB tables are",
            "convert them (ALTER TABLE … ENGINE=InnoDB) or leave them out of replication.tables",
        )


def _refuse_cascades(conn: Connection, matches: Matches) -> None:
    """MariaDB does not log the rows a foreign key's CASCADE or SET NULL changes (a native
    replica re-does them itself); hotsite applies with foreign key checks off, so the
    target would keep orphans or stale values."""
    found = [
        f"{schema}.{table} ({name}: ON DELETE {delete}, ON UPDATE {update})"
        for schema, table, name, delete, update in _rows(
            conn,
            "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, DELETE_RULE, UPDATE_RULE"
            " FROM information_schema.REFERENTIAL_CONSTRAINTS",
        )
        if schema not in SYSTEM_SCHEMAS
        and matches(schema, table)
        and {str(delete).upper(), str(update).upper()} & {"CASCADE", "SET NULL", "SET DEFAULT"}
    ]
    if found:
        raise SchemaError(
            f"foreign keys whose actions MariaDB does not log: {listed(found)}; the target"
            " would miss the rows they change",
            "use ON DELETE/UPDATE RESTRICT (and change child rows in the application), or leave"
            " those tables out of replication.tables",
        )


def _refuse_library_charsets(conn: Connection, matches: Matches) -> None:
    """python-mysql-replication decodes text with Python codecs that are not always the
    column's character set; hotsite's own decoder keeps such text as bytes."""
    found = [
        f"{schema}.{table}.{column} ({charset})"
        for schema, table, column, charset in _rows(
            conn,
            "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, CHARACTER_SET_NAME"
            " FROM information_schema.COLUMNS WHERE CHARACTER_SET_NAME IS NOT NULL",
        )
        if schema not in SYSTEM_SCHEMAS
        and matches(schema, table)
        and str(charset).lower() not in _UTF8
    ]
    if found:
        raise SchemaError(
            f"'decoder: library' cannot keep these columns byte for byte: {listed(found)}",
            "use the default decoder (remove 'decoder: library' from the link)",
        )


def _refuse_smaller_packets(source: Any, source_site: str, target: Any, target_site: str) -> None:
    """A row the source accepted must fit in one packet to the target."""
    mine = int(query_value(source, "SELECT @@GLOBAL.max_allowed_packet"))
    theirs = int(query_value(target, "SELECT @@GLOBAL.max_allowed_packet"))
    if theirs < mine:
        raise SourceSettingsError(
            f"site {target_site!r} has max_allowed_packet={theirs}, smaller than site"
            f" {source_site!r}'s {mine}: a row the source accepts could not be applied",
            f"set max_allowed_packet={mine} (or more) on {target_site!r}'s server"
            " (SET GLOBAL and its configuration file)",
        )
