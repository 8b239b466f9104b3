"""What healing reports to ``hotsite status``: the services it gave up on."""

from __future__ import annotations

from hotsite.config import ProjectConfig
from hotsite.keep import failed_services
from hotsite.nodes import open_store


def healing_failures(config: ProjectConfig) -> list[str]:
    """One line per service healing gave up on, at every site with a blueprint."""
    if not (config.home / "state.db").exists():
        return []
    store = open_store(config.home)
    lines = []
    for site, site_config in config.sites.items():
        if site_config.blueprint is None:
            continue
        for service, reason in failed_services(store, site).items():
            lines.append(
                f"FAILED: {service} at {site} — healing gave up ({reason});"
                f" fix the cause, then 'hotsite up {site}'"
            )
    return lines
