"""Which duties a site's agent runs, from the project file.

Every replication link that ends at the site; and with a ``dr:`` section, the fence
duty (a fence recorded on the site's database is enforced again at start and whenever
the server comes back writable) and the lease keeper (the primary's lease; a standby
kept read-only), both from the dr layer; healing and bursting (keep.duties).
"""

from __future__ import annotations

from hotsite.agent.links import LinkDuty
from hotsite.config import ProjectConfig
from hotsite.db import connect
from hotsite.dr import FenceDuty, LeaseKeeper, controller_client, dr_section, site_fence
from hotsite.duty import Duty
from hotsite.keep import keep_duties


def site_duties(config: ProjectConfig, site: str) -> list[Duty]:
    duties: list[Duty] = [LinkDuty(config, link) for link in config.links_into(site)]
    # A site without a database (a burst site, a stateless one) has nothing to fence.
    if config.dr is not None and config.site(site).database is not None:
        dr = dr_section(config)
        url = config.site(site).database_url
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
    return duties + keep_duties(config, site)
