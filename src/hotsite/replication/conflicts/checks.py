"""Start-up checks for sites that both take writes: ids they hand out, policy columns."""

from __future__ import annotations

from typing import Any

from hotsite.config_conflicts import ConflictsConfig
from hotsite.errors import ConfigError

_VERSION_TYPES = frozenset(
    {"timestamp", "datetime", "date", "tinyint", "smallint", "mediumint", "int", "bigint",
     "decimal", "float", "double", "year"}
)  # fmt: skip


def _increment_and_offset(conn: Any) -> tuple[int, int]:
    with conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.auto_increment_increment, @@GLOBAL.auto_increment_offset")
        increment, offset = cur.fetchone()
    return int(increment), int(offset)


def check_key_ranges(ends: list[tuple[str, Any]], writers: int) -> None:
    """Two sites that both take writes must never hand out the same AUTO_INCREMENT id: each
    needs auto_increment_increment of at least the number of such sites and an offset of
    its own. Refused otherwise, with the settings to use."""
    settings = {site: _increment_and_offset(conn) for site, conn in ends}
    seen: dict[int, str] = {}
    clash = None
    for site, (increment, offset) in settings.items():
        if increment < writers:
            clash = f"{site} has auto_increment_increment={increment}, below the {writers} sites"
            break
        slot = offset % increment
        if slot in seen:
            clash = (
                f"{seen[slot]} and {site} both have auto_increment_offset={offset}"
                f" (increment {increment}): they would hand out the same ids"
            )
            break
        seen[slot] = site
    if clash is None:
        return
    advice = ", ".join(f"{i + 1} on {site}" for i, site in enumerate(settings))
    raise ConfigError(
        f"sites that both take writes would collide on AUTO_INCREMENT keys: {clash}",
        f"set auto_increment_increment={max(writers, 2)} on every such site and"
        f" auto_increment_offset {advice} (SET GLOBAL, and in the server's [mysqld] section)",
    )


def check_policy_columns(
    conn: Any, site: str, tables: list[tuple[str, str]], conflicts: ConflictsConfig
) -> None:
    """newest-wins compares a column: it must exist in each table, as a time or a number."""
    for schema, table in tables:
        rule = conflicts.for_table(schema, table)
        if rule.policy != "newest-wins" or not rule.column:
            continue
        with conn.cursor() as cur:
            cur.execute(
                "SELECT DATA_TYPE FROM information_schema.COLUMNS"
                " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND COLUMN_NAME = %s",
                (schema, table, rule.column),
            )
            found = cur.fetchone()
        if found is None:
            raise ConfigError(
                f"conflicts: newest-wins on {schema}.{table} names column {rule.column!r},"
                f" which the table does not have on {site}",
                "name the table's timestamp or version column under conflicts (column:)",
            )
        if str(found[0]).lower() not in _VERSION_TYPES:
            raise ConfigError(
                f"conflicts: newest-wins on {schema}.{table} compares {rule.column!r}, a"
                f" {found[0]} column; it must be a timestamp or a number",
                "name a timestamp or version column under conflicts (column:)",
            )
