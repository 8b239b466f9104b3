"""The project file a deployed site agent runs with: the controller's, cut to what the
agent of one site needs, with every path and address as seen from its node.

- ``sites``: every site whose database is known (given in the file, or the output of
  a blueprint site that is up), as a plain ``database:`` — the node has no state store
  to read blueprint outputs from, and no blueprint to bring anything up with. A site
  whose database is not known yet is left out, with the links that touch it: bringing
  that site up and then this one again (``hotsite up``) redeploys the agent's file.
- ``replication``, ``conflicts``, ``dr``: as in the project, each link's journal at the
  node's default place, the controller's URL written out (how the node reaches it), the
  token in a file beside this one (0600); the entry point's controller-side directory
  dropped.
- TLS: every file a site's ``tls:`` names, and ``control_tls.ca``, under ``DIR/tls`` on
  the node (their contents travel hidden, like the token: agent_service.py); never the
  controller's own certificate key.
- ``project``: the project's name written out, so that the applied positions the agent
  keeps on its database are the same rows a hand-started agent kept.
- Not copied: ``nodes``, ``healing`` and ``bursting`` — they need the controller's state
  store and the nodes' credentials (docs/dr.md#the-deployed-agent).
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from typing import Any

from pydantic import ValidationError

from hotsite.config import ProjectConfig
from hotsite.errors import ConfigError
from hotsite.redaction import redact_urls


def nothing_to_do(config: ProjectConfig, site: str) -> bool:
    """No dr: section and no link ending at the site: its agent would have no duty."""
    return config.dr is None and not config.links_into(site)


def agent_project(
    config: ProjectConfig, site: str, own_database: str, directory: str
) -> dict[str, Any]:
    """The file's content (a mapping for ``yaml.safe_dump``); it holds the database
    passwords the project file holds: it travels as a secret (agent_service.py)."""
    databases = {name: s.database for name, s in config.sites.items() if s.database}
    databases[site] = own_database
    sites: dict[str, dict[str, Any]] = {
        name: {"database": url, "require_tls": bool(config.sites[name].require_tls)}
        for name, url in databases.items()
    }
    for name in sites:
        on_node = {part: node for part, (node, _) in _site_tls(config, name, directory).items()}
        if on_node:
            sites[name]["tls"] = on_node
    links = [
        link.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"journal"})
        for link in config.replication
        if link.source in sites and link.target in sites
    ]
    data: dict[str, Any] = {
        "project": config.project_name,
        "state_dir": f"{directory}/state",
        "require_tls": config.require_tls,
        "sites": sites,
        "replication": links,
    }
    if config.control_tls is not None and config.control_tls.ca:
        # The CA only: the agent verifies the controller; the controller's own key stays
        # on the controller.
        data["control_tls"] = {"ca": _node_tls_path(directory, "control-ca")}
    conflicts = config.conflicts.model_dump(mode="json", exclude_none=True)
    conflicts["site_priority"] = [s for s in conflicts.get("site_priority", []) if s in sites]
    data["conflicts"] = conflicts
    if config.dr is not None:
        data["dr"] = _dr(config, site, sites, directory)
    try:
        ProjectConfig.model_validate(data)
    except ValidationError as exc:  # a mistake of ours, but say what it is
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"the project file for {site}'s agent is invalid at {where}: {first['msg']}"
        ) from None
    return data


def tls_files(config: ProjectConfig, directory: str) -> dict[str, str]:
    """Node path → controller path of each TLS file the agent's project file names:
    every site's database TLS files (the client certificate and key hotsite's user
    presents included) and the CA that signed the controller's certificate."""
    files = {
        node: local
        for name in config.sites
        for node, local in _site_tls(config, name, directory).values()
    }
    if config.control_tls is not None and config.control_tls.ca:
        files[_node_tls_path(directory, "control-ca")] = config.control_tls.ca
    return files


def _site_tls(config: ProjectConfig, name: str, directory: str) -> dict[str, tuple[str, str]]:
    """Part (ca, cert, key) → (node path, controller path) of site ``name``'s TLS files."""
    tls = config.sites[name].tls
    if tls is None:
        return {}
    return {
        part: (_node_tls_path(directory, f"site-{name}-{part}"), getattr(tls, part))
        for part in ("ca", "cert", "key")
        if getattr(tls, part)
    }


def _node_tls_path(directory: str, name: str) -> str:
    return f"{directory}/tls/{name}.pem"


def _dr(config: ProjectConfig, site: str, sites: dict[str, Any], directory: str) -> dict[str, Any]:
    dr = config.dr
    assert dr is not None
    if dr.primary not in sites:
        raise ConfigError(
            f"the agent of {site} needs the database of the primary site {dr.primary!r},"
            " which is not known yet",
            f"bring {dr.primary} up first ('hotsite up {dr.primary}') or give"
            f" sites.{dr.primary}.database",
        )
    section = dr.model_dump(mode="json", exclude_none=True)
    section["controller"] = {
        "listen": dr.controller.listen,
        "url": dr.controller.base_url(config.control_tls is not None),
        "token_file": f"{directory}/token",
    }
    entry = section.get("entry")
    if isinstance(entry, dict):
        entry.pop("directory", None)
        entry["servers"] = {k: v for k, v in entry["servers"].items() if k in sites}
        entry["weights"] = {k: v for k, v in entry.get("weights", {}).items() if k in sites}
        if not entry["servers"]:
            section.pop("entry")
    return section


def controller_unreachable(config: ProjectConfig) -> str | None:
    """Why a node other than this machine cannot reach the controller's URL, or None."""
    if config.dr is None:
        return None
    url = config.dr.controller.base_url(config.control_tls is not None)
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        return None
    return (
        f"the controller's URL {url} is this machine's loopback: a deployed agent on"
        " another node cannot reach it — set dr.controller.listen (or dr.controller.url)"
        " to an address the site's nodes reach"
    )


def shown(text: str) -> str:
    """The file's text as it may be kept in a fingerprint: passwords masked."""
    return redact_urls(text)
