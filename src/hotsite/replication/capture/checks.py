"""Start-up checks of a MariaDB/MySQL source: is it set up for row-based change capture?"""

from __future__ import annotations

from typing import Any

from hotsite.db import query_value
from hotsite.errors import SourceSettingsError

# setting -> (required value, how to fix). Values compare case-insensitively.
_REQUIRED = {
    "log_bin": ("ON", "start the server with log_bin (e.g. log_bin=binlog in [mariadbd])"),
    "binlog_format": (
        "ROW",
        "set binlog_format=ROW in [mariadbd] (or SET GLOBAL binlog_format='ROW')",
    ),
    "binlog_row_image": ("FULL", "set binlog_row_image=FULL in [mariadbd]"),
    "binlog_row_metadata": (
        "FULL",
        "set binlog_row_metadata=FULL in [mariadbd] (MariaDB ≥ 10.5, MySQL ≥ 8.0)",
    ),
}
MIN_RETENTION_SECONDS = 24 * 3600


def check_source(conn: Any, site: str) -> list[str]:
    """Raise SourceSettingsError on a blocking setting; return warnings for the rest."""
    for setting, (required, fix) in _REQUIRED.items():
        value = query_value(conn, f"SELECT @@GLOBAL.{setting}")
        if isinstance(value, int):
            value = "ON" if value == 1 else "OFF"
        if str(value).upper() != required:
            raise SourceSettingsError(
                f"site {site!r}: source database has {setting}={value}, change capture needs {required}",
                fix + ", then restart the capture",
            )
    warnings = []
    retention = _retention_seconds(conn)
    if retention and retention < MIN_RETENTION_SECONDS:
        warnings.append(
            f"site {site!r}: binlogs are kept only {retention / 3600:.1f} h; a standby offline longer"
            " must be re-snapshotted (raise binlog_expire_logs_seconds)"
        )
    return warnings


def _retention_seconds(conn: Any) -> float:
    for setting, scale in (("binlog_expire_logs_seconds", 1.0), ("expire_logs_days", 86400.0)):
        try:
            value = query_value(conn, f"SELECT @@GLOBAL.{setting}")
        except Exception:  # the variable does not exist in this server version
            continue
        if value:
            return float(value) * scale
    return 0.0
