"""The real Infrastructure: node drivers from the project's providers, logged transports.

The transports come from a RemoteSession, which keeps one connection per node and writes
every command to the command log; the engine labels each command with its step through
``hotsite.remote.step``.
"""

from __future__ import annotations

from hotsite.nodes import Node, NodeDriver, Providers
from hotsite.remote import RemoteSession, Transport


class NodesInfrastructure:
    def __init__(self, providers: Providers) -> None:
        self.providers = providers
        self.session = RemoteSession(
            providers.store, providers.ssh, accept_new_host_keys=providers.accept_new_host_keys
        )

    def driver(self, name: str) -> NodeDriver:
        return self.providers.driver(name)

    async def connect(self, node: Node) -> Transport:
        return await self.session.transport(node)

    async def close(self) -> None:
        await self.session.close()
        # The next use (down after up in one process) opens fresh connections.
        self.session = RemoteSession(
            self.providers.store,
            self.providers.ssh,
            accept_new_host_keys=self.providers.accept_new_host_keys,
        )
