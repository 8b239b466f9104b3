"""Where a transaction was first committed: loop prevention for links in both directions.

An applier writes one row of ``hotsite.hotsite_origins`` first in every target
transaction: the project, the site where its changes were first committed (the origin)
and the origin GTIDs it covers. The capture at that site decodes the row, so it knows
the transaction is not the site's own: it ships it nowhere back to its origin, forwards
it where a ring needs it, and a site reached by two paths applies it once, by origin GTID.
This needs nothing from the server but the binlog's row images, so it holds for MySQL 8
as for MariaDB (no session variable such as ``skip_replication`` or ``sql_log_bin``,
which would also hide the transaction from the capture that must forward it).

A DDL statement cannot share a transaction with a row: apply puts the same facts in a
comment at the head of the statement (``ddl_comment``), which the binlog keeps.
Repairs (``hotsite verify --repair``) carry their own marker table; conflict
resolutions (``hotsite conflicts resolve``) theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hotsite.replication.gtid import Gtid, GtidState
from hotsite.replication.schema import APPLIED_TABLE, HOTSITE_SCHEMA, REPAIR_TABLE
from hotsite.replication.transactions import (
    INSERT,
    RowChange,
    Transaction,
    decode_row,
    encode_row,
)

ORIGINS_TABLE = "hotsite_origins"
# Per link, the target's own binlog position right after a snapshot loaded it: where the
# link the other way starts, so the loaded rows never travel back (agent.seed_from_reverse).
LOADS_TABLE = "hotsite_loads"
RESOLUTIONS_TABLE = "hotsite_resolutions"
# A conflict decided here that replaced this site's own row: the site the change came
# from may hold that row without having seen a conflict, and takes the decision when it
# still does (conflicts/writer.py). Shipped to that site only, even in an applied
# transaction that is otherwise not shipped back.
SETTLEMENTS_TABLE = "hotsite_settlements"
# Tables whose rows say who wrote a transaction: capture decodes them, never ships them.
MARKER_TABLES = frozenset(
    {ORIGINS_TABLE, APPLIED_TABLE, REPAIR_TABLE, RESOLUTIONS_TABLE, SETTLEMENTS_TABLE}
)

_DDL_COMMENT = re.compile(
    r"^\s*/\* hotsite origin=(?P<project>[^ ]+?)/(?P<origin>[^ ]+) gtid=(?P<gtid>[0-9-]+)"
    r"(?: first=(?P<first>[0-9-]+))? \*/\s*"
)


def ensure_origin_tables(cur: Any) -> None:
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {HOTSITE_SCHEMA}.{ORIGINS_TABLE} ("
        " project VARCHAR(64) NOT NULL,"
        " origin VARCHAR(64) NOT NULL,"
        # every origin transaction applied here, by any path (per origin GTID domain)
        " gtid_state VARCHAR(1024) NOT NULL,"
        # the origin transactions of the target transaction that wrote this row last
        " first_gtid VARCHAR(64) NOT NULL,"
        " last_gtid VARCHAR(64) NOT NULL,"
        # the session about to run an applied DDL: the server rewrites some statements
        # (DROP TABLE) and drops apply's comment, so capture knows it by its session
        " ddl_session BIGINT NOT NULL DEFAULT 0,"
        " PRIMARY KEY (project, origin)"
        ") ENGINE=InnoDB"
    )
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {HOTSITE_SCHEMA}.{LOADS_TABLE} ("
        " link_key VARCHAR(255) NOT NULL PRIMARY KEY,"
        " target_position VARCHAR(1024) NOT NULL,"
        " loaded_at DOUBLE NOT NULL"
        ") ENGINE=InnoDB"
    )
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {HOTSITE_SCHEMA}.{SETTLEMENTS_TABLE} ("
        " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " project VARCHAR(64) NOT NULL,"
        " for_site VARCHAR(64) NOT NULL,"
        " table_name VARCHAR(200) NOT NULL,"
        " row_key LONGTEXT NOT NULL,"
        " if_row LONGTEXT NOT NULL,"
        " written_at DOUBLE NOT NULL"
        ") ENGINE=InnoDB"
    )
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {HOTSITE_SCHEMA}.{RESOLUTIONS_TABLE} ("
        " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " project VARCHAR(64) NOT NULL,"
        " conflict VARCHAR(100) NOT NULL,"
        " resolved_at DOUBLE NOT NULL"
        ") ENGINE=InnoDB"
    )


def record_load(cur: Any, link_key: str, position: str) -> None:
    cur.execute(
        f"REPLACE INTO {HOTSITE_SCHEMA}.{LOADS_TABLE} (link_key, target_position, loaded_at)"
        " VALUES (%s, %s, UNIX_TIMESTAMP())",
        (link_key, position),
    )


def read_load(conn: Any, link_key: str) -> GtidState | None:
    """The recorded position after a finished snapshot of ``link_key``'s target."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (HOTSITE_SCHEMA, LOADS_TABLE),
        )
        if cur.fetchone() is None:
            return None
        cur.execute(
            f"SELECT l.target_position FROM {HOTSITE_SCHEMA}.{LOADS_TABLE} l"
            f" JOIN {HOTSITE_SCHEMA}.{APPLIED_TABLE} a ON a.link_key = l.link_key"
            " WHERE l.link_key = %s AND a.snapshot_state = ''",
            (link_key,),
        )
        row = cur.fetchone()
    return GtidState.parse(row[0]) if row and row[0] else None


