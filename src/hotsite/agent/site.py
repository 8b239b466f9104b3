"""The site agent: one long-running process per site, running its duties.

Today its duties are the replication links that end at the site; the lease, health
probes and healing are further duties of the same agent (duty.py). A duty that fails
is stopped and started again after a delay that doubles up to RETRY_MAX, so one broken
link never stops the others; the agent's own status file says what each duty is doing.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

from hotsite.config import ProjectConfig
from hotsite.duty import Duty
from hotsite.errors import HotsiteError
from hotsite.logs import get_logger
from hotsite.replication.status import STALE_AFTER
from hotsite.statefiles import StatusFile

log = get_logger(__name__)
# A database error a duty let through (a session of its own killed by a fence, say) is
# that duty's failure, restarted with a backoff like any other: never the agent's end.
DUTY_ERRORS = (HotsiteError, pymysql.MySQLError)
POLL_EVERY = 0.25
RETRY_FIRST, RETRY_MAX = 1.0, 30.0


@dataclass
class DutyState:
    duty: Duty
    running: bool = False
    status: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    restarts: int = 0
    retry_at: float = 0.0
    delay: float = RETRY_FIRST

    def view(self) -> dict[str, Any]:
        return {
            "duty": self.duty.name,
            "running": self.running,
            "error": self.error,
            "restarts": self.restarts,
            "status": self.status,
        }


class SiteAgent:
    def __init__(self, config: ProjectConfig, site: str, duties: list[Duty]) -> None:
        self.config = config
        self.site = site
        self.duties = [DutyState(duty) for duty in duties]
        self.stopping = threading.Event()
        self._status = StatusFile(agent_status_path(config, site))

    def run(self, on_tick: Any = None) -> None:
        """Until ``stopping`` is set (or KeyboardInterrupt): start, poll, restart duties."""
        try:
            while not self.stopping.is_set():
                self.tick()
                if on_tick is not None:
                    on_tick(self)
                self.stopping.wait(POLL_EVERY)
        finally:
            self.stop()

    def tick(self) -> None:
        now = time.monotonic()
        for state in self.duties:
            if not state.running:
                if now >= state.retry_at:
                    self._start(state)
                continue
            try:
                state.status = state.duty.poll()
                state.error = None
                state.delay = RETRY_FIRST
            except DUTY_ERRORS as exc:
                self._failed(state, str(exc))
        self._write_status()

    def _start(self, state: DutyState) -> None:
        try:
            state.duty.start()
            state.running = True
            state.error = None
            log.info("duty started", site=self.site, duty=state.duty.name)
        except DUTY_ERRORS as exc:
            self._failed(state, str(exc))

    def _failed(self, state: DutyState, message: str) -> None:
        if state.error != message:
            log.warning("duty failed", site=self.site, duty=state.duty.name, error=message)
        try:
            state.duty.stop()
        except Exception as exc:  # stopping a broken duty may fail too: it restarts anyway
            log.warning("duty did not stop cleanly", duty=state.duty.name, error=str(exc))
        state.running = False
        state.error = message
        state.restarts += 1
        state.retry_at = time.monotonic() + state.delay
        state.delay = min(state.delay * 2, RETRY_MAX)

    def stop(self) -> None:
        for state in self.duties:
            if state.running:
                try:
                    state.duty.stop()
                except Exception as exc:
                    log.warning("duty did not stop cleanly", duty=state.duty.name, error=str(exc))
                state.running = False
        self._write_status(stopped=True)

    def view(self) -> list[dict[str, Any]]:
        return [state.view() for state in self.duties]

    def _write_status(self, stopped: bool = False) -> None:
        body = {"site": self.site, "updated_at": 0.0 if stopped else time.time()}
        shape = [(s.duty.name, s.running, s.error, s.restarts) for s in self.duties]
        self._status.write(
            json.dumps({**body, "duties": self.view()}, default=str), shape, force=stopped
        )


def agent_status_path(config: ProjectConfig, site: str) -> Path:
    return config.home / "status" / f"agent-{site}.json"


def duty_errors(config: ProjectConfig, site: str) -> dict[str, str]:
    """Duty name → the error of each duty that waits to restart, from the running agent
    of ``site`` (none when no agent wrote its status within STALE_AFTER seconds): a
    link whose duty keeps failing shows why in 'hotsite status', not only in its log."""
    try:
        view = json.loads(agent_status_path(config, site).read_text())
    except (OSError, ValueError):
        return {}
    if time.time() - float(view.get("updated_at") or 0) > STALE_AFTER:
        return {}
    return {
        str(duty["duty"]): f"{duty['error']} (restarted {duty.get('restarts', 0)} times)"
        for duty in view.get("duties", [])
        if duty.get("error") and not duty.get("running")
    }
