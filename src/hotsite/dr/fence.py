"""Fencing a site's MariaDB: no more writes there, and it stays so across restarts.

``fence`` records the fence in a row of the ``hotsite`` schema on that server (written
with ``sql_log_bin=0``: a fence is the state of one server and must never replicate to
the other site), sets ``read_only=ON`` and kills every session but its own and the
binlog readers (capture reads the old primary's tail; it never writes). A session killed
mid-transaction is rolled back; a new session cannot write, because of ``read_only``.

``read_only`` itself does not survive a server restart: the row does, and ``enforce``
(run by the site's agent at start and then on every poll, see ``FenceDuty``) sets
``read_only`` again and kills the sessions that connected meanwhile.

MariaDB lets accounts with the ``READ_ONLY ADMIN`` privilege (``ALL PRIVILEGES`` includes
it; before 10.11, ``SUPER`` did too) write through ``read_only``. ``fence`` kills their
sessions like the others but cannot stop their new ones; it lists those accounts
(``FenceState.bypass``) so the caller can warn. docs/dr.md says what to do about them.

Kinds of fence: ``lease`` (the primary's agent could not renew its lease; lifted when the
controller grants it again at the same epoch), ``move`` (a site failed away from; lifted
only by failback or ``hotsite promote --force``), ``manual``.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import Any

import pymysql

from hotsite.db import query_value
from hotsite.errors import DatabaseError, HotsiteError

FENCE_TABLE = "hotsite.hotsite_fence"
KINDS = ("lease", "move", "manual")
_UNKNOWN_THREAD = 1094
_READ_ONLY = 1290  # ER_OPTION_PREVENTS_STATEMENT
_FENCE_ATTEMPTS = 4
# Threads of the server itself, and binlog readers (capture): never killed.
_KEEP_COMMANDS = (
    "Daemon",
    "Binlog Dump",
    "Binlog Dump GTID",
    "Slave_IO",
    "Slave_SQL",
    "Slave_worker",
    # A session still logging in has no transaction to abort, and may be another fencer
    # (its next statement waits for the fence's lock); once in, read_only stops it.
    "Connect",
)
_KEEP_USERS = ("system user", "event_scheduler", "unauthenticated user")
# This session was killed (by a fencer): connection killed, server gone, lost during a query.
KILLED = (1927, 2006, 2013)
_KILLED_RETRIES = 3
_BYPASS = re.compile(r"^GRANT (ALL PRIVILEGES|.*\bREAD_ONLY ADMIN\b).* ON \*\.\* TO ")
_BYPASS_BEFORE_10_11 = re.compile(r"^GRANT .*\bSUPER\b.* ON \*\.\* TO ")


@dataclass(frozen=True)
class FenceState:
    read_only: bool
    fenced: bool  # the persistent row says so
    kind: str | None = None
    epoch: int | None = None
    reason: str = ""
    since: float | None = None  # the server's clock, seconds since the epoch
    killed: int = 0  # sessions killed by this call
    bypass: tuple[str, ...] = field(default=())  # accounts that write through read_only

    @property
    def writable(self) -> bool:
        return not self.read_only

    def as_dict(self) -> dict[str, Any]:
        return {
            "read_only": self.read_only,
            "fenced": self.fenced,
            "kind": self.kind,
            "epoch": self.epoch,
            "reason": self.reason,
            "bypass": list(self.bypass),
        }


def ensure_table(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS hotsite")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {FENCE_TABLE} ("
            " id TINYINT PRIMARY KEY, fenced TINYINT NOT NULL, kind VARCHAR(16) NOT NULL,"
            " epoch BIGINT, reason VARCHAR(500) NOT NULL DEFAULT '',"
            " since DOUBLE NOT NULL) ENGINE=InnoDB"
        )


def read_state(conn: Any) -> FenceState:
    """The server's read_only and its fence row (none: not fenced)."""
    read_only = bool(query_value(conn, "SELECT @@GLOBAL.read_only"))
    row = None
    with conn.cursor() as cur:
        try:
            cur.execute(
                f"SELECT fenced, kind, epoch, reason, since FROM {FENCE_TABLE} WHERE id = 1"
            )
            row = cur.fetchone()
        except pymysql.err.ProgrammingError as exc:  # 1146 no table, 1049 no schema
            if exc.args[0] not in (1146, 1049):
                raise
    if row is None or not row[0]:
        return FenceState(read_only=read_only, fenced=False)
    return FenceState(read_only, True, row[1], row[2], row[3], row[4])


