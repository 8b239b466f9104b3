"""The ``byon`` driver: a pool of existing hosts (bare metal, VMs someone else made).

Allocation is a lease: in one ``BEGIN IMMEDIATE`` transaction (the state store's writer
lock, shared by every hotsite process of the project) it picks free hosts whose tags
match and records the leases as ``intent``; the unique index on (provider, driver_id)
backs that up. Only then is SSH probed; if any probe fails, every lease of the call is
dropped again, so a failed allocation leaves nothing behind. A lease whose process died
before it was confirmed is reclaimed by the next allocation. Release runs the pool's
``scrub`` command on the host first; a host whose scrub fails stays leased (state
``releasing``) rather than being handed dirty to the next user.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

from hotsite.errors import HostKeyError, HotsiteError, NodeError, PoolExhaustedError
from hotsite.logs import get_logger
from hotsite.nodes import _probe as probe
from hotsite.nodes import records
from hotsite.nodes.base import Capability, Node, NodeDriver, NodeSpec
from hotsite.nodes.config import ByonProvider, PoolHost

log = get_logger(__name__)


def asyncssh_key(line: str) -> Any:
    import asyncssh  # only when a pool pins host keys

    return asyncssh.import_public_key(line)


class ByonDriver(NodeDriver):
    name = "byon"
    capabilities = frozenset({Capability.DESTROY, Capability.TAGS, Capability.SCRUB})
    settings: ByonProvider

    def __init__(self, provider: str, settings: Any, context: Any) -> None:
        super().__init__(provider, settings, context)
        self._probed: set[str] = set()

    @property
    def accept_new_host_keys(self) -> bool:
        if self.context.ssh.accept_new_host_keys:  # the CLI flag or nodes.ssh
            return True
        return bool(self.settings.accept_new_host_keys)

    def _pin_host_keys(self) -> None:
        """Host keys written in the project file are trusted as if recorded (no first-use
        trust needed); one that contradicts a recorded key is refused, naming the host."""
        from hotsite.remote import hostkeys

        for host in self.settings.hosts:
            if host.host_key is None:
                continue
            pinned = asyncssh_key(host.host_key)
            recorded = hostkeys.known(self.context.store, host.address, host.port)
            if recorded is None:
                hostkeys.remember(
                    self.context.store, host.address, host.port, pinned, host.host_name
                )
            elif recorded.public_data != pinned.public_data:
                raise HostKeyError(
                    f"host_key of {host.host_name} ({host.address}:{host.port}) in pool"
                    f" {self.provider!r} differs from the recorded {recorded.get_fingerprint()}",
                    f"fix the project file, or 'hotsite nodes forget-host-key {host.address}'",
                )

    async def create(self, specs: list[NodeSpec]) -> list[Node]:
        self._pin_host_keys()
        nodes, held = self._lease(specs)
        try:
            await self._probe_all(nodes)
        except BaseException:
            records.delete(self.context.store, [n.name for n in nodes])
            raise
        for node in nodes:
            node.state = records.RUNNING
            records.save(self.context.store, node)
            self._probed.add(node.name)
            log.info("node.leased", node=node.name, pool=self.provider, host=node.driver_id)
        by_name = {n.name: n for n in [*nodes, *held]}
        return [by_name[spec.name] for spec in specs]

    def _lease(self, specs: list[NodeSpec]) -> tuple[list[Node], list[Node]]:
        """(new leases recorded as intent, running nodes of this pool reused by name)."""
        store = self.context.store
        with store.transaction() as conn:
            self._reclaim_dead_intents(conn)
            taken = {
                row[0]
                for row in conn.execute(
                    "SELECT driver_id FROM nodes WHERE provider = ?", (self.provider,)
                )
            }
            nodes, held = [], []
            for spec in specs:
                row = conn.execute(
                    "SELECT provider, state FROM nodes WHERE name = ?", (spec.name,)
                ).fetchone()
                if row is not None and tuple(row) == (self.provider, records.RUNNING):
                    # Creating what exists is a no-op, as with the other drivers: a
                    # blueprint re-run must not lease a second host for the same node.
                    existing = records.get(store, spec.name)
                    assert existing is not None
                    held.append(existing)
                    continue
                if row is not None:
                    raise NodeError(
                        f"a node named {spec.name!r} already exists",
                        "pick another name or release it with 'hotsite nodes destroy'",
                    )
                host = self._pick(spec, taken)
                taken.add(host.host_name)
                node = self._node(spec, host)
                records.insert(conn, node)
                nodes.append(node)
        return nodes, held

    def _pick(self, spec: NodeSpec, taken: set[str]) -> PoolHost:
        matching = [
            h for h in self.settings.hosts if all(h.tags.get(k) == v for k, v in spec.tags.items())
        ]
        for host in matching:
            if host.host_name not in taken:
                return host
        wanted = ",".join(f"{k}={v}" for k, v in sorted(spec.tags.items())) or "any tags"
        raise PoolExhaustedError(
            f"pool {self.provider!r} has no free host matching {wanted}"
            f" ({len(matching)} match, all leased; {len(self.settings.hosts)} in the pool)",
            "release nodes with 'hotsite nodes destroy', add hosts, or ask for other tags",
        )

    def _node(self, spec: NodeSpec, host: PoolHost) -> Node:
        return Node(
            name=spec.name,
            driver=self.name,
            driver_id=host.host_name,
            address=host.address,
            ssh_port=host.port,
            ssh_user=host.user or self.context.ssh.user,
            # Only a host's own key is recorded; otherwise the project's current
            # nodes.ssh.key applies, so rotating it does not strand existing leases.
            ssh_key=str(host.key) if host.key else None,
            ssh_jump=host.jump or self.settings.jump or self.context.ssh.jump,
            tags={**host.tags, **spec.tags},
            state=records.INTENT,
            provider=self.provider,
            site=spec.site,
            group=spec.group,
        )

    def _reclaim_dead_intents(self, conn: sqlite3.Connection) -> None:
        """Leases left as ``intent`` by a process that died (kill -9, power loss)."""
        cursor = conn.execute(
            "SELECT name, holder_pid, updated_at FROM nodes WHERE provider = ? AND state = ?",
            (self.provider, records.INTENT),
        )
        # A probe takes at most connect_timeout: an older intent is abandoned even if
        # its PID was recycled by an unrelated process.
        max_age = self.context.ssh.connect_timeout * 3 + 60
        dead = [
            row[0]
            for row in cursor
            if not records.pid_alive(row[1]) or time.time() - row[2] > max_age
        ]
        for name in dead:
            log.warning("lease.reclaimed", node=name, pool=self.provider)
            conn.execute("DELETE FROM nodes WHERE name = ?", (name,))

    async def _probe_all(self, nodes: list[Node]) -> None:
        results = await asyncio.gather(*(self._probe(n) for n in nodes), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _probe(self, node: Node) -> None:
        await probe.probe(node, self.context, self.accept_new_host_keys)

    async def check_hosts(self) -> dict[str, HotsiteError | None]:
        """Every pool host (free or leased): can we log in? Read-only: a host key seen
        for the first time is reported (HostKeyError), not recorded."""
        self._pin_host_keys()
        limit = asyncio.Semaphore(self.context.ssh.concurrency)

        async def one(host: PoolHost) -> HotsiteError | None:
            node = self._node(NodeSpec(name=f"{self.provider}/{host.host_name}"), host)
            async with limit:
                try:
                    await probe.probe(node, self.context, accept_new=False)
                except HotsiteError as exc:
                    return exc
            return None

        results = await asyncio.gather(*(one(h) for h in self.settings.hosts))
        return {h.host_name: r for h, r in zip(self.settings.hosts, results, strict=True)}

    async def list_nodes(self) -> list[Node]:
        return records.select(self.context.store, provider=self.provider)

    async def wait_reachable(self, nodes: list[Node], timeout: float) -> None:
        # Hosts this driver just leased were probed then: no second connection for them.
        unproven = [n for n in nodes if n.name not in self._probed]
        await probe.wait_reachable(unproven, self.context, self.accept_new_host_keys, timeout)

    async def destroy(self, nodes: list[Node]) -> None:
        """Scrub then free each host; the first failure is raised after trying all."""
        errors: list[HotsiteError] = []
        for node in nodes:
            node.state = records.RELEASING
            records.save(self.context.store, node)
        results = await asyncio.gather(*(self._release(n) for n in nodes), return_exceptions=True)
        for result in results:
            if isinstance(result, HotsiteError):
                errors.append(result)
            elif isinstance(result, BaseException):
                raise result
        if errors:
            raise errors[0]

    async def _release(self, node: Node) -> None:
        if self.settings.scrub:
            from hotsite.remote.logged import LoggedTransport, step
            from hotsite.remote.ssh import SSHTransport

            inner = await SSHTransport.connect(
                node, self.context.store, self.context.ssh, accept_new=self.accept_new_host_keys
            )
            async with LoggedTransport(inner, self.context.store, site=node.site) as transport:
                with step("scrub"):
                    result = await transport.run(self.settings.scrub, timeout=600)
            if not result.ok:
                raise NodeError(
                    f"scrub of {node.name} ({node.driver_id}) failed with exit status"
                    f" {result.exit_status}; the host stays leased",
                    f"see 'hotsite logs {node.name}', fix the host, then destroy again",
                )
        records.delete(self.context.store, [node.name])
        log.info("node.released", node=node.name, pool=self.provider, host=node.driver_id)
