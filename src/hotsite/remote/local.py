"""The local transport: the same contract as SSH, for the ``local`` driver and tests.

Commands run through the same wrapper as over SSH (``remote._shell``), so environment,
directory, sudo and quoting behave identically on both.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from pathlib import Path

from hotsite.errors import RemoteError
from hotsite.remote._shell import wrap
from hotsite.remote.base import CommandResult, Transport


class LocalTransport(Transport):
    def __init__(self, node: str = "local") -> None:
        self.node = node

    async def run(
        self,
        command: str,
        *,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        sudo: bool = False,
    ) -> CommandResult:
        line, script = wrap(command, env=env, cwd=cwd, sudo=sudo and os.geteuid() != 0)
        started = time.monotonic()
        # Own session: a timeout kills the command's whole process group, not just sh.
        # The user's shell, as sshd runs the login shell: a command behaves the same
        # on the local node as on a remote one.
        process = await asyncio.create_subprocess_exec(
            os.environ.get("SHELL") or "/bin/sh",
            "-c",
            line,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate((script or "").encode()), timeout)
        except TimeoutError:
            await _kill(process)
            raise RemoteError(
                f"{command!r} timed out after {timeout:g}s on {self.node}",
                "raise the timeout or look at what the command waits for",
            ) from None
        except asyncio.CancelledError:
            await _kill(process)
            raise
        return CommandResult(
            node=self.node,
            command=command,
            exit_status=process.returncode if process.returncode is not None else -1,
            stdout=out.decode(errors="replace"),
            stderr=err.decode(errors="replace"),
            duration=time.monotonic() - started,
        )

    async def put(self, local: Path, remote: str) -> None:
        await asyncio.to_thread(_copy, local, Path(remote), self.node)

    async def get(self, remote: str, local: Path) -> None:
        await asyncio.to_thread(_copy, Path(remote), local, self.node)

    async def close(self) -> None:
        return None


async def _kill(process: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    await process.wait()


def _copy(source: Path, target: Path, node: str) -> None:
    """``target`` is the destination path itself (a directory's contents merge into it)."""
    try:
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    except OSError as exc:
        raise RemoteError(f"copy {source} to {target} on {node} failed: {exc}") from None
