"""A TCP proxy that delays every byte by a fixed time each way: a WAN link on loopback.

This kernel has no ``netem``, so benches and tests put this between a source database and whoever
reads it. Bandwidth is not limited; each chunk read is written on after ``--delay``
seconds, in order, so a request/response round trip costs twice the delay.

    python -m hotsite.testing.delay_proxy --listen 40001 --to 127.0.0.1:3306 --delay 0.025

Prints ``ready`` once it listens; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import time


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Read chunks as they come and write each one ``delay`` s after it arrived."""
    chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def forward() -> None:
        while True:
            due, data = await chunks.get()
            if not data:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(forward())
    try:
        while True:
            data = await reader.read(1 << 16)
            chunks.put_nowait((time.monotonic() + delay, data))
            if not data:
                break
        await sender
    except (ConnectionError, asyncio.CancelledError):
        sender.cancel()
    finally:
        writer.close()


async def _serve(listen: int, host: str, port: int, delay: float) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(host, port)
        except OSError:
            client_w.close()
            return
        for w in (client_w, server_w):
            w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await asyncio.gather(_pump(client_r, server_w, delay), _pump(server_r, client_w, delay))
        except asyncio.CancelledError:  # the proxy stops
            pass

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("ready", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--to", required=True, help="HOST:PORT")
    parser.add_argument("--delay", type=float, default=0.025, help="seconds, each way")
    args = parser.parse_args()
    host, _, port = args.to.rpartition(":")
    asyncio.run(_serve(args.listen, host, int(port), args.delay))


if __name__ == "__main__":
    main()
