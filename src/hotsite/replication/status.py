"""Status of a replication link, from the databases themselves and the agent's report.

Positions come from the source (``gtid_binlog_pos``), the journal (shipped) and the
target (``hotsite_applied``), so ``hotsite status`` is right even when no agent runs;
rates and heartbeat lag come from the running agent's status file when it is fresh.

Status only reads: it creates nothing on the target (no hotsite schema there means no
position yet), and a part it cannot read (a server down, a corrupt journal) becomes an
error of that link while everything else is still reported.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pymysql

from hotsite.config import DatabaseURL, LinkConfig, ProjectConfig
from hotsite.db import connect, explain, query_value
from hotsite.errors import HotsiteError, JournalError
from hotsite.replication.apply.mysql import AppliedPosition, read_applied
from hotsite.replication.conflicts.log import conflicts_logged, counts_by_table, parked_count
from hotsite.replication.gtid import GtidState
from hotsite.replication.journal import MOVE_ASIDE, Journal
from hotsite.replication.schema import APPLIED_TABLE, HOTSITE_SCHEMA
from hotsite.replication.snapshot import snapshot_state

STALE_AFTER = 5.0  # seconds: an older status file means no agent is running
# The columns read_applied reads: a table without them predates this version.
_APPLIED_COLUMNS = {
    "link_key", "gtid_state", "last_gtid", "journal_seq", "transactions", "ddl_in_progress",
    "snapshot_state", "ddl_fingerprint", "mismatches", "skipped",
}  # fmt: skip


def link_report(config: ProjectConfig, link: LinkConfig) -> dict[str, Any]:
    errors: list[str] = []
    source_pos = shipped = applied = None
    mismatches: int | None = None
    source_url, target_url = _url(config, link.source, errors), _url(config, link.target, errors)
    if source_url is not None:
        try:
            source_pos = _source_position(source_url, link.source)
        except HotsiteError as exc:
            errors.append(str(exc))
    try:
        shipped = _shipped_position(config.journal_path(link))
    except HotsiteError as exc:
        errors.append(str(exc))
    if target_url is not None:
        try:
            position, loading = _applied_position(target_url, link.target, config.link_key(link))
            applied = position.gtid_state if position else None
            mismatches = position.mismatches if position else None
            if mismatches:
                errors.append(
                    f"{link.target}: {mismatches} replicated change(s) found the target row not"
                    f" as {link.source} had it (apply.mismatches): {link.target} had diverged —"
                    " compare with 'hotsite verify', or reload it with 'hotsite snapshot'"
                )
            if position is not None and position.skipped:
                left_out = ", ".join(
                    f"{t} ({n} changes)" for t, n in sorted(position.skipped.items())
                )
                errors.append(
                    f"{link.target}: changes of tables without a primary key are not replicated:"
                    f" {left_out}; add a primary key or leave them out of replication.tables"
                )
            if loading:
                errors.append(
                    f"{link.target} is incomplete: a snapshot from {link.source} is loading it"
                    " or was interrupted; the next 'hotsite replicate' or 'hotsite snapshot'"
                    " reloads it from the start"
                )
            elif position is None:
                errors.append(
                    f"{link.target} has no position from {link.source}:"
                    " the first replicate will snapshot"
                )
        except HotsiteError as exc:
            errors.append(str(exc))
    conflicts = _conflicts_of(config, link, target_url, errors)
    agent = _agent_status(config, link) or {}
    running = bool(agent)

    def stage(
        pos: GtidState | None, ahead: GtidState | None, live: dict[str, Any]
    ) -> dict[str, Any]:
        behind = pos.behind(ahead) if pos is not None and ahead is not None else None
        return {
            "position": str(pos) if pos is not None else None,
            "behind": behind,
            "lag_seconds": live.get("lag_seconds") if running else None,
            "rate": live.get("rate") if running else None,
        }

    captured = (
        GtidState.parse(agent["capture"].get("position"))
        if running and agent["capture"]
        else shipped
    )
    return {
        "link": link.name,
        "from": link.source,
        "to": link.target,
        "agent_running": running,
        "source": {"position": str(source_pos) if source_pos is not None else None},
        "capture": stage(captured, source_pos, agent.get("capture", {})),
        "ship": stage(shipped, captured, agent.get("ship", {})),
        "apply": {
            **stage(applied, shipped, agent.get("apply", {})),
            "mismatches": mismatches,
            **conflicts,
        },
        "errors": errors,
    }


def _url(config: ProjectConfig, site: str, errors: list[str]) -> DatabaseURL | None:
    try:
        return config.site(site).database_url
    except HotsiteError as exc:
        errors.append(f"site {site!r}: {exc}")
        return None


def _source_position(url: DatabaseURL, site: str) -> GtidState:
    conn = connect(url, site)
    try:
        return GtidState.parse(query_value(conn, "SELECT @@GLOBAL.gtid_binlog_pos"))
    except pymysql.MySQLError as exc:
        raise explain(exc, url, site) from None
    finally:
        conn.close()


def _conflicts_of(
    config: ProjectConfig, link: LinkConfig, url: DatabaseURL | None, errors: list[str]
) -> dict[str, Any]:
    """At a target that takes writes itself: conflicts per table, and those parked."""
    if url is None or not config.routes.two_way(link.target):
        return {}
    try:
        counts, parked = _conflict_counts(
            url, link.target, config.project_name, config.link_key(link)
        )
    except HotsiteError as exc:
        errors.append(str(exc))
        return {}
    if parked:
        errors.append(
            f"{link.target}: {parked} conflict(s) parked (policy manual) wait for a decision:"
            " 'hotsite conflicts list --parked', then 'hotsite conflicts resolve ID --take"
            " source|target'"
        )
    return {"conflicts": counts, "parked": parked}


def _conflict_counts(
    url: DatabaseURL, site: str, project: str, link_key: str
) -> tuple[dict[str, int], int]:
    """Conflicts this link's changes met at the target, per table, and how many wait."""
    conn = connect(url, site)
    try:
        with conn.cursor() as cur:
            if not conflicts_logged(cur):
                return {}, 0
            return counts_by_table(cur, project, link_key), parked_count(cur, project, link_key)
    except pymysql.MySQLError as exc:
        raise explain(exc, url, site) from None
    finally:
        conn.close()


def _applied_position(
    url: DatabaseURL, site: str, link_key: str
) -> tuple[AppliedPosition | None, bool]:
    """The link's position on the target, or None: also when hotsite's table is not there
    (never replicated) or predates this version (the next replicate upgrades it); and
    whether a snapshot marked the target as loading."""
    conn = connect(url, site)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS"
                " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                (HOTSITE_SCHEMA, APPLIED_TABLE),
            )
            columns = {str(row[0]).lower() for row in cur.fetchall()}
        if not columns >= _APPLIED_COLUMNS:
            return None, False
        return read_applied(conn, link_key), snapshot_state(conn, link_key) == "loading"
    except pymysql.MySQLError as exc:
        raise explain(exc, url, site) from None
    finally:
        conn.close()


def _shipped_position(path: Path) -> GtidState | None:
    """The source position the journal reaches, read without writing to it."""
    if not path.exists():
        return None
    journal = Journal(path, read_only=True)
    try:
        return journal.source_state()
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path} cannot be read ({exc})", MOVE_ASIDE) from None
    finally:
        journal.close()


def _agent_status(config: ProjectConfig, link: LinkConfig) -> dict[str, Any] | None:
    from hotsite.replication.agent import status_path

    path = status_path(config, link)
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if time.time() - float(data.get("updated_at", 0)) > STALE_AFTER:
        return None
    return data
