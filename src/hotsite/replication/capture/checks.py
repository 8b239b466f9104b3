"""Start-up checks of a MariaDB/MySQL source: is it set up for row-based change capture,
does the link find what it should replicate there, may its user read it?"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pymysql

from hotsite.db import error_code, query_value
from hotsite.errors import DatabaseError, SourceSettingsError
from hotsite.replication.privileges import require_source_privileges
from hotsite.replication.schema import list_tables, require_primary_keys

_IN_CONFIG = "in the server's configuration file ([mariadbd] section)"
# setting -> (required value, how to fix). Values compare case-insensitively.
_REQUIRED = {
    "log_bin": ("ON", f"start the server with log_bin (e.g. log_bin=binlog {_IN_CONFIG})"),
    "binlog_format": (
        "ROW",
        f"set binlog_format=ROW {_IN_CONFIG} (or SET GLOBAL binlog_format='ROW')",
    ),
    "binlog_row_image": ("FULL", f"set binlog_row_image=FULL {_IN_CONFIG}"),
    "binlog_row_metadata": (
        "FULL",
        f"set binlog_row_metadata=FULL {_IN_CONFIG} (MariaDB ≥ 10.5, MySQL ≥ 8.0)",
    ),
}
MIN_RETENTION_SECONDS = 24 * 3600
# How long binlogs are kept: the first of these set, in seconds per unit.
_RETENTION = {"binlog_expire_logs_seconds": 1.0, "expire_logs_days": 86400.0}
UNKNOWN_SYSTEM_VARIABLE = 1193


def check_link_source(
    conn: Any,
    site: str,
    database: str,
    patterns: list[str],
    matches: Callable[[str, str], bool],
) -> tuple[list[str], list[str]]:
    """Everything a link needs of its source, in the order that gives the truest reason.

    Returns the warnings and the schemas the link replicates (the target must be
    writable there).
    """
    warnings = check_source(conn, site)
    require_database(conn, site, database)
    tables = list_tables(conn, matches)
    if not tables:
        wanted = ", ".join(patterns) or f"{database}.*"
        warnings.append(
            f"site {site!r}: no table on the source matches the link's tables ({wanted});"
            " nothing is replicated until one is created (check replication.tables)"
        )
    require_source_privileges(conn, site, tables)
    require_primary_keys(conn, tables)
    return warnings, sorted({database} | {schema for schema, _ in tables})


def require_database(conn: Any, site: str, database: str) -> None:
    """The URL's database must exist: replicating a database that is not there would
    report 'caught up' and 'identical' over nothing."""
    found = query_value(
        conn, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (database,)
    )
    if not found:
        raise DatabaseError(
            f"site {site!r}: database {database!r} does not exist on the source"
            " (or its user has no privilege on it)",
            f"create it, grant the user access, or fix the database name in sites.{site}.database",
        )


def global_settings(conn: Any, names: list[str]) -> dict[str, Any]:
    """The server's global values of ``names`` in one round trip (a link starts over a
    WAN: each query costs it one); None for a variable this server version lacks."""
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT " + ", ".join(f"@@GLOBAL.{name}" for name in names))
            return dict(zip(names, cur.fetchone(), strict=True))
    except pymysql.err.OperationalError as exc:
        if error_code(exc) != UNKNOWN_SYSTEM_VARIABLE:
            raise
    found: dict[str, Any] = {}
    for name in names:  # one is missing: which, one by one
        try:
            found[name] = query_value(conn, f"SELECT @@GLOBAL.{name}")
        except pymysql.err.OperationalError as exc:
            if error_code(exc) != UNKNOWN_SYSTEM_VARIABLE:
                raise
            found[name] = None
    return found


def check_source(conn: Any, site: str) -> list[str]:
    """Raise SourceSettingsError on a blocking setting; return warnings for the rest."""
    settings = global_settings(conn, [*_REQUIRED, *_RETENTION])
    for setting, (required, fix) in _REQUIRED.items():
        value = settings[setting]
        if isinstance(value, int):
            value = "ON" if value == 1 else "OFF"
        if str(value).upper() != required:
            raise SourceSettingsError(
                f"site {site!r}: source database has {setting}={value}, change capture needs {required}",
                fix + ", then restart the capture",
            )
    warnings = []
    retention = next(
        (float(settings[name]) * scale for name, scale in _RETENTION.items() if settings[name]),
        0.0,
    )
    if retention and retention < MIN_RETENTION_SECONDS:
        warnings.append(
            f"site {site!r}: binlogs are kept only {retention / 3600:.1f} h; a standby offline longer"
            " must be re-snapshotted (raise binlog_expire_logs_seconds)"
        )
    return warnings
