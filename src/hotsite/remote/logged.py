"""A transport wrapper that writes every command and transfer to the command log.

The blueprint engine labels what it runs with ``with step("install"):``; the label (and
any extra secrets given with ``secrets(...)``) travels in context variables, so it
follows asyncio tasks and needs no extra argument through every call.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hotsite.errors import RemoteError
from hotsite.remote import history
from hotsite.remote.base import CommandResult, Transport
from hotsite.state import StateStore

_step: contextvars.ContextVar[str | None] = contextvars.ContextVar("hotsite_step", default=None)
_secrets: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "hotsite_secrets", default=()
)
_batch: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "hotsite_log_batch", default=None
)


@contextmanager
def step(label: str | None) -> Iterator[None]:
    """Label every command logged inside the block (in this task and tasks it starts)."""
    token = _step.set(label)
    try:
        yield
    finally:
        _step.reset(token)


def current_step() -> str | None:
    """The label set by the innermost ``step`` block (for transports that log elsewhere)."""
    return _step.get()


@contextmanager
def secrets(values: Iterable[str]) -> Iterator[None]:
    """Redact these values from commands and output logged inside the block."""
    token = _secrets.set((*_secrets.get(), *values))
    try:
        yield
    finally:
        _secrets.reset(token)


@contextmanager
def batched(store: StateStore) -> Iterator[None]:
    """Collect the entries logged inside the block and write them in one transaction
    when it ends (even by an error): a fan-out to 50 nodes then costs one fsync, not 50."""
    entries: list[dict[str, Any]] = []
    token = _batch.set(entries)
    try:
        yield
    finally:
        _batch.reset(token)
        history.record_many(store, entries)


def log_entry(
    store: StateStore,
    *,
    node: str,
    site: str | None,
    command: str,
    exit_status: int | None,
    duration: float,
    started_at: float,
    stdout: str = "",
    stderr: str = "",
    error: str | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """One command-log entry with the current step and secrets; batched inside ``batched``."""
    entry = {
        "node": node,
        "site": site,
        "step": _step.get(),
        "command": command,
        "exit_status": exit_status,
        "duration": duration,
        "started_at": started_at,
        "stdout": stdout,
        "stderr": stderr,
        "error": error,
        "secrets": [*secrets, *_secrets.get()],
    }
    batch = _batch.get()
    if batch is not None:
        batch.append(entry)
    else:
        history.record(store, **entry)


class LoggedTransport(Transport):
    def __init__(self, inner: Transport, store: StateStore, site: str | None = None) -> None:
        self.inner = inner
        self.store = store
        self.site = site
        self.node = inner.node

    @property
    def is_open(self) -> bool:
        return self.inner.is_open

    async def run(
        self,
        command: str,
        *,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        sudo: bool = False,
    ) -> CommandResult:
        started_at, started = time.time(), time.monotonic()
        hidden = [*(env or {}).values(), *_secrets.get()]
        shown = ("sudo " if sudo else "") + (f"(cd {cwd}) " if cwd else "") + command
        try:
            result = await self.inner.run(command, timeout=timeout, env=env, cwd=cwd, sudo=sudo)
        except RemoteError as exc:
            self._record(shown, None, started, started_at, error=str(exc), secrets=hidden)
            raise
        self._record(
            shown,
            result.exit_status,
            started,
            started_at,
            stdout=result.stdout,
            stderr=result.stderr,
            secrets=hidden,
        )
        return result

    async def put(self, local: Path, remote: str) -> None:
        await self._transfer(f"upload {local} -> {remote}", self.inner.put(local, remote))

    async def get(self, remote: str, local: Path) -> None:
        await self._transfer(f"download {remote} -> {local}", self.inner.get(remote, local))

    async def _transfer(self, what: str, operation: object) -> None:
        started_at, started = time.time(), time.monotonic()
        try:
            await operation  # type: ignore[misc]
        except RemoteError as exc:
            self._record(what, None, started, started_at, error=str(exc))
            raise
        self._record(what, 0, started, started_at)

    def _record(
        self,
        command: str,
        exit_status: int | None,
        started: float,
        started_at: float,
        *,
        stdout: str = "",
        stderr: str = "",
        error: str | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        log_entry(
            self.store,
            node=self.node,
            site=self.site,
            command=command,
            exit_status=exit_status,
            duration=time.monotonic() - started,
            started_at=started_at,
            stdout=stdout,
            stderr=stderr,
            error=error,
            secrets=secrets,
        )

    async def close(self) -> None:
        await self.inner.close()
