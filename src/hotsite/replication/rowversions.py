"""Row versions: what makes "no row" comparable between two sites that both take writes.

Comparing row images finds a conflict only where a row is: a row deleted at one site
leaves nothing to compare, so a site that deleted a row and then received the other
site's concurrent insert of the same key saw no conflict at all, and the two sites could
end with the row at one of them only (docs/conflicts.md). So every replicated table of
such sites gets a *shadow* table in the hotsite schema that holds, per primary key, the
version of the row's last change — the site that made it and a number unique to that
server (``UUID_SHORT()``) — and a tombstone flag for a deleted row.

- Local writes (the application's) version themselves: three ``AFTER`` triggers per
  table write the shadow row **in the same transaction** as the change. Nothing else can
  be exact: the capture of a site runs at the other site, seconds behind, and would miss
  a change made just before an incoming one.
- The applier sets ``@hotsite_apply`` on its session, so the triggers stay silent for its
  writes, and writes the shadow rows itself: the incoming change's version when it wins,
  nothing when the target's row does.
- Capture reads the shadow rows from the binlog (their before-image is the version the
  change was made on, the after-image the version it made) and ships them with the
  transaction (``Transaction.versions``).
- Apply compares: an incoming change conflicts exactly when the target's version of the
  key is not the one the change was made on — a tombstone included, so a deletion is as
  visible as a row.

The shadow needs no column of the table but its key; a change of the primary key's
columns re-creates it (``ensure``). The UPDATE trigger compares every column (an UPDATE
that changed nothing moves no version: the binlog has no row event for it), so a column
added or dropped makes ``ensure`` replace it at both sites once the agent has applied
the DDL; until then a change of only the new column moves no version, and the change
is judged by images. A version note (a shadow change without its row's) still travels
for whatever moves a version alone, and apply takes it where the target still has the
version the note was made on.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

import pymysql

from hotsite.db import Connection, error_code
from hotsite.errors import ConfigError
from hotsite.replication.schema import HOTSITE_SCHEMA, VERSION_TRIGGER_PREFIX, quote

SHADOW_PREFIX = "rv_"
SITE_COLUMN, NUMBER_COLUMN, DELETED_COLUMN = "hs_site", "hs_version", "hs_deleted"
# How many times the key was deleted or created again: even while it lives, odd while
# it is a tombstone. newest-wins compares it before the version column, so a deletion
# beats the changes made concurrently with it, and a row created again after a deletion
# beats that deletion (docs/conflicts.md).
LIFE_COLUMN = "hs_life"
VERSION_COLUMNS = (SITE_COLUMN, NUMBER_COLUMN, DELETED_COLUMN, LIFE_COLUMN)
# Set on the applier's session: the triggers leave its writes to it.
APPLY_VARIABLE = "@hotsite_apply"

Version = tuple[str, int]  # (site, number)
# One shadow row change as capture ships it: [shadow table, key row, the version it
# was made on as [site, number, life] or None, the version it made, deleted, life].
VersionEntry = list[Any]

_ER_TRG_ALREADY_EXISTS = 1359
# binlog on without log_bin_trust_function_creators or SUPER; no TRIGGER privilege
_ER_NEED_SUPER = (1419, 1227, 1142)


def shadow_name(schema: str, table: str) -> str:
    """The shadow of ``schema.table``: readable, unique (a hash of both names), and within
    MariaDB's 64 characters whatever their length."""
    digest = hashlib.sha1(f"{schema}.{table}".encode()).hexdigest()[:12]
    readable = re.sub(r"[^0-9A-Za-z_]", "_", table)[:40]
    return f"{SHADOW_PREFIX}{digest}_{readable}"


def is_shadow(schema: str, table: str) -> bool:
    return schema == HOTSITE_SCHEMA and table.startswith(SHADOW_PREFIX)


def version_of(image: dict[str, Any] | None) -> Version | None:
    if not image or image.get(NUMBER_COLUMN) is None:
        return None
    return (str(image[SITE_COLUMN]), int(image[NUMBER_COLUMN]))


