"""One place to get a transport for a node, and to work on many nodes at once.

A ``RemoteSession`` keeps one connection per node for its lifetime (opening an SSH
connection costs far more than a command on it), wraps each transport so the command
log is written, and bounds fan-out so fifty nodes do not mean fifty handshakes at once
on a small controller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from hotsite.errors import HotsiteError
from hotsite.remote.base import CommandResult, Transport
from hotsite.remote.host import Reachable, SSHSettings
from hotsite.remote.local import LocalTransport
from hotsite.remote.logged import LoggedTransport, batched, log_entry
from hotsite.state import StateStore

T = TypeVar("T")
# What the caller fans out over (a driver's Node, a plain Host): handed back as it came.
N = TypeVar("N", bound=Reachable)


@dataclass(frozen=True)
class Outcome(Generic[N]):
    """What happened on one node in a fan-out: a result, or the error that stopped it."""

    node: N
    result: CommandResult | None = None
    error: HotsiteError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and (self.result is None or self.result.ok)


class RemoteSession(Generic[N]):
    def __init__(
        self,
        store: StateStore,
        ssh: SSHSettings | None = None,
        *,
        # Per target: a driver's provider may allow new host keys where others do not.
        accept_new_host_keys: Callable[[N], bool] | None = None,
    ) -> None:
        self.store = store
        self.ssh = ssh or SSHSettings()
        self._accept_new = accept_new_host_keys or (lambda node: self.ssh.accept_new_host_keys)
        self._transports: dict[str, Transport] = {}
        self._jumps: dict[str, Any] = {}  # bastion connections (asyncssh), shared
        self._opening: dict[str, asyncio.Lock] = {}
        self._limit = asyncio.Semaphore(self.ssh.concurrency)

    async def transport(self, node: N) -> Transport:
        """The node's (logged) transport; connects on first use, then reuses it."""
        host = node.host
        cached = self._transports.get(host.name)
        if cached is not None and cached.is_open:
            return cached
        lock = self._opening.setdefault(host.name, asyncio.Lock())
        async with lock:
            current = self._transports.get(host.name)
            if current is not None and not current.is_open:
                # The node rebooted or the link dropped: connect again (host key re-checked).
                del self._transports[host.name]
                await asyncio.gather(current.close(), return_exceptions=True)
            if host.name not in self._transports:
                inner: Transport
                if host.local:
                    inner = LocalTransport(host.name)
                else:
                    from hotsite.remote.ssh import SSHTransport  # asyncssh only when needed

                    jump = await self._jump(node) if host.jump else None
                    inner = await SSHTransport.connect(
                        host, self.store, self.ssh, accept_new=self._accept_new(node), jump=jump
                    )
                self._transports[host.name] = LoggedTransport(inner, self.store, site=host.site)
        return self._transports[host.name]

    async def _jump(self, node: N) -> Any:
        """One connection per bastion, shared by every node behind it: a bastion's sshd
        drops handshakes beyond MaxStartups (10 by default), so 50 tunnels each with
        their own connection would fail at random."""
        from hotsite.remote.ssh import open_jump

        host = node.host
        key = f"{host.jump}|{host.key or ''}|{host.user}"
        lock = self._opening.setdefault(f"jump:{key}", asyncio.Lock())
        async with lock:
            conn = self._jumps.get(key)
            if conn is None or conn.is_closed():
                conn = await open_jump(
                    host, self.store, self.ssh, accept_new=self._accept_new(node)
                )
                self._jumps[key] = conn
        return conn

    async def each(
        self,
        nodes: Iterable[N],
        work: Callable[[Transport], Awaitable[T]],
        on_done: Callable[[N, T | None, HotsiteError | None], None] | None = None,
    ) -> list[tuple[N, T | None, HotsiteError | None]]:
        """Run ``work`` on every node, at most ``ssh.concurrency`` at once; never raises
        a HotsiteError, so one dead node does not hide what happened on the others.
        ``on_done`` is called as each node finishes (a CLI prints its line then)."""

        async def one(node: N) -> tuple[N, T | None, HotsiteError | None]:
            async with self._limit:
                done: tuple[N, T | None, HotsiteError | None]
                started_at, started = time.time(), time.monotonic()
                try:
                    transport = await self.transport(node)
                except HotsiteError as exc:
                    # Logged too: "why did nothing run on db-2?" is answered by its log.
                    log_entry(
                        self.store,
                        node=node.host.name,
                        site=node.host.site,
                        command=f"connect {node.host.where}",
                        exit_status=None,
                        duration=time.monotonic() - started,
                        started_at=started_at,
                        error=str(exc),
                    )
                    done = (node, None, exc)
                else:
                    try:
                        done = (node, await work(transport), None)
                    except HotsiteError as exc:
                        done = (node, None, exc)
            if on_done is not None:
                on_done(*done)
            return done

        with batched(self.store):
            return list(await asyncio.gather(*(one(node) for node in nodes)))

    async def run_all(
        self,
        nodes: Iterable[N],
        command: str,
        *,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        sudo: bool = False,
        on_done: Callable[[Outcome[N]], None] | None = None,
    ) -> list[Outcome[N]]:
        async def work(transport: Transport) -> CommandResult:
            return await transport.run(command, timeout=timeout, env=env, cwd=cwd, sudo=sudo)

        def report(node: N, result: CommandResult | None, error: HotsiteError | None) -> None:
            if on_done is not None:
                on_done(Outcome(node, result, error))

        return [
            Outcome(node, result, error)
            for node, result, error in await self.each(nodes, work, report)
        ]

    async def put_all(self, nodes: Iterable[N], local: Path, remote: str) -> list[Outcome[N]]:
        async def work(transport: Transport) -> None:
            await transport.put(local, remote)

        return [Outcome(node, None, error) for node, _, error in await self.each(nodes, work)]

    async def close(self) -> None:
        transports, self._transports = list(self._transports.values()), {}
        await asyncio.gather(*(t.close() for t in transports), return_exceptions=True)
        jumps, self._jumps = list(self._jumps.values()), {}
        for conn in jumps:
            conn.close()
        await asyncio.gather(*(c.wait_closed() for c in jumps), return_exceptions=True)

    async def __aenter__(self) -> RemoteSession[N]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
