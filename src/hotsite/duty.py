"""What a site agent runs: duties (a replication link, the primary lease, health, healing).

The agent starts each duty, polls it about four times a second and restarts one whose
poll fails, with backoff; adding a duty to the agent needs no change to the agent.
"""

from __future__ import annotations

from typing import Any, Protocol


class Duty(Protocol):
    name: str  # e.g. "lease", "link primary-to-dr"

    def start(self) -> None:
        """Get ready and start; may raise HotsiteError (the agent retries with backoff)."""

    def poll(self) -> dict[str, Any]:
        """Status for 'hotsite status'; raise HotsiteError when the duty has failed."""

    def stop(self) -> None:
        """Stop cleanly; called once after start, also after a failed poll."""