def fence(
    conn: Any, kind: str, epoch: int | None, reason: str, list_bypass: bool = True
) -> FenceState:
    """Persist the fence, set read_only, kill every other writer session; then (unless
    ``list_bypass`` is false: a lease keeper racing its lease's end) list the accounts
    that write through read_only."""
    if kind not in KINDS:
        raise ValueError(f"unknown fence kind {kind!r}")
    # One fencer at a time (a move's and the lease keeper's meet at a move's start): each
    # kills every other session, and a fencer waiting here is not killed (kill_sessions).
    with _fence_lock(conn, wait=10) as held:
        if not held:
            raise HotsiteError("another session held the fence's lock for 10 s: not fenced")
        return _fence(conn, kind, epoch, reason, list_bypass)


def _fence(conn: Any, kind: str, epoch: int | None, reason: str, list_bypass: bool) -> FenceState:
    # Kill first: SET GLOBAL read_only waits for sessions holding table locks or open
    # transactions, and a fence must not wait on the very writers it is cutting.
    killed = kill_sessions(conn)
    current = read_state(conn)
    # A lease fence never replaces a move's or a manual one: those are lifted only by
    # failback or promote, a lease fence by the lease keeper itself.
    keep = current.fenced and (
        (current.kind == kind and current.epoch == epoch)
        or (kind == "lease" and current.kind != "lease")
    )
    if not keep:
        _write_row(conn, fenced=True, kind=kind, epoch=epoch, reason=reason)
    _set_read_only(conn, True)
    killed += kill_sessions(conn)  # whoever connected between the first kill and read_only
    state = read_state(conn)
    return FenceState(
        state.read_only, state.fenced, state.kind, state.epoch, state.reason, state.since,
        killed, bypass_accounts(conn) if list_bypass else (),
    )  # fmt: skip


def unfence(conn: Any) -> FenceState:
    """Writable again, and the fence row cleared. read_only goes first: a crash between
    the two leaves the row, and the agent fences the server again (the safe side).

    Between the two the server is writable with its row still there, which is what
    ``enforce`` (the site agent's fence duty) undoes — killing this very session. So
    fence, unfence and enforce all hold the server's named lock ``FENCE_LOCK``."""
    with _fence_lock(conn, wait=10) as held:
        if not held:
            raise HotsiteError(
                "another session held the fence's lock for 10 s: the fence was not lifted"
            )
        _set_read_only(conn, False)
        if read_state(conn).fenced:  # a server never fenced gets no table (no DDL on promote)
            _write_row(conn, fenced=False, kind="manual", epoch=None, reason="unfenced")
    return read_state(conn)


def enforce(conn: Any) -> tuple[FenceState, bool]:
    """If the row says fenced and the server is writable (a restart reset read_only, or
    someone set it), fence it again. Returns the state after, and whether it acted.
    While another session fences or lifts the fence (it holds ``FENCE_LOCK``) nothing
    is done: the next check, a quarter of a second later, sees how it ended."""
    with _fence_lock(conn, wait=0) as held:
        state = read_state(conn)
        if not held or not (state.fenced and not state.read_only):
            return state, False
        killed = kill_sessions(conn)
        _set_read_only(conn, True)
        killed += kill_sessions(conn)
        after = read_state(conn)
        return FenceState(
            after.read_only, True, after.kind, after.epoch, after.reason, after.since, killed,
            bypass_accounts(conn),
        ), True  # fmt: skip


FENCE_LOCK = "hotsite.fence"


@contextlib.contextmanager
def _fence_lock(conn: Any, wait: float) -> Any:
    """The server's named lock (GET_LOCK: per session, released when it ends)."""
    held = bool(query_value(conn, "SELECT GET_LOCK(%s, %s)", (FENCE_LOCK, wait)))
    try:
        yield held
    finally:
        if held:
            with contextlib.suppress(pymysql.MySQLError):
                query_value(conn, "SELECT RELEASE_LOCK(%s)", (FENCE_LOCK,))


