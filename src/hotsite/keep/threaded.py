"""A duty whose work runs in a thread of its own, with its own event loop.

The agent polls its duties four times a second and must never wait for an SSH
connection, a restart, a new node or a whole burst site coming up: healing and
bursting do their rounds here, and the agent only reads their status. An exception
that ends the loop is raised by the next ``poll``, so the agent restarts the duty.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from hotsite.errors import HotsiteError
from hotsite.logs import get_logger

log = get_logger(__name__)


class ThreadedDuty:
    name: str = ""
    interval: float = 1.0
    join_timeout: float = 60.0
    # Set by a round that saw something wrong: the next one comes sooner (like HAProxy's
    # fastinter), so N failures in a row take N short probes, not N intervals.
    hurry: bool = False
    hurried_interval: float = 0.1

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: str | None = None
        self._status: dict[str, Any] = {}

    def prepare(self) -> None:
        """Read what the rounds need (may raise HotsiteError: the agent retries)."""

    async def round(self) -> object:
        raise NotImplementedError

    async def closing(self) -> None:
        """Release what the rounds opened (connections), in the loop that opened it."""

    def start(self) -> None:
        self.prepare()
        self._stop.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def poll(self) -> dict[str, Any]:
        if self._error is not None:
            raise HotsiteError(f"{self.name} stopped: {self._error}")
        return dict(self._status)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.join_timeout)
            self._thread = None

    def _run(self) -> None:
        try:
            asyncio.run(self._loop())
        except Exception as exc:  # reported by poll; the agent restarts the duty
            log.error("duty stopped", duty=self.name, error=str(exc))
            self._error = str(exc) or type(exc).__name__

    async def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                await self.round()
                every = min(self.interval, self.hurried_interval) if self.hurry else self.interval
                pause = every - (time.monotonic() - started)
                if pause > 0:
                    await asyncio.sleep(pause)
        finally:
            await self.closing()
