"""The driver contract every node provider implements (a cloud, a BYON pool, local).

Small on purpose, like Libcloud's: create, list, wait until reachable, destroy, plus
declared capabilities so callers can ask instead of guessing.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field


class Capability(enum.Enum):
    CREATE = "create"  # can make new machines (clouds); BYON only allocates
    DESTROY = "destroy"
    TAGS = "tags"
    LOCATIONS = "locations"
    SCRUB = "scrub"  # runs a clean-up command before giving a host back


@dataclass(frozen=True)
class NodeSpec:
    """What a caller asks for."""

    name: str
    size: str | None = None
    image: str | None = None
    location: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


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


class NodeDriver(abc.ABC):
    """A provider of nodes. Implementations register themselves by name."""

    name: str = ""
    capabilities: frozenset[Capability] = frozenset()

    @abc.abstractmethod
    async def create(self, specs: list[NodeSpec]) -> list[Node]:
        """Create (or allocate) one node per spec, concurrently where the provider allows."""

    @abc.abstractmethod
    async def list_nodes(self) -> list[Node]:
        """Nodes this driver holds for the project."""

    @abc.abstractmethod
    async def wait_reachable(self, nodes: list[Node], timeout: float) -> None:
        """Return when every node answers SSH (or raise with the ones that did not)."""

    @abc.abstractmethod
    async def destroy(self, nodes: list[Node]) -> None:
        """Destroy (or release) the nodes."""
