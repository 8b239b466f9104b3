"""The driver contract every node provider implements (a cloud, a BYON pool, local).

Small on purpose, like Libcloud's: create, list, wait until reachable, destroy, plus
declared capabilities so callers can ask instead of guessing.

A *driver* is code (``libcloud``, ``byon``, ``local``, or a third party's); a *provider*
is one configured use of it in the project file (``nodes.providers.aws``,
``nodes.providers.rack1``). A driver instance serves one provider.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

# nodes uses remote (to probe and scrub hosts), never the other way round: a transport
# takes a Host (address and credentials), which a Node makes of itself.
from hotsite.remote.host import Host, SSHSettings

if TYPE_CHECKING:
    from hotsite.state import StateStore


class Capability(enum.Enum):
    CREATE = "create"  # can make new machines (clouds); BYON only allocates
    DESTROY = "destroy"
    TAGS = "tags"
    LOCATIONS = "locations"
    SCRUB = "scrub"  # runs a clean-up command before giving a host back


@dataclass(frozen=True)
class NodeSpec:
    """What a caller asks for: one node. ``NodeSpec.many`` makes ``count`` of them."""

    name: str
    size: str | None = None
    image: str | None = None
    location: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    site: str | None = None
    group: str | None = None

    @classmethod
    def many(cls, prefix: str, count: int, **fields: Any) -> list[NodeSpec]:
        """``prefix-1`` … ``prefix-N``; a single node keeps the bare prefix."""
        if count == 1:
            return [cls(name=prefix, **fields)]
        return [cls(name=f"{prefix}-{n}", **fields) for n in range(1, count + 1)]


@dataclass
class Node:
    """A machine hotsite may run commands on."""

    name: str
    driver: str
    driver_id: str  # the provider's own id (instance id, pool host name, "local")
    address: str
    ssh_port: int = 22
    ssh_user: str = "root"
    ssh_key: str | None = None  # a reference (path or key name), never key material
    tags: dict[str, str] = field(default_factory=dict)
    state: str = "running"
    ssh_jump: str | None = None  # "[user@]host[:port]" of a bastion to reach it through
    provider: str = ""  # the project file's provider entry this node came from
    site: str | None = None
    group: str | None = None

    @property
    def is_local(self) -> bool:
        return self.driver == "local"

    @property
    def host(self) -> Host:
        """Where transports connect to reach this node, and as whom."""
        return Host(
            name=self.name,
            address=self.address,
            port=self.ssh_port,
            user=self.ssh_user or None,
            key=self.ssh_key,
            jump=self.ssh_jump,
            site=self.site,
            local=self.is_local,
        )


@dataclass
class DriverContext:
    """What a driver gets from hotsite: where to record, how to reach nodes."""

    store: StateStore
    ssh: SSHSettings = field(default_factory=SSHSettings)
    project: str = "hotsite"  # tags cloud nodes, so a recovery finds only ours


class NodeDriver(abc.ABC):
    """A provider of nodes. Implementations register themselves by name (see registry)."""

    name: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    # A third-party driver may set a pydantic model: its provider settings are then
    # validated with it (the built-in drivers' models live in nodes/config.py).
    settings_model: ClassVar[Any] = None

    def __init__(self, provider: str, settings: Any, context: DriverContext) -> None:
        self.provider = provider
        self.settings = settings
        self.context = context

    @abc.abstractmethod
    async def create(self, specs: list[NodeSpec]) -> list[Node]:
        """Create (or allocate) one node per spec, concurrently where the provider allows.

        Each allocation is recorded in the state store *before* the provider is asked,
        so a crash at any point leaves a record the next run can recover from."""

    @abc.abstractmethod
    async def list_nodes(self) -> list[Node]:
        """Nodes this driver holds for the project."""

    @abc.abstractmethod
    async def wait_reachable(self, nodes: list[Node], timeout: float) -> None:
        """Return when every node answers SSH (or raise with the ones that did not)."""

    @abc.abstractmethod
    async def destroy(self, nodes: list[Node]) -> None:
        """Destroy (or release) the nodes, then forget their records."""
