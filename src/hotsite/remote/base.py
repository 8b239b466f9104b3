"""The transport contract: run a command, move files. SSH and local implement it."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CommandResult:
    node: str
    command: str
    exit_status: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class Transport(abc.ABC):
    """One connection to one node, reused for every command and file."""

    @abc.abstractmethod
    async def run(
        self,
        command: str,
        *,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        sudo: bool = False,
    ) -> CommandResult: ...

    @abc.abstractmethod
    async def put(self, local: Path, remote: str) -> None:
        """Upload a file or a directory (recursively)."""

    @abc.abstractmethod
    async def get(self, remote: str, local: Path) -> None:
        """Download a file or a directory (recursively)."""

    @abc.abstractmethod
    async def close(self) -> None: ...
