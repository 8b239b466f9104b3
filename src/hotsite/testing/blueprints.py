"""Test a blueprint without hosts: "nodes" are directories, commands run in a local shell.

The blueprint engine takes its nodes and transports from an ``Infrastructure``;
``DirectoryNodes`` is one that needs nothing but a temporary directory. Every node the
engine creates is a directory under ``base``; each lifecycle step runs there through
the local transport (``$NODE`` is the node's name, ``$TMPDIR`` its directory); uploads
and generated files are copied into it. So a test can bring a site up, look at what the
steps wrote, change the blueprint, and check that ``up`` runs only what changed,
``down`` removes it, and a failing step is reported::

    from hotsite.blueprint import Deployment, load_blueprint
    from hotsite.state import StateStore
    from hotsite.testing.blueprints import DirectoryNodes

    nodes = DirectoryNodes(tmp_path / "nodes")
    deployment = Deployment(
        site="primary",
        blueprint=load_blueprint(path, "primary"),
        blueprint_path=path,
        inputs={},
        secrets={"token": "a-long-test-secret"},
        default_driver="dirs",
        store=StateStore(tmp_path / "state.db"),
        infra=nodes,
    )
    outcome = asyncio.run(deployment.up())
    assert outcome.ok and (nodes.base / "primary-web-0" / "app.conf").exists()
    assert [run.step for run in nodes.runs if run.node == "primary-web-0"][0] == "app.install"

What it does not show: anything that depends on the real machine (packages, ports,
users, ``sudo``); steps run as the test's user, in its environment. It is a fake of
the nodes/remote layer only: the engine, the rendering and the state records are the
real ones. See docs/blueprints.md ("Testing a blueprint").
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from hotsite.nodes import Node, NodeDriver, NodeSpec
from hotsite.remote import CommandResult, LocalTransport, Transport, current_step

DRIVER = "dirs"


@dataclass(frozen=True)
class Run:
    """One command the engine ran: where, under which step label, and how it ended."""

    node: str
    step: str | None  # "service.step", as the command log would label it
    command: str
    exit_status: int
    stdout: str
    stderr: str


class DirectoryTransport(LocalTransport):
    """The local transport, rooted in the node's directory; records each run in ``runs``.

    Commands run as the local transport runs them (the same shell wrapper as over SSH,
    so environment and quoting behave as on a real node), in the node's directory, with
    ``$NODE`` and ``$TMPDIR`` set; ``sudo`` is ignored (the test's user runs them)."""

    def __init__(self, node: Node, runs: list[Run]) -> None:
        super().__init__(node.name)
        self.root = Path(node.address)
        self._runs = runs

    def _inside(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    async def run(
        self,
        command: str,
        *,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        sudo: bool = False,
    ) -> CommandResult:
        own = {"NODE": self.node, "TMPDIR": str(self.root)}
        where = str(self._inside(cwd) if cwd else self.root)
        result = await super().run(command, timeout=timeout, env={**own, **(env or {})}, cwd=where)
        self._runs.append(
            Run(
                self.node,
                current_step(),
                command,
                result.exit_status,
                result.stdout,
                result.stderr,
            )
        )
        return result

    async def put(self, local: Path, remote: str) -> None:
        await super().put(local, str(self._inside(remote)))

    async def get(self, remote: str, local: Path) -> None:
        await super().get(str(self._inside(remote)), local)


class DirectoryDriver(NodeDriver):
    """A node driver whose nodes are directories under ``base``."""

    name = DRIVER

    def __init__(self, base: Path) -> None:  # no provider settings, no state store
        self.base = base
        self.created: list[str] = []
        self.destroyed: list[str] = []

    def _node(self, root: Path) -> Node:
        return Node(name=root.name, driver=DRIVER, driver_id=root.name, address=str(root))

    async def create(self, specs: list[NodeSpec]) -> list[Node]:
        nodes = []
        for spec in specs:
            root = self.base / spec.name
            root.mkdir(parents=True)
            self.created.append(spec.name)
            nodes.append(self._node(root))
        return nodes

    async def list_nodes(self) -> list[Node]:
        return [self._node(p) for p in sorted(self.base.iterdir())]

    async def wait_reachable(self, nodes: list[Node], timeout: float) -> None:
        return None

    async def destroy(self, nodes: list[Node]) -> None:
        for node in nodes:
            shutil.rmtree(node.address)
            self.destroyed.append(node.name)


@dataclass
class DirectoryNodes:
    """The blueprint engine's ``Infrastructure``, on directories: every provider the
    blueprint names is served by one ``DirectoryDriver``."""

    base: Path
    runs: list[Run] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.dirs = DirectoryDriver(self.base)

    def driver(self, name: str) -> NodeDriver:
        return self.dirs

    async def connect(self, node: Node) -> Transport:
        return DirectoryTransport(node, self.runs)

    async def close(self) -> None:
        return None
