"""From the project file to working drivers: the glue the CLI and the blueprint engine use.

``Providers`` knows the project's ``nodes:`` section and its state store, builds the
driver for a provider name (through the lazy registry), and answers which SSH settings
and host-key policy apply to a node. It is given the section, not the whole project
file: the project file (``hotsite.config``) is built of the packages' sections, so
nodes never imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hotsite.errors import ConfigError
from hotsite.nodes import records
from hotsite.nodes.base import DriverContext, Node, NodeDriver
from hotsite.nodes.config import ByonProvider, LibcloudProvider, NodesConfig, OtherProvider
from hotsite.nodes.registry import driver_class
from hotsite.remote.host import SSHSettings
from hotsite.state import StateStore


def open_store(home: Path) -> StateStore:
    return StateStore(home / "state.db")


class Providers:
    def __init__(
        self,
        config: NodesConfig,
        store: StateStore,
        *,
        project: str = "hotsite",
        accept_new_host_keys: bool = False,  # the CLI's --accept-new-host-keys
    ) -> None:
        self.config = config
        self.store = store
        self.project = project
        self.accept_new_override = accept_new_host_keys
        self._drivers: dict[str, NodeDriver] = {}

    @property
    def ssh(self) -> SSHSettings:
        ssh = self.config.ssh
        return SSHSettings(
            user=ssh.user,
            key=ssh.key,
            connect_timeout=ssh.connect_timeout,
            concurrency=ssh.concurrency,
            accept_new_host_keys=ssh.accept_new_host_keys or self.accept_new_override,
            jump=ssh.jump,
            agent=ssh.agent,
        )

    def driver(self, provider: str) -> NodeDriver:
        """The driver serving ``provider`` (one instance per provider, reused)."""
        if provider not in self._drivers:
            settings: Any = self.config.provider(provider)
            cls = driver_class(settings.driver)
            model = getattr(cls, "settings_model", None)
            if isinstance(settings, OtherProvider) and model is not None:
                # A third-party driver's settings, validated by its own pydantic model.
                try:
                    settings = model.model_validate(settings.model_dump())
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(str(p) for p in first["loc"])
                    raise ConfigError(
                        f"nodes.providers.{provider}.{where}: {first['msg']}",
                        f"see the documentation of the {settings.driver!r} driver",
                    ) from None
            context = DriverContext(store=self.store, ssh=self.ssh, project=self.project)
            self._drivers[provider] = cls(provider, settings, context)
        return self._drivers[provider]

    def accept_new_host_keys(self, node: Node) -> bool:
        """The CLI flag wins; then the node's provider setting; then ``nodes.ssh``."""
        if self.accept_new_override:
            return True
        settings = self.config.providers.get(node.provider)
        if (
            isinstance(settings, ByonProvider | LibcloudProvider)
            and settings.accept_new_host_keys is not None
        ):
            return settings.accept_new_host_keys
        return self.config.ssh.accept_new_host_keys

    def nodes(self, *, site: str | None = None, group: str | None = None) -> list[Node]:
        return records.select(self.store, site=site, group=group)

    def resolve(self, target: str) -> list[Node]:
        """A node name, a site name, or a group (``group`` or ``site/group``)."""
        node = records.get(self.store, target)
        if node is not None:
            return [node]
        site, _, group = target.partition("/")
        if group:
            return records.select(self.store, site=site, group=group)
        by_site = records.select(self.store, site=target)
        return by_site or records.select(self.store, group=target)
