"""The transport contract: run a command, move files. SSH and local implement it."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

from hotsite.errors import RemoteError


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

    def check(self) -> CommandResult:
        """Return self, or raise RemoteError with the last line the command printed."""
        if not self.ok:
            last = (self.stderr.strip() or self.stdout.strip()).splitlines()[-1:] or [""]
            raise RemoteError(
                f"{self.command!r} failed on {self.node} with exit status {self.exit_status}"
                + (f": {last[0][:300]}" if last[0] else ""),
                f"see 'hotsite logs {self.node}'",
            )
        return self


class Transport(abc.ABC):
    """One connection to one node, reused for every command and file.

    ``run`` returns a result for any exit status; it raises a RemoteError subclass only
    when the command could not run to an end (unreachable, auth, host key, timeout)."""

    node: str = ""

    @property
    def is_open(self) -> bool:
        """False once the connection is known to be lost (the session then reconnects)."""
        return True

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

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
