"""What the target's errors mean for apply: retry (locks, deadlocks, a server going
away) or stop the link with one line that shows no row values."""

from __future__ import annotations

import re

import pymysql

from hotsite.binary_literals import literal_size
from hotsite.db import error_code, explain, is_unavailable
from hotsite.dburl import DatabaseURL
from hotsite.errors import ApplyError, DatabaseUnavailable, HotsiteError
from hotsite.replication.journal import JournalEntry

LOCK_WAIT_TIMEOUT = 1205
DEADLOCK = 1213
# Values a server error message may quote: never shown (rows stay out of logs and status).
_QUOTED_VALUE = re.compile(r"((?:Duplicate entry|value:?) )'.*?'(?=\s+for\s|\s*$)")


class TargetBusy(ApplyError):
    """A lock wait, a deadlock, an earlier DDL still running on the target: retried."""

    recoverable = True


def explain_target_error(exc: pymysql.MySQLError, url: DatabaseURL, site: str) -> HotsiteError:
    code = error_code(exc)
    if code == LOCK_WAIT_TIMEOUT:
        return TargetBusy(
            f"site {site!r}: a replicated change waited too long for a row lock"
            " another session holds on the target",
            "retrying; the change applies once that session commits or rolls back",
        )
    if code == DEADLOCK:
        return TargetBusy(
            f"site {site!r}: a replicated change was chosen as a deadlock victim on the target",
            "retrying",
        )
    error = explain(exc, url, site)
    if error.recoverable:
        return error
    if is_unavailable(exc):  # a connection that broke earlier and was used again
        return DatabaseUnavailable(
            f"site {site!r} database {url.redacted()}: the connection was lost",
            "check that it is running and that host and port are right",
        )
    return ApplyError(
        f"site {site!r}: the target refused a replicated change: {without_values(error.message)}"
    )


def without_values(message: str) -> str:
    """A server message with the values it quotes (duplicate entries, bad values) cut."""
    return _QUOTED_VALUE.sub(r"\1'...'", message)


PACKET_TOO_LARGE = 1153


def oversized_row(
    entries: list[JournalEntry], exc: pymysql.MySQLError, max_packet: int, site: str
) -> HotsiteError | None:
    """A statement bigger than the target's max_allowed_packet closes the connection:
    not an outage to wait out, but a setting to change (looked for only on error)."""
    code = error_code(exc)
    if not max_packet or not (code == PACKET_TOO_LARGE or is_unavailable(exc)):
        return None
    for entry in entries:
        if entry.rows == 0:
            continue
        for change in entry.transaction().changes:
            row = change.after or change.before or {}
            size = sum(literal_size(v) for v in row.values())
            if size + 1024 > max_packet:
                return ApplyError(
                    f"site {site!r}: a row of {change.schema}.{change.table} takes"
                    f" {size / 2**20:.1f} MiB in a statement, more than the target's"
                    f" max_allowed_packet ({max_packet / 2**20:.0f} MiB)",
                    f"set max_allowed_packet={size + 2**20} (or more) on {site!r}'s server"
                    " (SET GLOBAL and its configuration file)",
                )
    return None
