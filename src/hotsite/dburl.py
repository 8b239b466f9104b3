"""Database URLs: ``mysql://user:password@host:port/database[?options]``.

Options: ``socket=/path`` (a Unix socket instead of host and port) and the TLS files
``ssl_ca=``, ``ssl_cert=``, ``ssl_key=`` (absolute paths; see ``hotsite.tls``).

The URL is split into its parts *before* ``${ENV_VAR}`` references are expanded, so a
password read from the environment may hold any character (``@ / # % : ?``) without
breaking the URL. Literal text is percent-decoded; expanded values are used as they are.
Nothing from the user-info part (user, password) ever reaches an error message: a URL
that does not parse is described, not quoted, and every display goes through
``DatabaseURL.redacted``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from hotsite.redaction import MASK
from hotsite.tls import NO_TLS, URL_OPTIONS, TLSSettings, check_complete, checked_path

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SCHEMES = ("mysql", "mariadb")
# A database name as MariaDB allows it unquoted in a URL path: no '/', no '@' (which
# would mean a password with an unencoded '/' was cut in two), no whitespace.
_DATABASE_NAME = re.compile(r"^[^/@\s]{1,64}$")
_ENCODE_HINT = (
    "write a password holding @ / # ? % : as ${ENV_VAR}, or percent-encode it (%40 for @)"
)


@dataclass(frozen=True)
class DatabaseURL:
    """Where a site's database is: ``mysql://user:password@host:port/database``."""

    scheme: str
    host: str
    port: int
    user: str
    password: str
    database: str
    unix_socket: str | None = None
    tls: TLSSettings = NO_TLS

    @classmethod
    def parse(cls, url: str) -> DatabaseURL:
        """Parse and expand ``url``; ValueError (never quoting user or password) if bad."""
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ValueError(
                "expected a URL like mysql://user:password@host:port/database"
                f" (scheme {parts.scheme or 'missing'!r} is not supported)"
            )
        if "#" in url:
            raise ValueError(f"the database URL holds a '#', which would end it; {_ENCODE_HINT}")
        if "@" in parts.path or "@" in parts.query:
            # The '@' that ends the password came after a '/' or '?' of the password.
            raise ValueError(f"the database URL has an '@' after the host; {_ENCODE_HINT}")
        userinfo, at, hostport = parts.netloc.rpartition("@")
        raw_user, _, raw_password = userinfo.partition(":") if at else ("", "", "")
        host, port = _host_and_port(_expand(hostport, "host"))
        database = _expand(parts.path.removeprefix("/"), "database name")
        if not database:
            raise ValueError(
                "the database URL names no database (mysql://user@host:port/DATABASE)"
                " — add the database to replicate after the last '/'"
            )
        if not _DATABASE_NAME.match(database):
            raise ValueError(f"the database name in the URL is not a plain name; {_ENCODE_HINT}")
        unix_socket, tls = _options(parts.query)
        return cls(
            scheme="mysql",
            host=host or "127.0.0.1",
            port=port,
            user=_expand(raw_user, "user") or "root",
            password=_expand(raw_password, "password"),
            database=database,
            unix_socket=unix_socket,
            tls=tls,
        )

    def redacted(self) -> str:
        secret = f":{MASK}" if self.password else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mysql://{self.user}{secret}@{host}:{self.port}/{self.database}"

    def __repr__(self) -> str:  # never let a password reach a log through repr()
        return f"DatabaseURL({self.redacted()})"

    __str__ = redacted


def _expand(text: str, part: str) -> str:
    """Percent-decode the literal pieces of ``text``; insert ``${NAME}`` values verbatim."""
    pieces: list[str] = []
    end = 0
    for ref in ENV_REF.finditer(text):
        name = ref.group(1)
        if name not in os.environ:
            raise ValueError(
                f"environment variable {name} is not set (used in the database URL's {part})"
            )
        pieces += [unquote(text[end : ref.start()]), os.environ[name]]
        end = ref.end()
    pieces.append(unquote(text[end:]))
    return "".join(pieces)


def _host_and_port(hostport: str) -> tuple[str, int]:
    if hostport.startswith("["):  # [IPv6]:port
        host, _, rest = hostport[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = hostport.partition(":")
    if not port_text:
        return host, 3306
    if not port_text.isdigit():
        raise ValueError(f"the port in the database URL is not a number; {_ENCODE_HINT}")
    if not 0 < int(port_text) < 65536:
        raise ValueError(f"port {port_text} in the database URL is not in 1-65535")
    return host, int(port_text)


def _options(query: str) -> tuple[str | None, TLSSettings]:
    """``?socket=/path`` and the TLS files; anything else is refused."""
    known = ("socket", *URL_OPTIONS)
    given: dict[str, str] = {}
    for item in query.split("&") if query else []:
        name, equals, value = item.partition("=")
        if name not in known:
            shown = name if name.isidentifier() else "…"
            raise ValueError(
                f"unknown option ?{shown} in the database URL (known: ?socket=/path/to/mysqld.sock,"
                " ?ssl_ca=, ?ssl_cert=, ?ssl_key=)"
            )
        if not equals or not value:
            raise ValueError(f"?{name}= in the database URL needs a path")
        if name in given:
            raise ValueError(f"the database URL gives ?{name}= twice")
        given[name] = _expand(value, f"{name} path")
    paths = {
        field: checked_path(given[opt], field) for opt, field in URL_OPTIONS.items() if opt in given
    }
    tls = TLSSettings(ca=paths.get("ca"), cert=paths.get("cert"), key=paths.get("key"))
    check_complete(tls)
    socket = given.get("socket")
    if socket is not None and tls.enabled:
        raise ValueError(SOCKET_AND_TLS)
    return socket, tls


SOCKET_AND_TLS = (
    "TLS is for TCP connections, but the database URL uses ?socket= (a local connection);"
    " use host and port, or leave TLS out for this site"
)
