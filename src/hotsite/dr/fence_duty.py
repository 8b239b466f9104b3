"""The agent's fence duty: a fence recorded on the site's server is enforced again when
the agent starts and whenever the server comes back writable (a restart resets
``read_only``; the fence row survives it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pymysql

from hotsite.db import is_unavailable
from hotsite.dr.fence import FenceState, enforce
from hotsite.errors import DatabaseUnavailable, HotsiteError


class FenceDuty:
    """``connect`` opens a connection to the site's database (hotsite.db.connect)."""

    def __init__(self, site: str, connect: Callable[[], Any], every: float = 0.25) -> None:
        self.name = "fence"
        self.site = site
        self._connect = connect
        self._every = every
        self._conn: Any = None
        self._last = 0.0
        self.state: FenceState | None = None
        self.enforced = 0  # times the fence had to be set again

    def start(self) -> None:
        self._check()

    def poll(self) -> dict[str, Any]:
        if time.monotonic() - self._last >= self._every:
            self._check()
        state = self.state
        return {"site": self.site, "enforced": self.enforced, **(state.as_dict() if state else {})}

    def stop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # a connection the server already closed
                pass
            self._conn = None

    def _check(self) -> None:
        self._last = time.monotonic()
        try:
            if self._conn is None:
                self._conn = self._connect()
            self.state, acted = enforce(self._conn)
            self.enforced += acted
        except pymysql.MySQLError as exc:
            self.stop()
            if is_unavailable(exc):
                raise DatabaseUnavailable(
                    f"site {self.site!r}: cannot reach its database to check its fence", None
                ) from None
            raise HotsiteError(f"site {self.site!r}: cannot check its fence ({exc})") from None
