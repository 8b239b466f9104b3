"""Which keep duties a site's agent runs: healing where the site has a blueprint (and
healing is on), bursting for every policy that watches the site."""

from __future__ import annotations

from hotsite.config import ProjectConfig
from hotsite.duty import Duty
from hotsite.keep.burst import BurstDuty
from hotsite.keep.heal import HealDuty


def keep_duties(config: ProjectConfig, site: str) -> list[Duty]:
    duties: list[Duty] = []
    if config.site(site).blueprint is not None and config.healing.enabled:
        duties.append(HealDuty(config, site))
    duties += [BurstDuty(config, policy) for policy in config.bursting if policy.site == site]
    return duties
