"""The entry point as the project file and the record describe it: which sites take
traffic follows from the record (its primary; in active-active every site with a
weight), never from the configuration alone."""

from __future__ import annotations

from hotsite.config import ProjectConfig
from hotsite.config_dr import parse_address
from hotsite.dr.project import dr_section
from hotsite.dr.record import Record
from hotsite.errors import ConfigError
from hotsite.traffic.entry import EntryControl, EntryPoint, EntryServer


def entry_point(config: ProjectConfig) -> EntryPoint:
    dr = dr_section(config)
    if dr.entry is None:
        raise ConfigError(
            f"{config.path} has no dr.entry section",
            "add dr.entry with listen and servers (site: host:port); see docs/dr.md",
        )
    host, port = parse_address(dr.entry.listen, "dr.entry.listen")
    servers = []
    for site, address in dr.entry.servers.items():
        server_host, server_port = parse_address(address, f"dr.entry.servers.{site}")
        servers.append(EntryServer(site, server_host, server_port, dr.entry.weight(site)))
    directory = dr.entry.directory or config.home / "entry"
    if not directory.is_absolute():
        directory = (config.path.parent / directory).resolve()
    return EntryPoint(
        directory, host, port, tuple(servers), dr.entry.mode, dr.entry.health_path,
        retry_interval=dr.entry.retry_interval,
    )  # fmt: skip


def taking_traffic(
    entry: EntryPoint, record: Record, fenced: frozenset[str] = frozenset()
) -> set[str]:
    """Active-standby: the primary alone. Active-active: every site with a weight, but
    never a fenced one; the primary always (its weight may be set to 0 to hold it)."""
    if entry.mode == "active-standby":
        return {record.primary}
    return {
        s.site
        for s in entry.servers
        if s.site == record.primary or (s.weight and s.site not in fenced)
    }


def entry_control(config: ProjectConfig) -> EntryControl:
    return EntryControl(entry_point(config))
