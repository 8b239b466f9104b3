"""The project file's ``healing:`` and ``bursting:`` sections (docs/config.md): the
budgets of the healing ladder, and the policies that bring a burst site up under load.

At the config layer, beside config.py, for the same reason as config_dr.py: the keep
package that uses them sits above config.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# What HAProxy's runtime API (``show stat``) gives per proxy, by the names policies use.
METRICS: dict[str, str] = {
    "req_rate": "req_rate",  # HTTP requests per second (the frontend's, over the last second)
    "sessions": "scur",  # current sessions
    "queue": "qcur",  # requests waiting for a server
    "response_time": "rtime",  # average response time of the last 1024 requests, ms
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class HealingConfig(_Model):
    """The healing ladder: restart the service, then replace the node, then give up."""

    enabled: bool = Field(default=True, description="false: the agent does not heal")
    interval: float = Field(default=0.5, gt=0, le=60, description="seconds between probes")
    failures: int = Field(default=2, description="failed checks in a row before a restart")
    restarts: int = Field(
        default=3, description="restarts of a service on one node within `window` before"
        " the node is replaced"
    )  # fmt: skip
    window: float = Field(default=600, gt=0, description="seconds the restarts are counted over")
    replacements: int = Field(
        default=2, description="nodes replaced per service and hour before healing gives up"
    )
    unreachable_after: int = Field(
        default=3, description="probes in a row a node does not answer SSH before it is replaced"
    )
    probe_timeout: float = Field(default=5, gt=0, le=120, description="seconds per probe")

    @field_validator("failures", "restarts", "replacements", "unreachable_after")
    @classmethod
    def _a_budget(cls, value: int, info: object) -> int:
        if value < 1:
            name = getattr(info, "field_name", "budget")
            raise ValueError(
                f"{name} must be at least 1 (got {value}): a budget of 0 would mean healing"
                " that never acts; to turn healing off set healing.enabled: false"
            )
        return value


class MetricConfig(_Model):
    source: Literal["entry", "lb"] = Field(
        default="entry", description="the entry point's HAProxy, or the site's load balancer"
    )
    name: str = Field(description=f"one of {', '.join(METRICS)}")

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in METRICS:
            raise ValueError(f"unknown metric {value!r}; use one of {', '.join(METRICS)}")
        return value


class Threshold(_Model):
    above: float | None = None
    below: float | None = None
    seconds: float = Field(default=10, gt=0, alias="for", description="held this long")


class BurstPolicy(_Model):
    """Under load at ``site``, bring ``target`` (a second site from the same blueprint,
    on another provider) up and give it a share of the entry point's traffic."""

    site: str = Field(description="the site whose load is watched")
    target: str = Field(description="the burst site (sites.<target> with a blueprint)")
    metric: MetricConfig
    up: Threshold = Field(description="{above: N, for: seconds}")
    down: Threshold = Field(description="{below: N, for: seconds}")
    weight: int = Field(default=100, ge=1, le=256, description="its entry point weight")
    output: str = Field(
        default="url", description="the burst site's output holding its load balancer's URL"
    )
    cooldown: float = Field(default=60, ge=0, description="seconds between two decisions")
    max_seconds: float | None = Field(
        default=None, gt=0, description="limit: tear the burst site down after this long"
    )
    interval: float = Field(default=1.0, gt=0, le=60, description="seconds between readings")

    @model_validator(mode="after")
    def _directions(self) -> BurstPolicy:
        if self.up.above is None or self.down.below is None:
            raise ValueError("give up: {above: N, for: S} and down: {below: N, for: S}")
        if self.down.below >= self.up.above:
            raise ValueError(
                f"down.below ({self.down.below:g}) must be under up.above ({self.up.above:g}),"
                " or the burst site would flap up and down"
            )
        if self.target == self.site:
            raise ValueError("the burst target must be another site than the one watched")
        return self
