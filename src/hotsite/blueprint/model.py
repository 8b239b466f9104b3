"""The blueprint file as validated pydantic models.

A blueprint describes one site: node groups, services on them (lifecycle steps,
uploads, environment, dependencies, a health check), a built-in HAProxy load balancer,
inputs, secrets and outputs. Per-site overrides (``sites: {dr: {...}}``) are merged into
the document *before* validation, so an override is checked like the rest and an error
still names the file and line it came from.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hotsite.errors import ConfigError
from hotsite.shellsafe import SHELL_NAME
from hotsite.traffic.haproxy import DEFAULT_DIR as HAPROXY_DIR
from hotsite.yamlfile import YamlDocument, load_yaml, pydantic_error_message

AGENT_DIR = "/opt/hotsite-agent"  # on the agent's node

# The order `up` runs a service's steps in; `down` runs stop then uninstall.
UP_STEPS = ("upload", "install", "configure", "start")
DOWN_STEPS = ("stop", "uninstall")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Step(_Model):
    """A lifecycle step: an inline shell snippet, or a script file next to the blueprint."""

    run: str | None = None
    script: Path | None = None
    timeout: float = Field(default=600, gt=0, description="seconds")

    @model_validator(mode="after")
    def _one_of(self) -> Step:
        if (self.run is None) == (self.script is None):
            raise ValueError("give exactly one of 'run' (inline commands) or 'script' (a file)")
        return self


class Upload(_Model):
    src: Path = Field(description="file or directory, relative to the blueprint")
    dest: str = Field(description="absolute path on the node")


class InlineFile(_Model):
    """A file written on the node from rendered text (configuration templates)."""

    dest: str
    content: str
    mode: str = "0644"


class Check(_Model):
    """How to tell the service is up: exactly one of command, tcp or http."""

    command: str | None = None
    tcp: int | str | None = Field(default=None, description="a port on the node")
    http: str | None = Field(default=None, description="URL, fetched from the node itself")
    status: int = 200
    timeout: float = Field(default=60, gt=0, description="seconds to wait for success")
    interval: float = Field(default=0.5, gt=0)

    @model_validator(mode="after")
    def _one_kind(self) -> Check:
        given = [k for k in ("command", "tcp", "http") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a check needs exactly one of 'command', 'tcp' or 'http'")
        return self


class HAProxy(_Model):
    """The built-in load balancer: a frontend port, backends = the nodes of a service."""

    port: int | str = Field(description="frontend port")
    backends: str = Field(description="name of the service whose nodes serve the traffic")
    backend_port: int | str
    health: str | None = Field(default="/health", description="HTTP path checked; null = TCP")
    dir: str = Field(
        default=HAPROXY_DIR, description="config, pid, socket and log, on the node; removed by down"
    )
    admin_port: int | str | None = Field(default=None, description="stats page, if any")


class Agent(_Model):
    """The built-in site agent (``hotsite agent --site SITE``), installed on the node from
    a wheelhouse the controller builds and uploads (docs/blueprints.md#the-site-agent)."""

    dir: str = Field(
        default=AGENT_DIR,
        description="venv, wheels, project file, token, state and log, on the node;"
        " removed by down",
    )
    python: str = Field(
        default="python3",
        description="the node's Python: the same major.minor as the controller's",
    )


class Service(_Model):
    group: str = Field(description="the node group the service runs on")
    depends_on: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    uploads: list[Upload] = Field(default_factory=list)
    files: list[InlineFile] = Field(default_factory=list)
    install: Step | None = None
    configure: Step | None = None
    start: Step | None = None
    reload: Step | None = Field(default=None, description="run instead of stop+start on change")
    stop: Step | None = None
    uninstall: Step | None = None
    check: Check | None = None
    haproxy: HAProxy | None = None
    agent: Agent | None = None

    @model_validator(mode="after")
    def _agent_alone(self) -> Service:
        # The agent's steps are hotsite's own: mixing in others would run them in its
        # directory, on its schedule; a service of their own says what they are.
        if self.agent is not None:
            given = [
                s for s in (*UP_STEPS, "reload", *DOWN_STEPS) if s != "upload" and self.step(s)
            ]
            given += ["haproxy"] if self.haproxy else []
            given += ["uploads"] if self.uploads else []
            given += ["files"] if self.files else []
            given += ["check"] if self.check else []
            if given:
                raise ValueError(
                    f"the built-in agent service takes no {', '.join(given)}: put those in a"
                    " service of their own (depends_on: [agent] if they need it)"
                )
        return self

    @field_validator("env")
    @classmethod
    def _shell_names(cls, env: dict[str, str]) -> dict[str, str]:
        # Each key becomes `export KEY=...` in a shell: only a variable name may be one.
        for key in env:
            if not SHELL_NAME.match(key):
                raise ValueError(
                    f"{key!r} is not a shell variable name (letters, digits and _,"
                    " not starting with a digit)"
                )
        return env

    @field_validator("install", "configure", "start", "reload", "stop", "uninstall", mode="before")
    @classmethod
    def _inline_string(cls, value: Any) -> Any:
        # `start: "systemctl start x"` is the common case; spell it short.
        return {"run": value} if isinstance(value, str) else value

    def step(self, name: str) -> Step | None:
        value = getattr(self, name, None)
        return value if isinstance(value, Step) else None


class NodeGroup(_Model):
    count: int | str = Field(default=1, description="a number, or a template like {{ inputs.n }}")
    driver: str | None = Field(default=None, description="default: the site's driver")
    size: str | None = None
    image: str | None = None
    location: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    # Bounds for `hotsite scale`, healing and bursting (docs/blueprints.md#scaling).
    min: int = Field(default=0, ge=0, le=500, description="fewest nodes scale may leave")
    max: int = Field(default=500, ge=0, le=500, description="most nodes scale may make")
    # A stateful group (the database) is never replaced by healing: losing its node is a
    # failover, which needs fencing first (docs/dr.md), not a new empty machine.
    stateful: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> NodeGroup:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class Input(_Model):
    default: str | int | float | bool | None = None
    description: str = ""


class Secret(_Model):
    env: str = Field(description="environment variable read on the controller")
    description: str = ""


class Blueprint(_Model):
    name: str = "site"
    description: str = ""
    inputs: dict[str, Input] = Field(default_factory=dict)
    secrets: dict[str, Secret] = Field(default_factory=dict)
    nodes: dict[str, NodeGroup]
    services: dict[str, Service] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict)
    sites: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-site overrides, merged before validation"
    )

    # Set by load_blueprint(): where relative script and upload paths start, and the
    # parsed document, so render errors can name a line too.
    base_dir: Path = Field(default=Path("."), exclude=True)
    source: Any = Field(default=None, exclude=True)

    def where(self, *key_path: str | int) -> str:
        if self.source is None:
            return ".".join(str(k) for k in key_path)
        return str(self.source.where(key_path))

    @field_validator("inputs", mode="before")
    @classmethod
    def _short_inputs(cls, value: Any) -> Any:
        # `inputs: {port: 8080}` means a default of 8080.
        if isinstance(value, dict):
            return {
                k: v if isinstance(v, dict) or v is None else {"default": v}
                for k, v in value.items()
            }
        return value


