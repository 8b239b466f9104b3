"""The ``dr:`` section of the project file: who is primary, the controller, the lease,
failure detection and the global entry point (docs/dr.md).

At the config layer, beside config.py, because the dr package (which uses it) sits
above config and config must not import from above. ``ProjectConfig.dr`` is
``DRSection``: a ``DRConfig`` checked against the project's site names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

DEFAULT_TOKEN_ENV = "HOTSITE_CONTROL_TOKEN"


def parse_address(value: str, what: str) -> tuple[str, int]:
    """'host:port' (an IPv6 host in brackets) → (host, port); ValueError otherwise."""
    host, sep, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{what} {value!r} must look like host:port (e.g. 127.0.0.1:8080)")
    return host, int(port)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DetectionConfig(_Model):
    interval: float = Field(
        default=0.25, gt=0, le=60, description="seconds between probes and lease renewals"
    )
    dead_after: float = Field(
        default=1.5,
        gt=0,
        description="seconds a site stays unreachable (from the controller and the other"
        " site's agent) before it is declared dead",
    )

    @model_validator(mode="after")
    def _several_probes(self) -> DetectionConfig:
        if self.dead_after < 2 * self.interval:
            raise ValueError(
                f"dead_after ({self.dead_after:g} s) is shorter than two probes"
                f" (2 × interval = {2 * self.interval:g} s): one lost probe would declare a"
                " site dead; raise dead_after or lower interval"
            )
        return self

    @property
    def probe_timeout(self) -> float:
        """How long one probe of a site's database may take: a third of dead_after, so
        that a hung probe still leaves room for two more before the verdict."""
        return max(0.2, self.dead_after / 3)


class ControllerConfig(_Model):
    listen: str = Field(
        default="127.0.0.1:7400", description="host:port the controller's HTTP server binds"
    )
    url: str | None = Field(
        default=None,
        description="how agents reach the controller; default: http(s)://<listen>",
    )
    token_file: Path | None = Field(
        default=None,
        description="a file (mode 0600) holding the project token; default: the"
        f" {DEFAULT_TOKEN_ENV} environment variable",
    )

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        parse_address(value, "the controller's listen address")
        return value

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"the controller url {value!r} must start with http:// or https://")
        return None if value is None else value.rstrip("/")

    @field_validator("token_file")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        if value is not None:
            value = Path(os.path.expanduser(value))
            if not value.is_absolute():
                raise ValueError(f"token_file {str(value)!r} must be an absolute path")
        return value

    def base_url(self, tls: bool) -> str:
        if self.url:
            return self.url
        host, port = parse_address(self.listen, "listen")
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if tls else 'http'}://{host}:{port}"


class EntryConfig(_Model):
    listen: str = Field(default="127.0.0.1:8080", description="host:port users connect to")
    mode: Literal["active-standby", "active-active"] = "active-standby"
    servers: dict[str, str] = Field(
        description="site name → host:port of that site's load balancer (or web node)"
    )
    weights: dict[str, int] = Field(
        default_factory=dict,
        description="active-active: site → weight 0..256 (default 100 each)",
    )
    health_path: str | None = Field(
        default="/health", description="HTTP health check path; null: TCP checks only"
    )
    directory: Path | None = Field(
        default=None, description="where its configuration, socket and pid live;"
        " default: <state_dir>/entry",
    )  # fmt: skip
    retry_interval: float = Field(
        default=0.2,
        ge=0.02,
        le=1.0,
        description="seconds between the entry point's attempts to connect a held request"
        " (HAProxy's timeout connect): must exceed the round trip to the farthest site",
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_address(value, "the entry point's listen address")
        return value

    @field_validator("servers")
    @classmethod
    def _servers(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("the entry point needs at least one server (site: host:port)")
        for site, address in value.items():
            parse_address(address, f"the entry server of site {site!r}")
        return value

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[str, int]) -> dict[str, int]:
        for site, weight in value.items():
            if not 0 <= weight <= 256:
                raise ValueError(f"the weight of site {site!r} ({weight}) must be 0..256")
        return value

    @model_validator(mode="after")
    def _weights_of_servers(self) -> EntryConfig:
        unknown = sorted(set(self.weights) - set(self.servers))
        if unknown:
            raise ValueError(
                f"weights name sites that are not entry servers: {', '.join(unknown)};"
                " add them under servers or remove their weights"
            )
        return self

    def weight(self, site: str) -> int:
        return self.weights.get(site, 100)


class DRConfig(_Model):
    primary: str = Field(description="the site that is primary when the record is first made")
    controller: ControllerConfig = Field(default_factory=ControllerConfig)
    lease: float = Field(
        default=2.0, gt=0, le=600, description="seconds the primary may write without renewing"
    )
    clock_margin: float = Field(
        default=0.5,
        ge=0,
        description="seconds added after a lease's end before another site is promoted"
        " (clocks that run at different rates)",
    )
    detection: DetectionConfig = Field(default_factory=DetectionConfig)
    auto_failover: bool = False
    entry: EntryConfig | None = None

    @model_validator(mode="after")
    def _lease_outlives_renewals(self) -> DRConfig:
        if self.lease < 4 * self.detection.interval:
            raise ValueError(
                f"the lease ({self.lease:g} s) is shorter than 4 × detection.interval"
                f" ({4 * self.detection.interval:g} s): the primary's agent renews once per"
                " interval and must survive a missed renewal and still fence itself before"
                " the lease ends; raise dr.lease or lower dr.detection.interval"
            )
        return self

    @property
    def fence_before(self) -> float:
        """Seconds before its lease ends that an agent that could not renew fences itself:
        time for the fence to complete while the lease still holds, on a busy server too."""
        return max(self.lease / 3, 2 * self.detection.interval)


def _against_sites(dr: DRConfig, info: ValidationInfo) -> DRConfig:
    sites: dict[str, Any] | None = info.data.get("sites")
    if sites is None:  # the sites are invalid themselves: reported there
        return dr
    known = ", ".join(sorted(sites)) or "none"
    problems = []
    if dr.primary not in sites:
        problems.append(f"primary {dr.primary!r} is not a site (sites: {known})")
    if dr.entry is not None:
        unknown = sorted(set(dr.entry.servers) - set(sites))
        if unknown:
            problems.append(
                f"entry.servers name unknown sites {', '.join(unknown)} (sites: {known})"
            )
        elif dr.primary in sites and dr.primary not in dr.entry.servers:
            problems.append(f"entry.servers has no server for the primary site {dr.primary!r}")
    if problems:
        raise ValueError("; ".join(problems))
    return dr


DRSection = Annotated[DRConfig, AfterValidator(_against_sites)]
