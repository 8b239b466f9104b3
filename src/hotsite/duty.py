"""A duty: one job the site agent runs (a replication link, the primary lease, fencing).

The agent calls ``poll`` about four times a second and shows what it returns in
``hotsite status``; a duty whose ``start`` or ``poll`` raises ``HotsiteError`` is stopped
and started again with a backoff. It lives at the lowest layer so that every package
that offers a duty (replication, dr) and the agent that runs them can import it without
importing each other.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Duty(Protocol):
    name: str  # e.g. "lease", "fence", "link primary-to-dr"

    def start(self) -> None:
        """Begin the work (may raise HotsiteError; the agent retries with a backoff)."""

    def poll(self) -> dict[str, Any]:
        """Status for 'hotsite status'; raise HotsiteError when the duty has failed."""

    def stop(self) -> None:
        """Stop and release what ``start`` took; safe to call twice."""
