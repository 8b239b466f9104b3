"""TLS for hotsite's connections to the sites' databases: verified, or not at all.

A site's TLS settings come from its URL (``?ssl_ca=/path&ssl_cert=…&ssl_key=…``) and
from ``sites.NAME.tls`` in the project file (one key in one place: the same key in both
is refused). ``require_tls`` (per site, or for the whole project) turns TLS on for a
site that names no CA of its own; the system's trust store then verifies the server.

Whenever TLS is on, it is **required** and **verified**: the server's certificate must
chain to the CA and name the host hotsite connects to (the URL's host — an IP address
must be in the certificate's subjectAltName as one). A server that does not offer TLS
is refused, never talked to in plaintext. Certificate and key paths may be shown in
messages; the key's content and database passwords never are.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, fields, replace

from hotsite.errors import ConfigError

# URL option -> TLSSettings field.
URL_OPTIONS = {"ssl_ca": "ca", "ssl_cert": "cert", "ssl_key": "key"}


@dataclass(frozen=True)
class TLSSettings:
    """How to secure one connection. All paths are absolute, on the machine hotsite
    runs on."""

    ca: str | None = None  # PEM CA certificate(s); None: the system's trust store
    cert: str | None = None  # client certificate (PEM), for servers that ask for one
    key: str | None = None  # its private key; None: it is in the ``cert`` file
    required: bool = False  # TLS even without a CA of our own (system trust store)

    @property
    def enabled(self) -> bool:
        return self.required or self.ca is not None or self.cert is not None

    def merged(self, other: TLSSettings, what: str) -> TLSSettings:
        """These settings completed by ``other``'s; ValueError if both set one key."""
        values: dict[str, object] = {}
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name != "required" and mine is not None and theirs is not None:
                raise ValueError(f"the TLS {f.name} is given twice ({what}); keep one")
            values[f.name] = mine or theirs
        return replace(self, **values)  # type: ignore[arg-type]

    def describe(self) -> str:
        """For messages: where trust comes from (paths only, never contents)."""
        trust = f"CA {self.ca}" if self.ca else "the system's trust store"
        return f"TLS verified against {trust}" + (
            f", client certificate {self.cert}" if self.cert else ""
        )


NO_TLS = TLSSettings()


def checked_path(value: str, what: str) -> str:
    """An absolute path for a TLS file (``~`` expanded); ValueError otherwise."""
    path = os.path.expanduser(value.strip())
    if not path:
        raise ValueError(f"the TLS {what} path is empty")
    if not os.path.isabs(path):
        # Relative to what? The project file's directory and the current one differ
        # between `hotsite` run by hand and by a service manager.
        raise ValueError(f"the TLS {what} path {value!r} must be absolute")
    return path


def check_complete(tls: TLSSettings) -> None:
    """A key without a certificate means nothing: ValueError."""
    if tls.key is not None and tls.cert is None:
        raise ValueError("a TLS key is given without its certificate (cert / ssl_cert)")


def client_context(tls: TLSSettings, where: str) -> ssl.SSLContext:
    """The context every connection of a TLS site uses: certificate and host name checked.

    ``where`` names the database for errors (a redacted URL)."""
    try:
        context = ssl.create_default_context(cafile=tls.ca)
    except (OSError, ssl.SSLError) as exc:
        raise _unreadable("CA file", tls.ca, where, exc) from None
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if tls.cert is not None:
        try:
            context.load_cert_chain(tls.cert, keyfile=tls.key)
        except (OSError, ssl.SSLError) as exc:
            raise _unreadable("client certificate or key", tls.cert, where, exc) from None
    return context


def _unreadable(what: str, path: str | None, where: str, exc: Exception) -> ConfigError:
    reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
    return ConfigError(
        f"{where}: cannot use the TLS {what} {path} ({reason})",
        "check the path and that it holds PEM data readable by this user",
    )
