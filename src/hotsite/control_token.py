"""The project token the controller and the agents authenticate each other with.

Read from ``dr.controller.token_file`` (which must be a regular file of mode 0600 or
stricter, owned by this user: a token others can read is no secret) or from the
environment variable ``HOTSITE_CONTROL_TOKEN``. It is held in memory only: never
logged, never written to the state store, never part of an error message. The one
place it leaves this process is a deployed agent's token file (0600, on its node), sent
through the transport's hidden environment (blueprint/agent_service.py).
"""

from __future__ import annotations

import hmac
import os
import stat

from hotsite.config_dr import DEFAULT_TOKEN_ENV, DRConfig
from hotsite.errors import ConfigError

MIN_LENGTH = 16


class Token:
    """A secret whose repr and str never show it."""

    def __init__(self, value: str) -> None:
        self._value = value

    def header(self) -> str:
        return f"Bearer {self._value}"

    def matches(self, header: str | None) -> bool:
        expected = self.header().encode()
        return header is not None and hmac.compare_digest(header.encode(), expected)

    def reveal(self) -> str:
        """The value itself: only for handing it to a deployed agent, never to print."""
        return self._value

    def __repr__(self) -> str:
        return "Token(***)"

    __str__ = __repr__


def load_token(dr: DRConfig, environ: dict[str, str] | None = None) -> Token:
    environ = dict(os.environ) if environ is None else environ
    path = dr.controller.token_file
    if path is not None:
        try:
            info = path.stat()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the control token file {path} ({exc.strerror})",
                "create it (mode 0600) with one line: a random token, e.g. from"
                " 'openssl rand -hex 32'",
            ) from None
        if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077:
            raise ConfigError(
                f"the control token file {path} may be read by other users"
                f" (mode {stat.S_IMODE(info.st_mode):04o})",
                f"chmod 600 {path}",
            )
        value = path.read_text(encoding="utf-8").strip()
        where = str(path)
    else:
        value = environ.get(DEFAULT_TOKEN_ENV, "").strip()
        where = f"${DEFAULT_TOKEN_ENV}"
        if not value:
            raise ConfigError(
                f"no control token: set {DEFAULT_TOKEN_ENV} or dr.controller.token_file",
                "the controller and every agent need the same random token, e.g. from"
                " 'openssl rand -hex 32'",
            )
    if len(value) < MIN_LENGTH or any(c.isspace() for c in value):
        raise ConfigError(
            f"the control token in {where} is too short or holds spaces",
            f"use at least {MIN_LENGTH} characters without spaces, e.g. 'openssl rand -hex 32'",
        )
    return Token(value)
