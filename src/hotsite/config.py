"""The project file (``hotsite.yaml``) as validated pydantic models.

Errors name the file, the line, the key and what was expected; every problem of a file
is reported in one run, one line each. Database passwords may be written as
``${ENV_VAR}`` inside the URL (see ``dburl``); they are never shown: every display of a
URL goes through ``DatabaseURL.redacted``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hotsite.config_checks import link_problems
from hotsite.config_conflicts import ConflictsConfig
from hotsite.config_dr import DRSection
from hotsite.config_keep import BurstPolicy, HealingConfig
from hotsite.dburl import SOCKET_AND_TLS, DatabaseURL
from hotsite.errors import ConfigError, ConfigErrors
from hotsite.nodes.config import NodesConfig
from hotsite.site_outputs import recorded_outputs, server_of_url
from hotsite.tablematch import table_matcher
from hotsite.tls import TLSSettings, check_complete, checked_path
from hotsite.topology import Routes
from hotsite.yamlfile import KeyPath, YamlDocument, load_yaml, pydantic_error_messages

__all__ = ["DatabaseURL", "LinkConfig", "ProjectConfig", "SiteConfig", "load", "table_matcher"]
DEFAULT_CONFIG = Path("hotsite.yaml")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TLSConfig(_Model):
    """TLS files (PEM, absolute paths) for connections to a site's database."""

    ca: str | None = Field(
        default=None,
        description="CA certificate(s) that signed the server's; default: the system's trust store",
    )
    cert: str | None = Field(default=None, description="client certificate, if the server asks")
    key: str | None = Field(default=None, description="its private key; default: in the cert file")

    @field_validator("ca", "cert", "key")
    @classmethod
    def _absolute(cls, value: str | None, info: Any) -> str | None:
        return None if value is None else checked_path(value, info.field_name)

    @model_validator(mode="after")
    def _complete(self) -> TLSConfig:
        check_complete(self.settings())
        return self

    def settings(self) -> TLSSettings:
        return TLSSettings(ca=self.ca, cert=self.cert, key=self.key)


class SiteConfig(_Model):
    database: str | None = Field(
        default=None, description="mysql://user:password@host:port/database"
    )
    # Blueprints (docs/blueprints.md): the site's description, its default node
    # provider and the values of the blueprint's inputs for this site.
    blueprint: Path | None = None
    driver: str = "local"
    inputs: dict[str, Any] = Field(default_factory=dict)
    tls: TLSConfig | None = Field(default=None, description="TLS to this site's database")
    require_tls: bool | None = Field(
        default=None,
        description="refuse a plaintext connection to this site's database; default: the"
        " project's require_tls",
    )

    @field_validator("database")
    @classmethod
    def _valid_url(cls, value: str | None) -> str | None:
        if value is not None:
            DatabaseURL.parse(value)  # raises ValueError with a clear message
        return value

    @model_validator(mode="after")
    def _has_a_purpose(self) -> SiteConfig:
        if self.database is None and self.blueprint is None:
            raise ValueError(
                "a site needs a 'database' (mysql://user:password@host:port/db, to replicate"
                " it) or a 'blueprint' (a file, to bring it up); add one of the two"
            )
        if self.database is not None and self.tls is not None:
            url = DatabaseURL.parse(self.database)
            url.tls.merged(self.tls.settings(), "in the URL and under tls:")
            if url.unix_socket:
                raise ValueError(SOCKET_AND_TLS)
        return self

    @property
    def database_url(self) -> DatabaseURL:
        """The URL with the site's TLS settings (``tls:``, ``require_tls``) merged in."""
        if self.database is None:
            raise ConfigError(
                "this site has no database URL",
                "set sites.<site>.database in the project file, or bring its blueprint up"
                " ('hotsite up SITE'): its 'database' output is used",
            )
        url = DatabaseURL.parse(self.database)
        tls = url.tls
        if self.tls is not None:
            tls = tls.merged(self.tls.settings(), "in the URL and under tls:")
        if self.require_tls:
            tls = dataclasses.replace(tls, required=True)
        return dataclasses.replace(url, tls=tls)


