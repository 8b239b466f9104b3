"""Connections to site databases, with driver errors turned into one-line user errors."""

from __future__ import annotations

import functools
import re
import ssl
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import pymysql
import pymysql.cursors
from pymysql.charset import charset_by_name
from pymysql.constants import COMMAND

from hotsite.binary_literals import send_bytes_as_binary
from hotsite.dburl import DatabaseURL
from hotsite.errors import DatabaseError, DatabaseUnavailable, HotsiteError
from hotsite.tls import client_context

# MySQL/MariaDB error codes we explain rather than pass through.
ACCESS_DENIED = 1045
UNKNOWN_DATABASE = 1049
CANNOT_CONNECT = 2003
SERVER_GONE = 2006
LOST_CONNECTION = 2013
TLS_REFUSED = 2026  # CR_SSL_CONNECTION_ERROR: TLS asked for, the server offers none
SERVER_SHUTDOWN = 1053
CONNECTION_KILLED = 1927
UNAVAILABLE_CODES = {
    CANNOT_CONNECT,
    SERVER_GONE,
    LOST_CONNECTION,
    SERVER_SHUTDOWN,
    CONNECTION_KILLED,
    2002,
    2055,
}


# pymysql ships no type information: these say what hotsite uses of its connections and
# cursors (``pymysql.connections.Connection``, ``pymysql.cursors.Cursor`` and
# ``SSCursor``), so a typo or a wrong argument is found by mypy, not by a site.
Value = Any  # what pymysql returns for a column: int, str, bytes, Decimal, datetime, None
Record = tuple[Value, ...]  # one row of a result, in the SELECT's column order


class Cursor(Protocol):
    rowcount: int

    @property
    def connection(self) -> Connection: ...

    def execute(self, query: str, args: Any = None) -> int: ...

    def executemany(self, query: str, args: Iterable[Any]) -> int | None: ...

    def fetchone(self) -> Record | None: ...

    def fetchmany(self, size: int | None = None) -> Sequence[Record]: ...

    def fetchall(self) -> Sequence[Record]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Cursor: ...

    def __exit__(self, *exc: object) -> None: ...


class Connection(Protocol):
    def cursor(self) -> Cursor: ...

    def begin(self) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def autocommit(self, value: bool) -> None: ...

    def escape(self, obj: Any, mapping: Any = None) -> str: ...

    def close(self) -> None: ...


def error_code(exc: BaseException) -> int | None:
    """The server's (or the client library's) error number, None for any other error.

    pymysql puts it first in ``args``: ``(1062, "Duplicate entry ...")``."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], int) else None


def error_message(exc: BaseException) -> str:
    """The server's message as it gave it (may quote row values: see ``error_reason``)."""
    return str(exc.args[1]) if len(exc.args) >= 2 else (str(exc) or type(exc).__name__)


def explain(exc: BaseException, url: DatabaseURL, site: str) -> HotsiteError:
    """A user-facing error for a pymysql exception raised while talking to ``site``."""
    if isinstance(exc, HotsiteError):
        return exc
    where = f"site {site!r} database {url.redacted()}"
    code = error_code(exc)
    if code == ACCESS_DENIED:
        return DatabaseError(
            f"{where}: access denied for user {url.user!r}",
            f"check the user and password in the project file (sites.{site}.database)",
        )
    if code == TLS_REFUSED:
        return DatabaseError(
            f"{where}: the server does not offer TLS, and this site requires it",
            f"enable TLS on the server (ssl_cert, ssl_key), or remove TLS and require_tls"
            f" from sites.{site}",
        )
    tls_failure = _tls_failure(exc)
    if tls_failure is not None:
        return DatabaseError(
            f"{where}: {tls_failure} ({url.tls.describe()})",
            f"sites.{site}.tls.ca (or ?ssl_ca=) must be the CA that signed the server's"
            " certificate, and the certificate must name the URL's host",
        )
    if code == UNKNOWN_DATABASE:
        return DatabaseError(
            f"{where}: database {url.database!r} does not exist",
            "create it, or fix the database name in the URL",
        )
    error: DatabaseError
    if code in UNAVAILABLE_CODES or isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        error = DatabaseUnavailable(
            f"{where}: cannot reach the server ({error_reason(exc)})",
            "check that it is running and that host and port are right",
        )
    else:
        error = DatabaseError(f"{where}: {error_reason(exc)}")
    error.code = code
    return error


def _tls_failure(exc: BaseException) -> str | None:
    """What went wrong in a TLS handshake (pymysql wraps it in a 'cannot connect')."""
    original = getattr(exc, "original_exception", exc)
    if isinstance(original, ssl.SSLCertVerificationError):
        reason = original.verify_message or original.reason or "verify failed"
        return f"the server's TLS certificate is refused: {reason}"
    if isinstance(original, ssl.SSLError):
        return f"the TLS handshake failed: {original.reason or original}"
    return None


# Server messages that quote row data ("Duplicate entry 'ann@example.org' for key
# 'email'", "Incorrect string value: '\xF0...' for column ..."): the value is hidden,
# the key or column that names the problem is kept. Errors reach the status file, the
# log and the terminal; rows of the databases do not. The server does not escape quotes
# inside the value, so each pattern runs to the text that follows it (greedy: a value
# holding "' for key '" still ends at the last one).
_QUOTED_VALUES = [
    re.compile(r"(Duplicate entry ').*(' for key ')", re.S),
    re.compile(r"(value: ').*(' for column )", re.S),
    re.compile(r"(Truncated incorrect [^']* value: ').*(')$", re.S),
]