def kill_sessions(conn: Any) -> int:
    """Kill every client session but this one, the server's and binlog readers' own, and
    another fencer waiting for the fence's lock (it fences too; killing it made a move
    fail when the lease keeper fenced at the same moment)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()"
            f" AND COMMAND NOT IN ({', '.join(['%s'] * len(_KEEP_COMMANDS))})"
            f" AND USER NOT IN ({', '.join(['%s'] * len(_KEEP_USERS))})"
            " AND COALESCE(INFO, '') NOT LIKE %s",
            (*_KEEP_COMMANDS, *_KEEP_USERS, f"%GET_LOCK('{FENCE_LOCK}'%"),
        )
        ids = [row[0] for row in cur.fetchall()]
        killed = 0
        for session in ids:
            try:
                cur.execute(f"KILL CONNECTION {int(session)}")
                killed += 1
            except pymysql.err.InternalError as exc:
                if exc.args[0] != _UNKNOWN_THREAD:  # it ended by itself meanwhile
                    raise
            except pymysql.err.OperationalError as exc:
                if exc.args[0] != _UNKNOWN_THREAD:
                    raise
        return killed


def bypass_accounts(conn: Any) -> tuple[str, ...]:
    """Accounts that can write through read_only; ('?',) when they cannot be listed."""
    version = str(query_value(conn, "SELECT VERSION()") or "")
    old = _version(version) < (10, 11)
    found: list[str] = []
    with conn.cursor() as cur:
        try:
            cur.execute("SELECT User, Host FROM mysql.user WHERE User <> '' AND is_role = 'N'")
            accounts = list(cur.fetchall())
        except pymysql.MySQLError:
            return ("?",)
        for user, host in accounts:
            if user == "mariadb.sys":
                continue  # a locked account that owns system views; it cannot log in
            try:
                cur.execute("SHOW GRANTS FOR %s@%s", (user, host))
                grants = [row[0] for row in cur.fetchall()]
            except pymysql.MySQLError:
                continue
            if any(_BYPASS.match(g) or (old and _BYPASS_BEFORE_10_11.match(g)) for g in grants):
                found.append(f"'{user}'@'{host}'")
    return tuple(found)


def _write_row(conn: Any, *, fenced: bool, kind: str, epoch: int | None, reason: str) -> None:
    with conn.cursor() as cur:
        # Not in the binlog, neither the row nor the table's DDL: a fence belongs to this
        # server and must not replicate, nor count as a transaction the other site lacks.
        # Without the privilege to skip it the row is still written (and hotsite's own
        # links never replicate the hotsite schema).
        with contextlib.suppress(pymysql.err.OperationalError, pymysql.err.InternalError):
            cur.execute("SET SESSION sql_log_bin = 0")
        try:
            ensure_table(conn)
            cur.execute(
                f"REPLACE INTO {FENCE_TABLE} (id, fenced, kind, epoch, reason, since)"
                " VALUES (1, %s, %s, %s, %s, %s)",
                (int(fenced), kind, epoch, reason[:500], time.time()),
            )
        except pymysql.err.OperationalError as exc:
            if exc.args[0] != _READ_ONLY:
                raise
            raise HotsiteError(
                "cannot record the fence: the server is read-only already and this user may"
                " not write through read_only",
                "grant the hotsite user READ_ONLY ADMIN (docs/dr.md#fencing), then run the"
                " command again",
            ) from None
        finally:
            with contextlib.suppress(pymysql.MySQLError):
                cur.execute("SET SESSION sql_log_bin = 1")


def _set_read_only(conn: Any, on: bool) -> None:
    with conn.cursor() as cur:
        # Bounded: never hang a fence behind a lock held by a session that just escaped
        # the kill; the caller retries (the agent's duty polls again).
        cur.execute("SET SESSION lock_wait_timeout = 5")
        cur.execute(f"SET GLOBAL read_only = {'ON' if on else 'OFF'}")


def _version(text: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


class SiteFence:
    """Fence operations on one site's database, each on a fresh connection (a fence is
    rare, and must not depend on a connection that a server restart broke)."""

    def __init__(self, connect: Any) -> None:
        self._connect = connect

    def _run(self, operation: Any, *args: Any) -> Any:
        # Another fencer may kill this session in the instant after it connected and
        # before it waits for the fence's lock (kill_sessions spares only waiters): the
        # operations are idempotent, so a killed one runs again on a fresh connection.
        # The kill may land while the connection is still being set up (its init
        # command): then connect itself fails, with the same codes.
        for attempt in range(_KILLED_RETRIES + 1):
            try:
                conn = self._connect()
            except DatabaseError as exc:
                if exc.code not in KILLED or attempt == _KILLED_RETRIES:
                    raise
                continue
            try:
                return operation(conn, *args)
            except pymysql.err.OperationalError as exc:
                if exc.args[0] not in KILLED or attempt == _KILLED_RETRIES:
                    raise
            finally:
                conn.close()
        raise AssertionError("unreachable")

    def state(self) -> FenceState:
        result: FenceState = self._run(read_state)
        return result

    def fence(
        self, kind: str, epoch: int | None, reason: str, list_bypass: bool = True
    ) -> FenceState:
        # Two fencers at once (a move, and the primary's lease keeper that the move's
        # refusal made fence too) kill each other's sessions. A fence is idempotent:
        # the one whose session was killed fences again on a new connection.
        for attempt in range(_FENCE_ATTEMPTS):
            try:
                result: FenceState = self._run(fence, kind, epoch, reason, list_bypass)
                return result
            except pymysql.err.OperationalError as exc:
                if exc.args[0] not in KILLED or attempt == _FENCE_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def unfence(self) -> FenceState:
        result: FenceState = self._run(unfence)
        return result