def _check_references(blueprint: Blueprint, doc: YamlDocument) -> None:
    """Names that must point at something, reported at the line that names them."""
    for section in ("nodes", "services"):
        for name in getattr(blueprint, section):
            if not _NAME.match(name):
                raise ConfigError(
                    f"{doc.where((section, name))}: use lower-case letters, digits, '-' or '_'"
                    " (at most 40)"
                )
    agents = [name for name, service in blueprint.services.items() if service.agent]
    if len(agents) > 1:
        raise ConfigError(
            f"{doc.where(('services', agents[1], 'agent'))}: a site has one agent, and"
            f" {agents[0]!r} is it already"
        )
    for name, service in blueprint.services.items():
        if service.group not in blueprint.nodes:
            raise ConfigError(
                f"{doc.where(('services', name, 'group'))}: no node group {service.group!r}"
                f" (groups: {', '.join(sorted(blueprint.nodes))})"
            )
        for index, dep in enumerate(service.depends_on):
            if dep not in blueprint.services:
                raise ConfigError(
                    f"{doc.where(('services', name, 'depends_on', index))}:"
                    f" depends on unknown service {dep!r}"
                )
        if service.haproxy and service.haproxy.backends not in blueprint.services:
            raise ConfigError(
                f"{doc.where(('services', name, 'haproxy', 'backends'))}:"
                f" {service.haproxy.backends!r} is not a service"
            )


def _merge(base: Any, override: Any) -> Any:
    """Deep-merge mappings; anything else in the override replaces the base."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    return override


_OVERRIDABLE = {"inputs", "nodes", "services", "outputs", "secrets"}


def load_blueprint(path: Path, site: str | None = None) -> Blueprint:
    """Read a blueprint; with ``site``, its ``sites.<site>`` overrides are merged in."""
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'nodes' key at the top level")
    data = dict(doc.data)
    overrides = data.get("sites") or {}
    if site and isinstance(overrides, dict) and isinstance(overrides.get(site), dict):
        extra = set(overrides[site]) - _OVERRIDABLE
        if extra:
            key = sorted(extra)[0]
            raise ConfigError(
                f"{doc.where(('sites', site, key))}: cannot be overridden per site"
                f" (allowed: {', '.join(sorted(_OVERRIDABLE))})"
            )
        for key, value in overrides[site].items():
            data[key] = _merge(data.get(key), value)
    try:
        blueprint = Blueprint.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(pydantic_error_message(doc, exc)) from None
    blueprint.base_dir = path.resolve().parent
    blueprint.source = doc
    _check_references(blueprint, doc)
    for service_name, service in blueprint.services.items():
        for step_name in (*UP_STEPS, "reload", *DOWN_STEPS):
            step = service.step(step_name)
            if step and step.script and not (blueprint.base_dir / step.script).is_file():
                raise ConfigError(
                    f"{doc.where(('services', service_name, step_name, 'script'))}:"
                    f" script {step.script} not found next to the blueprint"
                )
        for index, upload in enumerate(service.uploads):
            if not (blueprint.base_dir / upload.src).exists():
                raise ConfigError(
                    f"{doc.where(('services', service_name, 'uploads', index, 'src'))}:"
                    f" {upload.src} not found next to the blueprint"
                )
    return blueprint
