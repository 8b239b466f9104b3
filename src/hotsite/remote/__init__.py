"""Running commands and moving files on hosts: ssh (asyncssh) and local transports.

Public API: ``Host`` (an address and credentials: what a transport connects to),
``Reachable`` (anything with a ``host``), ``SSHSettings``, ``RemoteSession`` (a transport
per host, fan-out) and its ``Outcome``, ``Transport`` and ``CommandResult`` (the
contract), ``LocalTransport``, ``LoggedTransport``, ``step``/``secrets`` (label and
redact what the command log records; ``current_step`` reads the label), ``history`` (query the command log) and
``hostkeys`` (the recorded host keys; loaded on first use, as it needs asyncssh).

remote takes addresses and credentials, never a driver's node: nothing here imports
``hotsite.nodes``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hotsite.remote import history
from hotsite.remote.base import CommandResult, Transport
from hotsite.remote.host import Host, Reachable, SSHSettings
from hotsite.remote.local import LocalTransport
from hotsite.remote.logged import LoggedTransport, current_step, secrets, step
from hotsite.remote.session import Outcome, RemoteSession

if TYPE_CHECKING:
    from hotsite.remote import hostkeys

__all__ = [
    "CommandResult",
    "Host",
    "LocalTransport",
    "LoggedTransport",
    "Outcome",
    "Reachable",
    "RemoteSession",
    "SSHSettings",
    "Transport",
    "current_step",
    "history",
    "hostkeys",
    "secrets",
    "step",
]


def __getattr__(name: str) -> Any:
    # asyncssh costs ~0.2 s to import: only commands that touch host keys pay it.
    if name == "hostkeys":
        return importlib.import_module("hotsite.remote.hostkeys")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