def read_origin_states(cur: Any, project: str) -> dict[str, GtidState]:
    cur.execute(
        f"SELECT origin, gtid_state FROM {HOTSITE_SCHEMA}.{ORIGINS_TABLE} WHERE project = %s",
        (project,),
    )
    return {origin: GtidState.parse(state) for origin, state in cur.fetchall()}


def write_origin_mark(
    cur: Any, project: str, origin: str, state: GtidState, first: str, last: str
) -> None:
    """The first statement of every target transaction apply commits (see the module)."""
    cur.execute(
        f"INSERT INTO {HOTSITE_SCHEMA}.{ORIGINS_TABLE}"
        " (project, origin, gtid_state, first_gtid, last_gtid) VALUES (%s, %s, %s, %s, %s)"
        " ON DUPLICATE KEY UPDATE gtid_state = VALUES(gtid_state),"
        " first_gtid = VALUES(first_gtid), last_gtid = VALUES(last_gtid), ddl_session = 0",
        (project, origin, str(state), first, last),
    )


def write_settlement(
    cur: Any, project: str, for_site: str, table: str, key: dict[str, Any], if_row: dict[str, Any]
) -> None:
    """For ``for_site``: delete the row of ``key`` if it still holds it as ``if_row``."""
    cur.execute(
        f"INSERT INTO {HOTSITE_SCHEMA}.{SETTLEMENTS_TABLE}"
        " (project, for_site, table_name, row_key, if_row, written_at)"
        " VALUES (%s, %s, %s, %s, %s, UNIX_TIMESTAMP())",
        (project, for_site, table, encode_row(key), encode_row(if_row)),
    )
    # the row lives only in the binlog (capture reads the insert's image): deleted in the
    # same transaction, so the table never grows
    cur.execute(f"DELETE FROM {HOTSITE_SCHEMA}.{SETTLEMENTS_TABLE} WHERE id = LAST_INSERT_ID()")


def write_ddl_session(cur: Any, project: str, origin: str, gtid: str, first: str | None) -> None:
    """Committed right before apply runs a DDL: which origin the DDL of this session is."""
    cur.execute(
        f"INSERT INTO {HOTSITE_SCHEMA}.{ORIGINS_TABLE}"
        " (project, origin, gtid_state, first_gtid, last_gtid, ddl_session)"
        " VALUES (%s, %s, '', %s, %s, CONNECTION_ID())"
        " ON DUPLICATE KEY UPDATE first_gtid = VALUES(first_gtid),"
        " last_gtid = VALUES(last_gtid), ddl_session = VALUES(ddl_session)",
        (project, origin, first or gtid, gtid),
    )


def ddl_comment(project: str, origin: str, gtid: str, first: str | None) -> str:
    more = f" first={first}" if first and first != gtid else ""
    return f"/* hotsite origin={project}/{origin} gtid={gtid}{more} */ "


@dataclass(frozen=True)
class Origin:
    project: str
    site: str
    gtid: str
    first: str | None = None

    def stamp(self, tx: Transaction) -> None:
        """Say on ``tx`` that it was first committed here (at ``site``, as ``gtid``)."""
        tx.origin, tx.origin_gtid, tx.origin_first = self.site, self.gtid, self.first


def origin_of_ddl(query: str) -> tuple[Origin | None, str]:
    """The origin named by apply's comment at the head of a DDL, and the statement without it."""
    match = _DDL_COMMENT.match(query)
    if match is None:
        return None, query
    origin = Origin(match["project"], match["origin"], match["gtid"], match["first"])
    return origin, query[match.end() :]


def note_marker(
    tx: Transaction, change: RowChange, project: str, sessions: dict[int, Origin]
) -> None:
    """Record on ``tx`` what a row of one of hotsite's marker tables says about it.

    A marker of another project is hotsite's all the same (never shipped), but tells this
    project nothing: such a transaction counts as the site's own.
    """
    row = change.after or change.before or {}
    if change.table == REPAIR_TABLE:
        tx.origin = tx.origin or REPAIRED
        return
    if change.table == RESOLUTIONS_TABLE:
        tx.forced = True
        return
    if row.get("project", str(row.get("link_key", "")).split("/", 1)[0]) != project:
        return
    if change.table == SETTLEMENTS_TABLE:
        if change.kind != INSERT:  # its deletion in the same transaction says nothing
            return
        tx.settlements.append(
            [
                str(row.get("for_site")),
                str(row.get("table_name")),
                decode_row(row.get("row_key")),
                decode_row(row.get("if_row")),
            ]
        )
    elif change.table == ORIGINS_TABLE:
        mark = Origin(
            project,
            str(row.get("origin", "")),
            str(row.get("last_gtid") or ""),
            str(row.get("first_gtid") or "") or None,
        )
        if row.get("ddl_session"):  # the next DDL of that session is this origin's
            sessions[int(row["ddl_session"])] = mark
            tx.origin = tx.origin or mark.site
        elif tx.origin is None:
            mark.stamp(tx)
    elif change.table == APPLIED_TABLE and tx.origin is None:
        # applied by an older hotsite, or a snapshot's last step: no origins row
        Origin(project, str(row.get("origin", "")), str(row.get("last_gtid") or "")).stamp(tx)


REPAIRED = "(repair)"  # the origin of a repair transaction: it is shipped nowhere


def covers_all(state: GtidState | None, tx: Transaction) -> bool:
    """Every origin transaction in ``tx`` was applied here already (by another path)."""
    gtid = tx.origin_gtid
    return state is not None and bool(gtid) and state.covers(Gtid.parse(gtid or ""))


def covers_some(state: GtidState | None, tx: Transaction) -> bool:
    first = tx.origin_first or tx.origin_gtid
    return state is not None and bool(first) and state.covers(Gtid.parse(first or ""))
