"""Running commands and moving files on nodes: ssh (asyncssh) and local transports.

Public API: ``RemoteSession`` (a transport per node, fan-out), ``Transport`` and
``CommandResult`` (the contract), ``LocalTransport``, ``step``/``secrets`` (label and
redact what the command log records) and ``history`` (query the command log).
"""

from hotsite.remote import history
from hotsite.remote.base import CommandResult, Transport
from hotsite.remote.local import LocalTransport
from hotsite.remote.logged import LoggedTransport, secrets, step
from hotsite.remote.session import Outcome, RemoteSession

__all__ = [
    "CommandResult",
    "LocalTransport",
    "LoggedTransport",
    "Outcome",
    "RemoteSession",
    "Transport",
    "history",
    "secrets",
    "step",
]
