"""What a transport needs to reach a machine: an address and credentials, nothing more.

``remote`` works for anything that can say where it is (a driver's node, a test host, a
bastion); it never imports the node drivers. A caller hands over a ``Host``, or a value
with a ``host`` property (``hotsite.nodes.Node`` is one), and gets that same value back
in the fan-out's outcomes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Host:
    """One machine as a transport sees it."""

    name: str  # how commands, logs and errors name it
    address: str
    port: int = 22
    user: str | None = None  # None: the session's default user (``SSHSettings.user``)
    key: str | None = None  # a private key's path; None: the session's default key
    jump: str | None = None  # "[user@]host[:port]" of a bastion to reach it through
    site: str | None = None  # recorded with its commands in the command log
    local: bool = False  # this machine: run commands directly, no SSH

    @property
    def host(self) -> Host:
        return self

    @property
    def where(self) -> str:
        return f"{self.address}:{self.port}"


class Reachable(Protocol):
    """Anything a session can connect to: it says which host it is."""

    @property
    def host(self) -> Host: ...


@dataclass(frozen=True)
class SSHSettings:
    """How hotsite reaches hosts; from ``nodes.ssh`` in the project file and the CLI."""

    user: str = "root"
    key: Path | None = None  # private key; the public one is ``key`` + ``.pub``
    connect_timeout: float = 10.0
    concurrency: int = 32
    accept_new_host_keys: bool = False
    jump: str | None = None  # default bastion, "[user@]host[:port]"
    agent: bool = False  # also offer the keys of ssh-agent ($SSH_AUTH_SOCK)

    @property
    def agent_socket(self) -> str | None:
        return os.environ.get("SSH_AUTH_SOCK")

    def public_key(self) -> str | None:
        if self.key is None:
            return None
        pub = Path(str(self.key) + ".pub")
        return pub.read_text().strip() if pub.exists() else None