class LinkConfig(_Model):
    """One replication link: changes flow from ``source`` to ``target``."""

    source: str = Field(alias="from")
    target: str = Field(alias="to")
    tables: list[str] = Field(
        default_factory=list,
        description="patterns like 'app.*' or 'app.orders'; default: the source URL's database",
    )
    journal: Path | None = Field(default=None, description="journal file at the target site")
    heartbeat_interval: float = Field(default=0.5, ge=0, description="seconds; 0 disables")
    batch_transactions: int = Field(default=2000, ge=1)
    batch_rows: int = Field(default=20000, ge=1)
    decoder: Literal["fast", "library"] = Field(
        default="fast",
        description="binlog decoder: hotsite's own (fast) or python-mysql-replication (library)",
    )
    server_id: int | None = Field(
        default=None,
        ge=1,
        le=2**32 - 1,
        description="the replica server id capture uses on the source; default: derived from"
        " the project and link names",
    )

    @field_validator("tables")
    @classmethod
    def _valid_patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if pattern.count(".") != 1:
                raise ValueError(
                    f"table pattern {pattern!r} must look like 'schema.table' or 'schema.*'"
                )
        return patterns

    @property
    def name(self) -> str:
        return f"{self.source}-to-{self.target}"


class ProjectConfig(_Model):
    project: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="this project's name on shared servers and clouds; default: nodes.project,"
        " else the project file's directory name",
    )
    sites: dict[str, SiteConfig]
    replication: list[LinkConfig] = Field(default_factory=list)
    conflicts: ConflictsConfig = Field(
        default_factory=ConflictsConfig,
        description="how sites that both take writes settle conflicts (docs/conflicts.md)",
    )
    state_dir: Path | None = Field(default=None, description="default: .hotsite next to the file")
    nodes: NodesConfig = Field(default_factory=NodesConfig, description="see docs/nodes.md")
    require_tls: bool = Field(
        default=False,
        description="every site's database over verified TLS, unless the site says otherwise",
    )
    control_tls: TLSConfig | None = Field(
        default=None,
        description="TLS for the controller/agent HTTP channel: the controller serves cert/key,"
        " agents verify it against ca (docs/dr.md)",
    )
    dr: DRSection | None = Field(default=None, description="failover, leases, entry: docs/dr.md")
    healing: HealingConfig = Field(
        default_factory=HealingConfig, description="the agent's healing budgets (docs/config.md)"
    )
    bursting: list[BurstPolicy] = Field(
        default_factory=list, description="burst sites brought up under load (docs/config.md)"
    )

    # Set by load(), not by the file.
    path: Path = Field(default=DEFAULT_CONFIG, exclude=True)

    @model_validator(mode="after")
    def _inherit_require_tls(self) -> ProjectConfig:
        for site in self.sites.values():
            if site.require_tls is None:
                site.require_tls = self.require_tls
        return self

    @property
    def project_name(self) -> str:
        """The project's identity on shared servers: nodes.project, else the file's directory."""
        return self.project or self.nodes.project or self.path.parent.name or "hotsite"

    def link_key(self, link: LinkConfig) -> str:
        """The key of a link's applied position on its target: project + link (+ origin).

        Two projects, or two links, that use the same site names against one target server
        never share a position row.
        """
        return f"{self.project_name}/{link.name}"

    @property
    def routes(self) -> Routes:
        return Routes.of(((link.source, link.target) for link in self.replication), self.one_writer)

    @property
    def one_writer(self) -> bool:
        """A dr: section running active-standby: one site takes writes at a time, so links
        listed in both directions are a failover pair, not two writers (topology.py)."""
        return self.dr is not None and (
            self.dr.entry is None or self.dr.entry.mode != "active-active"
        )

    def links_into(self, site: str) -> list[LinkConfig]:
        return [link for link in self.replication if link.target == site]

    def site_priority(self) -> list[str]:
        return self.conflicts.priority(list(self.sites))

    @property
    def home(self) -> Path:
        return state_home(self.path.parent, self.state_dir)

    def site(self, name: str) -> SiteConfig:
        try:
            return self.sites[name]
        except KeyError:
            known = ", ".join(sorted(self.sites)) or "none"
            raise ConfigError(f"unknown site {name!r}", f"sites in {self.path}: {known}") from None

    def link(self, source: str | None, target: str | None) -> LinkConfig:
        """The replication link between two sites; either end may be left out when unique."""
        matches = [
            link
            for link in self.replication
            if (source is None or link.source == source)
            and (target is None or link.target == target)
        ]
        if len(matches) == 1:
            return matches[0]
        # Only configured links exist: a link made up on the fly from two site names
        # would replicate tables, with a journal and a position, that nobody declared.
        listed = ", ".join(f"{link.source}->{link.target}" for link in self.replication) or "none"
        if not matches:
            raise ConfigError(
                f"no replication link from {source or 'any site'} to {target or 'any site'}",
                f"links in {self.path}: {listed}; pass --from and --to",
            )
        raise ConfigError(
            "several replication links match", f"pass --from and --to (links: {listed})"
        )

    def journal_path(self, link: LinkConfig) -> Path:
        return journal_file(self.path.parent, self.home, link)


