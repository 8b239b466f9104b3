"""A link's positions, for the moves of the dr layer: where the source is, what reached
the journal at the target site, what the target has applied. Read-only, each read on a
connection of its own (a move polls them while a site may be dying)."""

from __future__ import annotations

from hotsite.config import LinkConfig, ProjectConfig
from hotsite.replication.gtid import GtidState
from hotsite.replication.status import _applied_position, _shipped_position, _source_position

__all__ = ["GtidState", "applied_position", "shipped_position", "source_position"]


def source_position(config: ProjectConfig, site: str) -> GtidState:
    """The site's own binlog position (``gtid_binlog_pos``): what it has committed."""
    return _source_position(config.site(site).database_url, site)


def shipped_position(config: ProjectConfig, link: LinkConfig) -> GtidState | None:
    """How far the journal at the link's target reaches; None without a journal."""
    return _shipped_position(config.journal_path(link))


def applied_position(config: ProjectConfig, link: LinkConfig) -> GtidState | None:
    """What the target has applied of the link; None without a position (or while a
    snapshot loads it)."""
    position, loading = _applied_position(
        config.site(link.target).database_url, link.target, config.link_key(link)
    )
    return None if position is None or loading else position.gtid_state