def entry_from_event(
    table: str, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> VersionEntry | None:
    """A shadow row event of the binlog as it travels: the key, the version the change
    was made on (None: the key had none) and the version it made."""
    new = version_of(after)
    if after is None or new is None:
        return None  # shadow rows are never deleted; nothing to say
    key = {c: v for c, v in after.items() if c not in VERSION_COLUMNS}
    base = version_of(before)
    was = [*base, int((before or {}).get(LIFE_COLUMN) or 0)] if base else None
    deleted, life = int(after[DELETED_COLUMN] or 0), int(after.get(LIFE_COLUMN) or 0)
    return [table, key, was, list(new), deleted, life]


# --- installing ------------------------------------------------------------------------


def _key_columns(cur: Any, schema: str, table: str) -> list[tuple[str, str, str | None]]:
    """(name, full type, collation) of the primary key's columns, in key order."""
    cur.execute(
        "SELECT c.COLUMN_NAME, c.COLUMN_TYPE, c.COLLATION_NAME"
        " FROM information_schema.STATISTICS s JOIN information_schema.COLUMNS c"
        " ON c.TABLE_SCHEMA = s.TABLE_SCHEMA AND c.TABLE_NAME = s.TABLE_NAME"
        " AND c.COLUMN_NAME = s.COLUMN_NAME"
        " WHERE s.TABLE_SCHEMA = %s AND s.TABLE_NAME = %s AND s.INDEX_NAME = 'PRIMARY'"
        " ORDER BY s.SEQ_IN_INDEX",
        (schema, table),
    )
    return [(str(n), str(t), str(c) if c else None) for n, t, c in cur.fetchall()]


def _shadow_columns(cur: Any, shadow: str) -> list[tuple[str, str, str | None]]:
    cur.execute(
        "SELECT COLUMN_NAME, COLUMN_TYPE, COLLATION_NAME FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (HOTSITE_SCHEMA, shadow),
    )
    return [
        (str(n), str(t), str(c) if c else None)
        for n, t, c in cur.fetchall()
        if n not in VERSION_COLUMNS
    ]


def _trigger_name(kind: str, schema: str, table: str) -> str:
    digest = hashlib.sha1(f"{schema}.{table}".encode()).hexdigest()[:16]
    return f"{VERSION_TRIGGER_PREFIX}{kind}_{digest}"


def _upsert(shadow: str, key: list[str], row: str, site: str, deleted: int) -> str:
    columns = ", ".join([*(quote(c) for c in key), *VERSION_COLUMNS])
    literal = "'" + pymysql.converters.escape_string(site) + "'"
    values = ", ".join(
        [*(f"{row}.{quote(c)}" for c in key), literal, "UUID_SHORT()", str(deleted), str(deleted)]
    )
    # a deletion of a live row and a creation over a tombstone each add one to the life
    # (assigned first: it reads the old tombstone flag)
    life = (
        f"{LIFE_COLUMN} + 1 - {DELETED_COLUMN}" if deleted else f"{LIFE_COLUMN} + {DELETED_COLUMN}"
    )
    return (
        f"INSERT INTO {HOTSITE_SCHEMA}.{quote(shadow)} ({columns}) VALUES ({values})"
        f" ON DUPLICATE KEY UPDATE {LIFE_COLUMN} = {life}, {SITE_COLUMN} = VALUES({SITE_COLUMN}),"
        f" {NUMBER_COLUMN} = VALUES({NUMBER_COLUMN}), {DELETED_COLUMN} = {deleted}"
    )


def _trigger_bodies(
    site: str, shadow: str, key: list[str], columns: list[str]
) -> dict[str, tuple[str, str]]:
    """Per trigger kind: (event, body). Silent for the applier's session (see module).

    An UPDATE that changed no column moves no version: the binlog has no row event for
    it, so a version moved there would reach the other site as a note it cannot judge,
    and a site whose row is still what an incoming change was made on would have to be
    trusted by its image — which also let a row changed and changed back pass as no
    conflict at one site while the other site saw one."""
    same_key = " AND ".join(f"NEW.{quote(c)} <=> OLD.{quote(c)}" for c in key)
    unchanged = " AND ".join(f"NEW.{quote(c)} <=> OLD.{quote(c)}" for c in columns)
    return {
        "i": ("INSERT", _upsert(shadow, key, "NEW", site, 0) + ";"),
        "u": (
            "UPDATE",
            f"IF NOT ({unchanged}) THEN"
            f" IF NOT ({same_key}) THEN {_upsert(shadow, key, 'OLD', site, 1)}; END IF;"
            f" {_upsert(shadow, key, 'NEW', site, 0)}; END IF;",
        ),
        "d": ("DELETE", _upsert(shadow, key, "OLD", site, 1) + ";"),
    }


def _table_columns(cur: Any, schema: str, table: str) -> list[str]:
    cur.execute(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (schema, table),
    )
    return [str(name) for (name,) in cur.fetchall()]


def ensure(conn: Connection, site: str, tables: Iterable[tuple[str, str]]) -> int:
    """Give every table its shadow and its three triggers at ``site``; returns how many
    tables were (re)versioned. Idempotent; two agents doing it at once is harmless."""
    done = 0
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {HOTSITE_SCHEMA}")
        for schema, table in tables:
            key = _key_columns(cur, schema, table)
            if not key:
                continue  # no primary key: not replicated (apply says so)
            shadow = shadow_name(schema, table)
            existing = _shadow_columns(cur, shadow)
            if existing and existing != key:  # the key changed: its versions mean nothing
                cur.execute(f"DROP TABLE {HOTSITE_SCHEMA}.{quote(shadow)}")
                _drop_triggers(cur, schema, table)
                existing = []
            if not existing:
                columns = ", ".join(
                    f"{quote(n)} {t}" + (f" COLLATE {c}" if c else "") + " NOT NULL"
                    for n, t, c in key
                )
                cur.execute(
                    f"CREATE TABLE IF NOT EXISTS {HOTSITE_SCHEMA}.{quote(shadow)} ({columns},"
                    f" {SITE_COLUMN} VARCHAR(64) NOT NULL, {NUMBER_COLUMN} BIGINT UNSIGNED"
                    f" NOT NULL, {DELETED_COLUMN} TINYINT NOT NULL DEFAULT 0,"
                    f" {LIFE_COLUMN} INT UNSIGNED NOT NULL DEFAULT 0,"
                    f" PRIMARY KEY ({', '.join(quote(n) for n, _, _ in key)})) ENGINE=InnoDB"
                )
            done += _create_triggers(
                cur, site, schema, table, shadow, [n for n, _, _ in key],
                _table_columns(cur, schema, table),
            )  # fmt: skip
    return done


def _existing_triggers(cur: Any, schema: str, table: str) -> dict[str, str]:
    """Name → body (ACTION_STATEMENT) of the table's version triggers."""
    cur.execute(
        "SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS"
        " WHERE EVENT_OBJECT_SCHEMA = %s AND EVENT_OBJECT_TABLE = %s AND TRIGGER_NAME LIKE %s",
        (schema, table, VERSION_TRIGGER_PREFIX.replace("_", "\\_") + "%"),
    )
    return {str(name): str(body) for name, body in cur.fetchall()}


def _drop_triggers(cur: Any, schema: str, table: str) -> None:
    for name in _existing_triggers(cur, schema, table):
        cur.execute(f"DROP TRIGGER IF EXISTS {quote(schema)}.{quote(name)}")


def _create_triggers(
    cur: Any, site: str, schema: str, table: str, shadow: str, key: list[str],
    columns: list[str],
) -> int:  # fmt: skip
    """Each missing trigger created; one whose body is not the current one (a column
    added or dropped since, an older hotsite's) replaced in one statement, so no write
    goes unversioned meanwhile."""
    present = _existing_triggers(cur, schema, table)
    made = 0
    for kind, (event, body) in _trigger_bodies(site, shadow, key, columns).items():
        name = _trigger_name(kind, schema, table)
        action = f"BEGIN IF {APPLY_VARIABLE} IS NULL THEN {body} END IF; END"
        if present.get(name) == action:
            continue
        replace = " OR REPLACE" if name in present else ""
        statement = (
            f"CREATE{replace} TRIGGER {quote(schema)}.{quote(name)} AFTER {event} ON"
            f" {quote(schema)}.{quote(table)} FOR EACH ROW {action}"
        )
        try:
            cur.execute(statement)
            made = 1
        except pymysql.MySQLError as exc:
            if error_code(exc) == _ER_TRG_ALREADY_EXISTS:
                continue  # the other site's agent was quicker
            if error_code(exc) in _ER_NEED_SUPER:
                raise ConfigError(
                    f"site {site!r}: hotsite cannot create the row-version triggers on"
                    f" {schema}.{table} that sites which both take writes need"
                    f" ({exc.args[-1]})",
                    "grant hotsite's database user the SUPER privilege, or SET GLOBAL"
                    " log_bin_trust_function_creators=1 (and in the server's [mysqld]"
                    " section)",
                ) from None
            raise
    return made


def drop(conn: Connection, tables: Iterable[tuple[str, str]]) -> None:
    """Remove the triggers and shadows of ``tables`` (a site no longer two-way)."""
    with conn.cursor() as cur:
        for schema, table in tables:
            _drop_triggers(cur, schema, table)
            cur.execute(
                f"DROP TABLE IF EXISTS {HOTSITE_SCHEMA}.{quote(shadow_name(schema, table))}"
            )


def has_shadow(cur: Any, schema: str, table: str) -> bool:
    def query(sql: str, args: Any) -> list[Any]:
        cur.execute(sql, args)
        return list(cur.fetchall())

    return _shadow_exists(query, schema, table)


# --- copying (snapshot, repair) --------------------------------------------------------


def qualified_shadow(schema: str, table: str) -> str:
    return f"{HOTSITE_SCHEMA}.{quote(shadow_name(schema, table))}"


def read_rows(query: Any, schema: str, table: str, where: str, args: Any) -> list[Any] | None:
    """The shadow rows of the keys ``where`` selects (by the key's column names), through
    ``query(sql, args)``; None when the table has no shadow there."""
    if not _shadow_exists(query, schema, table):
        return None
    return list(query(f"SELECT * FROM {qualified_shadow(schema, table)} WHERE {where}", args))


def _shadow_exists(query: Any, schema: str, table: str) -> bool:
    return bool(
        query(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (HOTSITE_SCHEMA, shadow_name(schema, table)),
        )
    )


def replace_rows(
    query: Any, execute: Any, schema: str, table: str, where: str, args: Any, rows: list[Any]
) -> None:
    """Make the shadow rows of the keys ``where`` selects ``rows`` (a repair copies the
    versions with the rows, so the next change of each is made on a version both sites
    hold). Nothing when the table has no shadow here."""
    if not _shadow_exists(query, schema, table):
        return
    shadow = qualified_shadow(schema, table)
    execute(f"DELETE FROM {shadow} WHERE {where}", args)
    if rows:
        marks = ", ".join(["%s"] * len(rows[0]))
        execute(f"INSERT INTO {shadow} VALUES ({marks})", [list(r) for r in rows], many=True)