def state_home(base_dir: Path, state_dir: Path | None) -> Path:
    base = state_dir or Path(".hotsite")
    return base if base.is_absolute() else (base_dir / base).resolve()


def journal_file(base_dir: Path, home: Path, link: LinkConfig) -> Path:
    if link.journal:
        journal = link.journal if link.journal.is_absolute() else base_dir / link.journal
        return journal.resolve()
    return home / "journal" / f"{link.name}.db"


def load(path: Path | None = None) -> ProjectConfig:
    """Read and validate the project file; ConfigErrors names, for every problem in the
    file, its line, key and what was expected."""
    path = path or DEFAULT_CONFIG
    doc = load_yaml(path, collect=True)
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'sites' key at the top level")
    problems = list(doc.problems)
    # Before validation, so that a blueprint site that is up validates (and is
    # cross-checked) with its addresses; lines still point into the file.
    doc.data = _with_outputs(doc.data, path.resolve().parent)
    config: ProjectConfig | None = None
    try:
        config = ProjectConfig.model_validate(doc.data)
    except ValidationError as exc:
        problems += pydantic_error_messages(doc, exc)
    problems += [
        (doc.line_of(key) or 0, f"{doc.where(key)}: {message}")
        for key, message in _cross_checks(doc, path.resolve().parent)
    ]
    if problems:
        raise ConfigErrors(problems)
    assert config is not None
    config.path = path.resolve()
    return config


