"""A tiny test-only stand-in for the nodes/remote layer: "nodes" are directories on this
machine and commands run in a local shell. Used by the engine's unit tests, which check
ordering, fingerprints and resumption without any real host."""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from hotsite.nodes.base import Node, NodeDriver, NodeSpec
from hotsite.remote.base import CommandResult, Transport


class DirTransport(Transport):
    def __init__(self, node: Node) -> None:
        self.node = node.name
        self.root = Path(node.address)

    async def run(self, command, *, timeout=None, env=None, cwd=None, sudo=False):  # type: ignore[no-untyped-def]
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            "sh",
            "-c",
            command,
            cwd=self.root,
            env={
                "PATH": "/usr/bin:/bin",
                "NODE": self.node,
                "TMPDIR": str(self.root),
                **(env or {}),
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout)
        return CommandResult(
            self.node,
            command,
            process.returncode or 0,
            out.decode(),
            err.decode(),
            time.monotonic() - started,
        )

    async def put(self, local: Path, remote: str) -> None:
        target = self.root / remote.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if local.is_dir():
            shutil.copytree(local, target, dirs_exist_ok=True)
        else:
            shutil.copy(local, target)

    async def get(self, remote: str, local: Path) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class DirDriver(NodeDriver):
    name = "dirs"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.created: list[str] = []
        self.destroyed: list[str] = []

    async def create(self, specs: list[NodeSpec]) -> list[Node]:
        nodes = []
        for spec in specs:
            root = self.base / spec.name
            root.mkdir(parents=True)
            self.created.append(spec.name)
            nodes.append(
                Node(name=spec.name, driver="dirs", driver_id=spec.name, address=str(root))
            )
        return nodes

    async def list_nodes(self) -> list[Node]:
        return [
            Node(name=p.name, driver="dirs", driver_id=p.name, address=str(p))
            for p in sorted(self.base.iterdir())
        ]

    async def wait_reachable(self, nodes: list[Node], timeout: float) -> None:
        return None

    async def destroy(self, nodes: list[Node]) -> None:
        for node in nodes:
            shutil.rmtree(node.address)
            self.destroyed.append(node.name)


@dataclass
class StandInInfra:
    base: Path
    log_entries: list[tuple[str, str, int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.dirs = DirDriver(self.base)

    def driver(self, name: str) -> NodeDriver:
        return self.dirs

    async def connect(self, node: Node) -> Transport:
        return DirTransport(node)

    async def close(self) -> None:
        return None

    def log(
        self, result: CommandResult, *, site: str, step: str, secrets: list[str], started: float
    ) -> None:
        text = result.command + result.stdout + result.stderr
        for secret in secrets:
            assert secret not in text, "a secret reached the command log"
        self.log_entries.append((result.node, step, result.exit_status, result.stdout))
