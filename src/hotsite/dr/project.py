"""What the dr commands take from the project file: the dr section, the record store,
the controller's client, a site's fence."""

from __future__ import annotations

from hotsite.config import LinkConfig, ProjectConfig
from hotsite.config_dr import DRConfig, parse_address
from hotsite.db import connect
from hotsite.dr.client import ControllerClient
from hotsite.dr.fence import SiteFence
from hotsite.dr.record_sqlite import SqliteRecordStore
from hotsite.dr.standby import LinkGate
from hotsite.dr.token import Token, load_token
from hotsite.errors import ConfigError
from hotsite.locks import FileLock
from hotsite.state import StateStore
from hotsite.statefiles import require_writable_dir
from hotsite.tls import TLSSettings


def dr_section(config: ProjectConfig) -> DRConfig:
    if config.dr is None:
        raise ConfigError(
            f"{config.path} has no dr: section",
            "add one naming the primary site (dr: {primary: SITE}); see docs/dr.md",
        )
    return config.dr


def open_records(config: ProjectConfig) -> SqliteRecordStore:
    require_writable_dir(config.home)
    return SqliteRecordStore(StateStore(config.home / "state.db"))


def control_tls(config: ProjectConfig) -> TLSSettings | None:
    return None if config.control_tls is None else config.control_tls.settings()


def controller_url(config: ProjectConfig) -> str:
    tls = control_tls(config)
    return dr_section(config).controller.base_url(tls is not None and tls.cert is not None)


def controller_listen(config: ProjectConfig) -> tuple[str, int]:
    return parse_address(dr_section(config).controller.listen, "dr.controller.listen")


def controller_client(
    config: ProjectConfig, token: Token | None = None, timeout: float | None = None
) -> ControllerClient:
    dr = dr_section(config)
    return ControllerClient(
        controller_url(config),
        token or load_token(dr),
        control_tls(config),
        timeout=timeout or max(dr.detection.interval * 2, 0.5),
    )


def site_fence(config: ProjectConfig, site: str) -> SiteFence:
    url = config.site(site).database_url
    return SiteFence(lambda: connect(url, site, timeout=2.0))


def link_gate(config: ProjectConfig, link: LinkConfig, client: ControllerClient) -> LinkGate:
    """When the site agent runs ``link`` (active-standby: dr.standby)."""
    url = config.site(link.target).database_url
    return LinkGate(
        link.source, link.target, config.link_key(link), config.routes, client.record,
        lambda: connect(url, link.target, timeout=2.0),
    )  # fmt: skip


def move_lock(config: ProjectConfig) -> FileLock:
    """Held by whoever runs a move (a command, the controller): a move in flight whose
    lock is free was left by a process that died, and is resumed."""
    return FileLock(config.home / "locks" / "move.lock", "the move in flight")
