"""The project file (``hotsite.yaml``) as validated pydantic models.

Errors name the file, the line, the key and what was expected. Database passwords may
be written as ``${ENV_VAR}`` inside the URL; they are expanded when the URL is parsed
and never shown: every display of a URL goes through ``DatabaseURL.redacted``.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hotsite.errors import ConfigError
from hotsite.nodes.config import NodesConfig
from hotsite.yamlfile import load_yaml, pydantic_error_message

DEFAULT_CONFIG = Path("hotsite.yaml")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class DatabaseURL:
    """Where a site's database is: ``mysql://user:password@host:port/database``."""

    scheme: str
    host: str
    port: int
    user: str
    password: str
    database: str
    unix_socket: str | None = None

    @classmethod
    def parse(cls, url: str) -> DatabaseURL:
        missing = [name for name in _ENV_REF.findall(url) if name not in os.environ]
        if missing:
            raise ValueError(f"environment variable {missing[0]} is not set (used in the URL)")
        expanded = _ENV_REF.sub(lambda m: os.environ[m.group(1)], url)
        parts = urlsplit(expanded)
        if parts.scheme not in ("mysql", "mariadb"):
            raise ValueError(
                "expected a URL like mysql://user:password@host:port/database"
                f" (scheme {parts.scheme or 'missing'!r} is not supported)"
            )
        try:
            port = parts.port or 3306
        except ValueError:
            raise ValueError("the port in the database URL is not a number") from None
        query = parse_qs(parts.query)
        return cls(
            scheme="mysql",
            host=parts.hostname or "127.0.0.1",
            port=port,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=parts.path.lstrip("/"),
            unix_socket=query.get("socket", [None])[0],
        )

    def redacted(self) -> str:
        secret = ":***" if self.password else ""
        return f"mysql://{self.user}{secret}@{self.host}:{self.port}/{self.database}"

    def __repr__(self) -> str:  # never let a password reach a log through repr()
        return f"DatabaseURL({self.redacted()})"

    __str__ = redacted


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SiteConfig(_Model):
    database: str | None = Field(
        default=None, description="mysql://user:password@host:port/database"
    )
    # Blueprints (docs/blueprints.md): the site's description, its default node
    # provider and the values of the blueprint's inputs for this site.
    blueprint: Path | None = None
    driver: str = "local"
    inputs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("database")
    @classmethod
    def _valid_url(cls, value: str | None) -> str | None:
        if value is not None:
            DatabaseURL.parse(value)  # raises ValueError with a clear message
        return value

    @property
    def database_url(self) -> DatabaseURL:
        if self.database is None:
            raise ConfigError(
                "this site has no database URL", "set sites.<site>.database in the project file"
            )
        return DatabaseURL.parse(self.database)


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
    state_dir: Path | None = Field(default=None, description="default: .hotsite next to the file")
    nodes: NodesConfig = Field(default_factory=NodesConfig, description="see docs/nodes.md")

    # Set by load(), not by the file.
    path: Path = Field(default=DEFAULT_CONFIG, exclude=True)

    @model_validator(mode="after")
    def _links_name_known_sites(self) -> ProjectConfig:
        for link in self.replication:
            for site in (link.source, link.target):
                if site not in self.sites:
                    known = ", ".join(sorted(self.sites)) or "none"
                    raise ValueError(
                        f"replication names site {site!r}, which is not under sites (known: {known})"
                    )
            if link.source == link.target:
                raise ValueError(f"replication from {link.source!r} to itself")
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
    def home(self) -> Path:
        base = self.state_dir or Path(".hotsite")
        return base if base.is_absolute() else (self.path.parent / base).resolve()

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
        if source and target and source in self.sites and target in self.sites:
            # An explicit pair of known sites needs no replication entry.
            return LinkConfig.model_validate({"from": source, "to": target})
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
        if link.journal:
            return link.journal if link.journal.is_absolute() else self.path.parent / link.journal
        return self.home / "journal" / f"{link.name}.db"


def load(path: Path | None = None) -> ProjectConfig:
    """Read and validate the project file; ConfigError names the file, line and key."""
    path = path or DEFAULT_CONFIG
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'sites' key at the top level")
    try:
        config = ProjectConfig.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(pydantic_error_message(doc, exc)) from None
    config.path = path.resolve()
    return config


def table_matcher(patterns: list[str], default_schema: str) -> Any:
    """A predicate (schema, table) -> bool for a link's table patterns."""
    compiled = [p.lower() for p in patterns] or [f"{default_schema.lower()}.*"]

    def matches(schema: str, table: str) -> bool:
        name = f"{schema}.{table}".lower()
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in compiled)

    return matches
