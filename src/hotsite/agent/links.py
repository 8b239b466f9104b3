"""A replication link as a duty of its target site's agent."""

from __future__ import annotations

from typing import Any

from hotsite.config import LinkConfig, ProjectConfig
from hotsite.logs import get_logger
from hotsite.replication.agent import LinkAgent, link_lock

log = get_logger(__name__)


class LinkDuty:
    """Check, start (from the reverse load, a snapshot or the journal), stream."""

    def __init__(self, config: ProjectConfig, link: LinkConfig) -> None:
        self.config = config
        self.link = link
        self.name = f"link {link.source}->{link.target}"
        self.agent: LinkAgent | None = None
        self._lock: Any = None

    def start(self) -> None:
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
        assert self.agent is not None
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
