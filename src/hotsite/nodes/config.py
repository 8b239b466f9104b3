"""The ``nodes:`` section of the project file: SSH settings and node providers.

```yaml
nodes:
  ssh: {user: root, key: ~/.ssh/hotsite, connect_timeout: 10, concurrency: 32}
  providers:
    rack1: {driver: byon, hosts: [{address: 10.0.0.5, tags: {zone: a}}], scrub: "rm -rf /opt/app"}
    aws:   {driver: libcloud, provider: ec2, region: eu-west-1, key: "${AWS_KEY}", secret: "${AWS_SECRET}"}
```

Credentials may be written as ``${ENV_VAR}`` or left out and given as
``HOTSITE_<PROVIDER>_KEY`` / ``HOTSITE_<PROVIDER>_SECRET``; they are expanded only when a
driver needs them and are never stored or logged.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from hotsite.errors import DriverError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SSHConfig(_Model):
    user: str = Field(default="root", description="default login user on nodes")
    key: Path | None = Field(default=None, description="private key; its .pub goes to new nodes")
    connect_timeout: float = Field(default=10.0, gt=0, description="seconds per SSH connect")
    concurrency: int = Field(default=32, ge=1, description="nodes worked on at once")
    accept_new_host_keys: bool = Field(
        default=False, description="trust and record a host key seen for the first time"
    )
    jump: str | None = Field(default=None, description="bastion: [user@]host[:port]")
    agent: bool = Field(default=False, description="also offer ssh-agent's keys ($SSH_AUTH_SOCK)")

    @field_validator("key")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value else None


class PoolHost(_Model):
    address: str
    name: str | None = Field(default=None, description="default: the address")
    port: int = Field(default=22, ge=1, le=65535)
    user: str | None = Field(default=None, description="default: nodes.ssh.user")
    key: Path | None = Field(default=None, description="default: nodes.ssh.key")
    jump: str | None = Field(default=None, description="default: the pool's, then nodes.ssh's")
    host_key: str | None = Field(
        default=None, description="the host's public key ('ssh-ed25519 AAAA…'): trusted, no TOFU"
    )
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("host_key")
    @classmethod
    def _valid_key(cls, value: str | None) -> str | None:
        if value is not None:
            import asyncssh

            try:
                asyncssh.import_public_key(value)
            except (asyncssh.KeyImportError, ValueError):
                raise ValueError("host_key is not an OpenSSH public key line") from None
        return value

    @property
    def host_name(self) -> str:
        return self.name or self.address


class LocalProvider(_Model):
    driver: Literal["local"] = "local"


class ByonProvider(_Model):
    driver: Literal["byon"] = "byon"
    hosts: list[PoolHost] = Field(default_factory=list)
    scrub: str | None = Field(default=None, description="command run on a host before release")
    jump: str | None = Field(default=None, description="bastion for the pool's hosts")
    accept_new_host_keys: bool | None = Field(
        default=None, description="default: nodes.ssh.accept_new_host_keys"
    )

    @field_validator("hosts")
    @classmethod
    def _unique_names(cls, hosts: list[PoolHost]) -> list[PoolHost]:
        seen: set[str] = set()
        for host in hosts:
            if host.host_name in seen:
                raise ValueError(f"host {host.host_name!r} is listed twice")
            seen.add(host.host_name)
        return hosts


class LibcloudProvider(_Model):
    driver: Literal["libcloud"] = "libcloud"
    provider: str = Field(description="a Libcloud compute provider name: ec2, openstack, gce…")
    key: str | None = Field(default=None, description="access key / user id; ${ENV} allowed")
    secret: str | None = Field(default=None, description="secret; ${ENV} allowed")
    region: str | None = None
    options: dict[str, Any] = Field(
        default_factory=dict, description="extra keyword arguments for the Libcloud driver"
    )
    create_options: dict[str, Any] = Field(
        default_factory=dict,
        description="extra keyword arguments for create_node (ex_security_groups, ex_subnet…)",
    )
    size: str | None = Field(default=None, description="default size id or name")
    image: str | None = Field(default=None, description="default image id or name")
    location: str | None = None
    user: str | None = Field(default=None, description="login user of the image")
    jump: str | None = Field(default=None, description="bastion to reach new nodes through")
    accept_new_host_keys: bool | None = None
    create_timeout: float = Field(default=600.0, gt=0)

    def credential(self, provider_name: str, which: Literal["key", "secret"]) -> str:
        """The expanded credential, from the file (``${VAR}`` allowed) or the environment."""
        raw = getattr(self, which)
        env_name = f"HOTSITE_{re.sub(r'[^A-Za-z0-9]', '_', provider_name).upper()}_{which.upper()}"
        if raw is None:
            value = os.environ.get(env_name)
            if value is None:
                raise DriverError(
                    f"missing credentials for provider {provider_name!r}: no {which}",
                    f"set nodes.providers.{provider_name}.{which} or the {env_name} variable",
                )
            return value
        missing = [name for name in _ENV_REF.findall(raw) if name not in os.environ]
        if missing:
            raise DriverError(
                f"missing credentials for provider {provider_name!r}:"
                f" environment variable {missing[0]} is not set",
                f"export {missing[0]} (used in nodes.providers.{provider_name}.{which})",
            )
        return _ENV_REF.sub(lambda m: os.environ[m.group(1)], raw)


class OtherProvider(BaseModel):
    """A third-party driver's settings: validated by the driver itself when loaded."""

    model_config = ConfigDict(extra="allow")
    driver: str


def _provider_kind(value: Any) -> str:
    driver = value.get("driver") if isinstance(value, dict) else getattr(value, "driver", None)
    return driver if driver in ("local", "byon", "libcloud") else "other"


ProviderConfig = Annotated[
    Annotated[LocalProvider, Tag("local")]
    | Annotated[ByonProvider, Tag("byon")]
    | Annotated[LibcloudProvider, Tag("libcloud")]
    | Annotated[OtherProvider, Tag("other")],
    Discriminator(_provider_kind),
]


class NodesConfig(_Model):
    project: str | None = Field(
        default=None,
        description="tags cloud nodes so recovery finds only this project's; default: the"
        " project file's directory name",
    )
    ssh: SSHConfig = Field(default_factory=SSHConfig)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)

    def provider(
        self, name: str
    ) -> LocalProvider | ByonProvider | LibcloudProvider | OtherProvider:
        if name in self.providers:
            return self.providers[name]
        if name == "local":  # always there: the machine itself
            return LocalProvider()
        known = ", ".join(sorted({*self.providers, "local"}))
        raise DriverError(
            f"unknown node provider {name!r}", f"providers under nodes.providers: {known}"
        )

    def pools(self) -> dict[str, ByonProvider]:
        return {n: p for n, p in self.providers.items() if isinstance(p, ByonProvider)}
