"""The ``local`` driver: the machine hotsite runs on, for the embedded demo and
single-machine use. Every "node" it creates is this machine under another name; commands
reach it through the local transport, not SSH."""

from __future__ import annotations

import sqlite3

from hotsite.errors import DriverError
from hotsite.nodes import records
from hotsite.nodes.base import Capability, Node, NodeDriver, NodeSpec


class LocalDriver(NodeDriver):
    name = "local"
    capabilities = frozenset({Capability.CREATE, Capability.DESTROY, Capability.TAGS})

    async def create(self, specs: list[NodeSpec]) -> list[Node]:
        nodes = [
            Node(
                name=spec.name,
                driver=self.name,
                driver_id="",  # many local nodes share the machine: no unique id
                address="127.0.0.1",
                ssh_user="",
                tags=dict(spec.tags),
                provider=self.provider,
                site=spec.site,
                group=spec.group,
            )
            for spec in specs
        ]
        try:
            with self.context.store.transaction() as conn:
                for node in nodes:
                    existing = conn.execute(
                        "SELECT provider FROM nodes WHERE name = ?", (node.name,)
                    ).fetchone()
                    if existing and existing[0] == self.provider:
                        continue  # creating an existing local node is a no-op
                    records.insert(conn, node)
        except sqlite3.IntegrityError:
            raise DriverError(
                f"a node named {nodes[0].name!r} or another requested name already exists",
                "pick other names or destroy the existing node",
            ) from None
        return [records.get(self.context.store, node.name) or node for node in nodes]

    async def list_nodes(self) -> list[Node]:
        return records.select(self.context.store, provider=self.provider)

    async def wait_reachable(self, nodes: list[Node], timeout: float) -> None:
        return None  # this machine is always reachable

    async def destroy(self, nodes: list[Node]) -> None:
        records.delete(self.context.store, [node.name for node in nodes])
