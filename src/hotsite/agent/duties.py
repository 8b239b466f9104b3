"""Which duties a site's agent runs, from the project file.

Every replication link that ends at the site (under an active-standby ``dr:``, each
while its source is the record's primary: dr.standby); and with a ``dr:`` section, the fence
duty (a fence recorded on the site's database is enforced again at start and whenever
the server comes back writable), the lease keeper (the primary's lease; a standby
kept read-only) and the health report (which other sites' databases this site
reaches, the controller's second witness of a failure), all from the dr layer; then
healing and bursting (keep.duties).
"""

from __future__ import annotations

from hotsite.agent.links import LinkDuty
from hotsite.config import ProjectConfig
from hotsite.db import connect
from hotsite.dr import (
    FenceDuty,
    LeaseKeeper,
    PeerReporter,
    ProjectSites,
    controller_client,
    dr_section,
    link_gate,
    site_fence,
)
from hotsite.duty import Duty
from hotsite.keep import keep_duties
from hotsite.replication.positions import shipped_position


def site_duties(config: ProjectConfig, site: str) -> list[Duty]:
    """The dr duties first: the agent starts its duties in order, and a link's start (a
    snapshot, a source that does not answer) can take long; the fence must be enforced,
    the lease held and the health reported meanwhile (those two in threads of their
    own, so only their start waits on the agent's loop)."""
    duties: list[Duty] = []
    # A site without a database (a burst site, a stateless one) has nothing to fence.
    if config.dr is not None and config.site(site).database is not None:
        url = config.site(site).database_url
        dr = dr_section(config)
        duties.append(FenceDuty(site, lambda: connect(url, site, timeout=2.0)))
        duties.append(
            LeaseKeeper(
                site,
                controller_client(config),
                site_fence(config, site),
                interval=dr.detection.interval,
                fence_before=dr.fence_before,
            )
        )
        if len(config.sites) > 1:
            probe = ProjectSites(config, timeout=dr.detection.probe_timeout)
            duties.append(
                PeerReporter(
                    site,
                    sorted(config.sites),
                    probe.reachable,
                    controller_client(config),
                    interval=dr.detection.interval,
                    shipped=lambda: shipped_positions(config, site),
                )
            )
    # Active-standby: a link runs while it carries the record's primary's writes into a
    # consistent standby (dr.standby); active-active and no dr: every link, always.
    client = controller_client(config) if config.one_writer else None
    links: list[Duty] = [
        LinkDuty(config, link, None if client is None else link_gate(config, link, client))
        for link in config.links_into(site)
    ]
    return duties + links + keep_duties(config, site)


def shipped_positions(config: ProjectConfig, site: str) -> dict[str, str]:
    """How far this site's journal of each link into it reaches, by source site (the
    health report carries it to the controller: LinkPositions.shipped)."""
    found: dict[str, str] = {}
    for link in config.links_into(site):
        position = shipped_position(config, link)
        if position is not None:
            found[link.source] = str(position)
    return found