def error_reason(exc: BaseException) -> str:
    """The server's message, with any row value it quotes hidden."""
    text = error_message(exc)
    for pattern in _QUOTED_VALUES:
        text = pattern.sub(r"\1…\2", text)
    return text


def connection_settings(
    url: DatabaseURL, *, timeout: float = 5.0, read_timeout: float | None = None
) -> dict[str, Any]:
    """pymysql keyword arguments for ``url``: the one place a URL becomes a connection.

    Every connection to a site (queries, apply, both binlog decoders) is built from
    these, so all of them reach the same server the same way (``?socket=`` included)
    and, for a TLS site, all of them verify it the same way: pymysql given a context
    requires TLS (a server without it is refused with error 2026) and the context
    checks the certificate and the host name (see ``hotsite.tls``).
    """
    settings: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "user": url.user,
        "password": url.password,
        "charset": "utf8mb4",
        "connect_timeout": timeout,
    }
    if url.unix_socket:
        settings["unix_socket"] = url.unix_socket
    if url.tls.enabled:
        settings["ssl"] = client_context(url.tls, url.redacted())
    if read_timeout is not None:
        settings["read_timeout"] = read_timeout
    return settings


class _PymysqlConnection(pymysql.connections.Connection):
    """pymysql's connection, with one context for its TLS-if-offered mode, and the
    session's settings sent with pymysql's own ``SET NAMES``.

    Given no TLS options (a site without ``tls``), pymysql 1.2 tries TLS and falls back
    to plain text, with a context it builds per connection that loads the system's CA
    store (20 ms of CPU) only to verify nothing (CERT_NONE). Every probe, status read
    and link start paid it; the same unverifying context, made once, serves them all.
    A site with ``tls`` passes its own context (``hotsite.tls``), used as given.

    pymysql sends ``SET NAMES`` at every connect, and an ``init_command`` after it: two
    round trips where one statement does (``SET NAMES utf8mb4, time_zone = ...``).
    A link starts over a WAN with several connections to its source; each saves one."""

    def __init__(self, *, session_settings: str = "", **settings: Any) -> None:
        self._session_settings = session_settings  # read while super() connects
        super().__init__(**settings)

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        if isinstance(sslp, dict) and not sslp:
            return _unverified_context()
        return super()._create_ssl_ctx(sslp)

    def set_character_set(self, charset: str, collation: str | None = None) -> None:
        if not self._session_settings:
            super().set_character_set(charset, collation)
            return
        encoding = charset_by_name(charset).encoding
        names = f"SET NAMES {charset}" + (f" COLLATE {collation}" if collation else "")
        self._execute_command(COMMAND.COM_QUERY, f"{names}, {self._session_settings}")
        self._read_packet()
        self.charset, self.encoding, self.collation = charset, encoding, collation


@functools.cache
def _unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def open_connection(**settings: Any) -> pymysql.connections.Connection:
    """``pymysql.connect`` for every connection hotsite opens (see _PymysqlConnection)."""
    return _PymysqlConnection(**settings)


def connect(
    url: DatabaseURL,
    site: str,
    *,
    database: str | None = None,
    autocommit: bool = True,
    streaming: bool = False,
    timeout: float = 5.0,
    client_flag: int = 0,
    read_timeout: float | None = None,
) -> Connection:
    """Open a connection; every session runs in UTC so TIMESTAMP values round-trip.
    ``timeout`` bounds the TCP connect only: a probe must pass ``read_timeout`` too, or
    a link cut after the connect (mid-handshake) hangs it for good."""
    try:
        conn = open_connection(
            **connection_settings(url, timeout=timeout, read_timeout=read_timeout),
            database=database,
            autocommit=autocommit,
            session_settings="time_zone = '+00:00'",
            cursorclass=pymysql.cursors.SSCursor if streaming else pymysql.cursors.Cursor,
            client_flag=client_flag,
        )
        return send_bytes_as_binary(conn)
    except pymysql.MySQLError as exc:
        raise explain(exc, url, site) from None


def prepare_writer(conn: Connection, *, bulk_load: bool = False) -> None:
    """The session of every hotsite writer of replicated rows (apply, snapshot, repair).

    The rows were checked where they were first written: checking foreign keys again
    costs, and refuses rows in an order the source accepted (a child before its parent
    in one batch). ``NO_AUTO_VALUE_ON_ZERO``: a 0 in an AUTO_INCREMENT column stays 0
    instead of becoming the next number. A bulk load (the snapshot, into tables it has
    just emptied) skips unique checks too.
    """
    with conn.cursor() as cur:
        cur.execute(
            "SET SESSION foreign_key_checks = 0,"
            " sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO')"
            + (", unique_checks = 0" if bulk_load else "")
        )


def single_row(cur: Cursor) -> Record:
    """The row of a query that always returns one (``SELECT @@port``, ``CURRENT_USER()``,
    a row just written): its absence is a broken server or session, said in one line."""
    row = cur.fetchone()
    if row is None:
        raise DatabaseError(
            "the server returned no row where it always returns one",
            "check the server's health and run the command again",
        )
    return row


def query_value(conn: Connection, sql: str, args: Any = None) -> Value:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        row = cur.fetchone()
        return row[0] if row else None


def is_unavailable(exc: BaseException) -> bool:
    return error_code(exc) in UNAVAILABLE_CODES or isinstance(
        exc, (ConnectionError, pymysql.err.InterfaceError)
    )