def _with_outputs(data: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """The file's data with what blueprint sites that are up expose filled in where the
    file says nothing: a site's ``database`` from its ``database`` output, its entry
    server (``dr.entry.servers``) from its ``url`` output. What the file gives wins."""
    sites = data.get("sites")
    if not isinstance(sites, dict) or not any(
        isinstance(s, dict) and s.get("blueprint") for s in sites.values()
    ):
        return data
    state_dir = data.get("state_dir")
    home = state_home(base_dir, Path(state_dir) if isinstance(state_dir, str) else None)
    outputs = recorded_outputs(home / "state.db")
    filled = {**data, "sites": dict(sites)}
    servers: dict[str, str] = {}
    for name, site in sites.items():
        if not (isinstance(site, dict) and site.get("blueprint") and name in outputs):
            continue
        database, url = outputs[name].get("database"), outputs[name].get("url")
        if site.get("database") is None and isinstance(database, str):
            filled["sites"][name] = {**site, "database": database}
        server = server_of_url(url) if isinstance(url, str) else None
        if server is not None:
            servers[name] = server
    dr = data.get("dr")
    entry = dr.get("entry") if isinstance(dr, dict) else None
    if servers and isinstance(entry, dict) and isinstance(dr, dict):
        given = entry.get("servers") if isinstance(entry.get("servers"), dict) else {}
        filled["dr"] = {**dr, "entry": {**entry, "servers": {**servers, **(given or {})}}}
    return filled


def _cross_checks(doc: YamlDocument, base_dir: Path) -> list[tuple[KeyPath, str]]:
    """Checks across keys, on the parts that are valid by themselves (see config_checks)."""
    data: dict[str, Any] = doc.data
    sites = data.get("sites") if isinstance(data.get("sites"), dict) else {}
    urls: dict[str, DatabaseURL] = {}
    for name, site in (sites or {}).items():
        try:
            url = SiteConfig.model_validate(site).database
            if url is not None:
                urls[name] = DatabaseURL.parse(url)
        except (ValidationError, ValueError):
            pass  # reported by the validation of the whole file
    links: list[tuple[int, LinkConfig]] = []
    raw_links = data.get("replication")
    for index, raw in enumerate(raw_links if isinstance(raw_links, list) else []):
        # Only the keys these checks read: a bad batch size elsewhere in the link must
        # not hide that the link is a duplicate.
        keys = ("from", "to", "journal", "server_id", "heartbeat_interval")
        try:
            if isinstance(raw, dict):
                link = LinkConfig.model_validate({k: raw[k] for k in keys if k in raw})
                links.append((index, link))
        except ValidationError:
            pass
    state_dir = data.get("state_dir")
    home = state_home(base_dir, Path(state_dir) if isinstance(state_dir, str) else None)
    problems = link_problems(
        links, [str(name) for name in sites or {}], urls,
        lambda link: journal_file(base_dir, home, link), doc,
    )  # fmt: skip
    raw_dr = data.get("dr")
    raw_entry = raw_dr.get("entry") if isinstance(raw_dr, dict) else None
    one_writer = isinstance(raw_dr, dict) and not (
        isinstance(raw_entry, dict) and raw_entry.get("mode") == "active-active"
    )
    routes = Routes.of(((link.source, link.target) for _, link in links), one_writer)
    problems += [(("replication",), message) for message in routes.problems()]
    for index, link in links:
        if link.heartbeat_interval == 0 and routes.two_way(link.target):
            problems.append(
                (
                    ("replication", index, "heartbeat_interval"),
                    f"{link.target} writes to other sites too: its links need heartbeats"
                    " (they move its applied position past the transactions it sends back"
                    " nowhere); remove heartbeat_interval: 0",
                )
            )
    raw_conflicts = data.get("conflicts")
    if isinstance(raw_conflicts, dict):
        try:
            conflicts = ConflictsConfig.model_validate(raw_conflicts)
            problems += conflicts.problems([str(n) for n in sites or {}], routes.writers())
        except ValidationError:
            pass  # reported by the validation of the whole file
    problems += burst_problems(data, sites or {})
    for name, parsed in urls.items():
        required = (sites or {})[name].get("require_tls")
        if parsed.unix_socket and (required or (required is None and data.get("require_tls"))):
            problems.append(
                (
                    ("sites", name, "database"),
                    "TLS is required (require_tls), but the database URL uses ?socket= (a local"
                    f" connection; TLS is for TCP); use host and port, or set"
                    f" sites.{name}.require_tls: false",
                )
            )
    return problems


def burst_problems(data: dict[str, Any], sites: dict[str, Any]) -> list[tuple[KeyPath, str]]:
    """Bursting policies name sites that exist; the target has a blueprint and a driver
    of its own (a burst site on the watched site's machines would add nothing)."""
    problems: list[tuple[KeyPath, str]] = []
    raw = data.get("bursting")
    providers = (
        ((data.get("nodes") or {}).get("providers") or {})
        if isinstance(data.get("nodes"), dict)
        else {}
    )
    for index, policy in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(policy, dict):
            continue
        for key in ("site", "target"):
            name = policy.get(key)
            if isinstance(name, str) and name not in sites:
                problems.append(
                    (("bursting", index, key), f"unknown site {name!r} (sites: {', '.join(sites)})")
                )
        name = policy.get("target")
        target = sites.get(name) if isinstance(name, str) else None
        if not isinstance(target, dict):
            continue
        if not target.get("blueprint"):
            problems.append(
                (("bursting", index, "target"), "the burst site has no blueprint to bring it up"
                 f" with; set sites.{policy['target']}.blueprint")
            )  # fmt: skip
        driver = target.get("driver")
        if not driver or (driver != "local" and driver not in providers):
            problems.append(
                (("bursting", index, "target"),
                 f"the burst site {policy['target']!r} has no driver"
                 + (f" ({driver!r} is not under nodes.providers)" if driver else "")
                 + f"; set sites.{policy['target']}.driver to a provider of nodes.providers")
            )  # fmt: skip
    return problems
