"""Who is who: the servers behind a link, checked before anything is written.

A wrong project file must never make hotsite destroy data. Before a link snapshots or
streams, this module proves that its two ends are different servers, that they can be
told apart in GTIDs (distinct ``server_id``), that the position row on the target was
written from this source, and it holds two server-side locks for as long as the link
runs:

- on the target, one per link (``GET_LOCK``): a second agent for the same link, from
  any machine or project directory, is refused instead of racing the first;
- on the source, one per replica server id: a second capture with the same id would
  make the source kill the first one's binlog dump.

Server-side named locks are released by the server when the connection ends, so a
``kill -9`` never leaves a stale lock behind. They need no privilege.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import zlib
from dataclasses import dataclass
from typing import Any

from hotsite.db import Connection, connect, query_value, single_row
from hotsite.dburl import DatabaseURL
from hotsite.errors import ConfigError, HotsiteError, LockedError
from hotsite.replication.schema import APPLIED_TABLE, HOTSITE_SCHEMA, IDENTITY_TABLE

LOCK_REFRESH_SECONDS = 2.0


@dataclass(frozen=True)
class ServerIdentity:
    site: str
    server_id: int
    hostname: str
    port: int
    datadir: str

    def describe(self) -> str:
        return f"{self.hostname}:{self.port} (server_id {self.server_id}, datadir {self.datadir})"


def read_identity(conn: Connection, site: str) -> ServerIdentity:
    with conn.cursor() as cur:
        cur.execute("SELECT @@server_id, @@hostname, @@port, @@datadir")
        server_id, hostname, port, datadir = single_row(cur)
    return ServerIdentity(site, int(server_id), str(hostname), int(port), str(datadir))


def same_server(conn_a: Any, conn_b: Any) -> bool:
    """True when both connections reach one server, whatever their addresses say.

    A lock with a random name taken through one connection is seen as used through the
    other only on the same server: no guess from host names, ports or proxies.
    """
    name = f"hotsite-probe-{secrets.token_hex(12)}"
    query_value(conn_a, "SELECT GET_LOCK(%s, 0)", (name,))
    try:
        return query_value(conn_b, "SELECT IS_USED_LOCK(%s)", (name,)) is not None
    finally:
        query_value(conn_a, "SELECT RELEASE_LOCK(%s)", (name,))


def check_distinct_servers(
    source_conn: Connection, source_site: str, target_conn: Connection, target_site: str
) -> tuple[ServerIdentity, ServerIdentity]:
    """Refuse a link whose ends are one server, or two servers sharing a server_id."""
    source = read_identity(source_conn, source_site)
    target = read_identity(target_conn, target_site)
    if same_server(source_conn, target_conn):
        raise ConfigError(
            f"sites {source_site!r} and {target_site!r} are the same database server"
            f" ({source.describe()}): replicating onto it would destroy its tables",
            "point one of the two sites' database URLs at the other server",
        )
    if source.server_id == target.server_id:
        raise ConfigError(
            f"sites {source_site!r} and {target_site!r} both have server_id={source.server_id}"
            f" ({source.describe()}; {target.describe()}): their transactions could not be"
            " told apart",
            "give each server its own server_id in its configuration file, then restart it",
        )
    return source, target


def source_lineage(conn: Connection) -> str:
    """A random id hotsite stores once on a source server (``hotsite.hotsite_identity``).

    MariaDB has no server UUID; this id stays with the server's data through restarts
    and address changes, so a position row can say which source it came from.
    """
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT IGNORE INTO {HOTSITE_SCHEMA}.{IDENTITY_TABLE} (id, lineage, created_at)"
            " VALUES (1, %s, %s)",
            (secrets.token_hex(16), time.time()),
        )
        cur.execute(f"SELECT lineage FROM {HOTSITE_SCHEMA}.{IDENTITY_TABLE} WHERE id = 1")
        return str(single_row(cur)[0])


def check_position_owner(
    target_conn: Connection, link_key: str, lineage: str, source_site: str, target_site: str
) -> None:
    """Refuse a position row on the target that another source wrote for this key."""
    try:
        recorded = query_value(
            target_conn,
            f"SELECT source_id FROM {HOTSITE_SCHEMA}.{APPLIED_TABLE} WHERE link_key = %s",
            (link_key,),
        )
    except HotsiteError:
        return
    if recorded and recorded != lineage:
        raise ConfigError(
            f"the replication position for {link_key!r} on site {target_site!r} was written"
            f" from another source server than site {source_site!r}'s (another project with"
            " the same name, or the source was replaced)",
            "give this project its own 'project:' name in the project file, or run"
            " 'hotsite snapshot --force' to reload the target from this source",
        )


def replica_server_id(link_key: str, configured: int | None) -> int:
    """The server id capture presents to the source: configured, or stable per link."""
    if configured is not None:
        return configured
    return 1_000_000 + zlib.crc32(link_key.encode()) % 1_000_000_000


def _lock_name(kind: str, key: str) -> str:
    return f"hotsite-{kind}-{hashlib.sha1(key.encode()).hexdigest()[:32]}"


class ServerLock:
    """A named lock held on a dedicated connection, re-taken after a reconnect."""

    def __init__(self, url: DatabaseURL, site: str, name: str, refusal: LockedError) -> None:
        self.url = url
        self.site = site
        self.name = name
        self.refusal = refusal
        self._conn: Connection | None = None
        self._checked = 0.0

    def acquire(self) -> None:
        conn = connect(self.url, self.site)
        if query_value(conn, "SELECT GET_LOCK(%s, 0)", (self.name,)) != 1:
            conn.close()
            raise self.refusal
        self._conn = conn
        self._checked = time.monotonic()

    def refresh(self) -> None:
        """Called often by the agent; every few seconds proves the lock is still ours.

        A server restart drops the lock with the connection: take it again, or stop if
        another process took it meanwhile. A server that is down is not an error here
        (apply and capture report it); the lock is re-taken when it is back.
        """
        if time.monotonic() - self._checked < LOCK_REFRESH_SECONDS:
            return
        self._checked = time.monotonic()
        try:
            if self._conn is not None and query_value(
                self._conn, "SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", (self.name,)
            ):
                return
        except Exception:  # the connection broke: re-take the lock below
            pass
        self.release()
        try:
            self.acquire()
        except LockedError:
            raise
        except HotsiteError:
            return

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()  # the server releases the lock with the session
            except Exception:  # already broken: the server released it
                pass
            self._conn = None


class LinkGuard:
    """Identity checks and the two locks of a running link."""

    def __init__(
        self,
        source_url: DatabaseURL,
        source_site: str,
        target_url: DatabaseURL,
        target_site: str,
        link_key: str,
        server_id: int,
    ) -> None:
        what = f"replication link {source_site}->{target_site} ({link_key})"
        self.locks = [
            ServerLock(
                target_url,
                target_site,
                _lock_name("link", link_key),
                LockedError(
                    f"{what} is already running against site {target_site!r}'s server"
                    " (perhaps from another machine or project directory)",
                    "stop the other 'hotsite replicate' or 'hotsite snapshot' first",
                ),
            ),
            ServerLock(
                source_url,
                source_site,
                _lock_name("capture", str(server_id)),
                LockedError(
                    f"replica server id {server_id} is already used by another hotsite"
                    f" capture on site {source_site!r}'s server",
                    "give this link its own 'server_id:' in the project file",
                ),
            ),
        ]

    def acquire(self) -> None:
        try:
            for lock in self.locks:
                lock.acquire()
        except BaseException:
            self.release()
            raise

    def refresh(self) -> None:
        for lock in self.locks:
            lock.refresh()

    def release(self) -> None:
        for lock in self.locks:
            lock.release()


def check_replica_server_id(
    server_id: int, source: ServerIdentity, target: ServerIdentity, others: dict[str, int]
) -> None:
    """The capture's server id must differ from both servers' and from the project's
    other links' (``others``: link name -> id)."""
    for identity in (source, target):
        if identity.server_id == server_id:
            raise ConfigError(
                f"the link's replica server id {server_id} equals site {identity.site!r}'s"
                " server_id",
                "set another 'server_id:' for this link in the project file",
            )
    for name, other in others.items():
        if other == server_id:
            raise ConfigError(
                f"the replica server id {server_id} is also link {name}'s",
                "give each link its own 'server_id:' in the project file",
            )
