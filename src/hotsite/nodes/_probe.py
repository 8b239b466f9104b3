"""Does a node answer SSH (and let us in)? Shared by the drivers that hand out hosts."""

from __future__ import annotations

import asyncio
import time

from hotsite.errors import UnreachableError
from hotsite.nodes.base import DriverContext, Node


async def probe(node: Node, context: DriverContext, accept_new: bool) -> None:
    """Connect and authenticate once; raises the transport's one-line errors."""
    from hotsite.remote.ssh import SSHTransport  # asyncssh only when a node is probed

    transport = await SSHTransport.connect(node, context.store, context.ssh, accept_new=accept_new)
    await transport.close()


async def wait_reachable(
    nodes: list[Node], context: DriverContext, accept_new: bool, timeout: float
) -> None:
    """Probe every node concurrently, retrying while it is unreachable (still booting)."""
    deadline = time.monotonic() + timeout

    async def one(node: Node) -> None:
        while True:
            try:
                return await probe(node, context, accept_new)
            except UnreachableError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1)

    results = await asyncio.gather(*(one(n) for n in nodes), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
