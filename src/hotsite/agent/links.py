"""A replication link as a duty of its target site's agent.

With a gate (an active-standby ``dr:``, ``dr.standby.LinkGate``) the duty runs the link
only while the gate says so: while the link's source is the record's primary and its
target a consistent standby of it. It checks again every GATE_EVERY seconds, starting
or stopping the link; while the gate cannot be read (the controller away), a running
link goes on (it carries the primary's writes) and a stopped one stays stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hotsite.config import LinkConfig, ProjectConfig
from hotsite.logs import get_logger
from hotsite.replication.agent import LinkAgent, link_lock

log = get_logger(__name__)


GATE_EVERY = 1.0  # seconds between two looks at the gate
Gate = Callable[[], tuple[bool | None, str]]


class LinkDuty:
    """Check, start (from the reverse load, a snapshot or the journal), stream."""

    def __init__(self, config: ProjectConfig, link: LinkConfig, gate: Gate | None = None) -> None:
        self.config = config
        self.link = link
        self.name = f"link {link.source}->{link.target}"
        self.agent: LinkAgent | None = None
        self._lock: Any = None
        self.gate = gate
        self.waiting = ""  # why the gate keeps the link stopped
        self._gate_at = 0.0

    def start(self) -> None:
        if self._gate_open():
            self._start_link()

    def _gate_open(self) -> bool:
        """Look at the gate (at most every GATE_EVERY s); whether the link should run."""
        if self.gate is None:
            return True
        if time.monotonic() - self._gate_at < GATE_EVERY:
            return self.agent is not None
        self._gate_at = time.monotonic()
        decision, why = self.gate()
        if decision is None:  # unknown: keep what runs running, and what waits waiting
            self.waiting = "" if self.agent is not None else why
            return self.agent is not None
        if decision != (self.agent is not None):
            log.info("link gate", link=self.link.name, run=decision, why=why)
        self.waiting = why if not decision else ""
        return decision

    def _start_link(self) -> None:
        lock = link_lock(self.config, self.link)
        lock.__enter__()
        self._lock = lock
        agent = LinkAgent(self.config, self.link)
        self.agent = agent
        for warning in agent.check():
            log.warning("replication", link=self.link.name, message=warning)
        if agent.needs_snapshot() and agent.seed_from_reverse() is None:
            # A target that takes writes itself and holds rows is refused here (it would
            # be overwritten): then it waits, retried, until the link the other way has
            # loaded this link's source from it and this link can start from that load.
            agent.snapshot()
        agent.align_journal()
        agent.start()

    def poll(self) -> dict[str, Any]:
        run = self._gate_open()
        if run and self.agent is None:
            self._start_link()
        elif not run and self.agent is not None:
            self.stop()
        if self.agent is None:
            return {"link": self.link.name, "waiting": self.waiting}
        return dict(self.agent.poll().__dict__)

    def stop(self) -> None:
        try:
            if self.agent is not None:
                self.agent.stop()
                self.agent.close()
        finally:
            self.agent = None
            if self._lock is not None:
                self._lock.__exit__(None, None, None)
                self._lock = None
