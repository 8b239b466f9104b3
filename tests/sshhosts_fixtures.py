"""Fixtures for tests that need real SSH hosts (network namespaces running sshd).

Imported by tests/integration/conftest.py. ``ssh_hosts`` is the factory: call
``ssh_hosts.create(3, private_dirs=["/opt"])``; every host is torn down after the test,
pass or fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotsite.testing.sshhosts import SSHD, SSHHost, SSHHostFactory


def missing_for_ssh_hosts() -> str | None:
    """Why SSH test hosts cannot be made on this machine, or None."""
    if os.geteuid() != 0:
        return "SSH test hosts are network namespaces: they need root"
    if not shutil.which("ip"):
        return "SSH test hosts need iproute2 (`ip`; scripts/bootstrap installs it)"
    if not Path(SSHD).exists():
        return "SSH test hosts need openssh-server (`sshd`; scripts/bootstrap installs it)"
    return None


def needs_commands(*commands: str) -> pytest.MarkDecorator:
    """Skip, naming them, when commands a test runs are not installed."""
    missing = [c for c in commands if not shutil.which(c) and not Path(f"/usr/sbin/{c}").exists()]
    return pytest.mark.skipif(
        bool(missing), reason=f"needs {', '.join(missing)} (scripts/bootstrap installs it)"
    )


needs_ssh_hosts = pytest.mark.skipif(
    missing_for_ssh_hosts() is not None, reason=missing_for_ssh_hosts() or ""
)


@pytest.fixture
def ssh_hosts(tmp_path: Path) -> Iterator[SSHHostFactory]:
    reason = missing_for_ssh_hosts()
    if reason:
        pytest.skip(reason)
    factory = SSHHostFactory(tmp_path / "sshhosts")
    try:
        yield factory
    finally:
        factory.stop()


def pool_config(
    directory: Path,
    factory: SSHHostFactory,
    hosts: list[SSHHost],
    *,
    tags: list[dict[str, str]] | None = None,
    pool: dict[str, Any] | None = None,
    ssh: dict[str, Any] | None = None,
    providers: dict[str, Any] | None = None,
) -> Path:
    """A project file with one BYON pool ``rack`` made of ``hosts``."""
    entries = [
        {
            "name": f"h{i + 1}",
            "address": h.address,
            "port": h.port,
            "tags": (tags or [{}] * len(hosts))[i],
        }
        for i, h in enumerate(hosts)
    ]
    config = {
        "sites": {
            "primary": {"database": "mysql://root@127.0.0.1:1/app"},
            "dr": {"database": "mysql://root@127.0.0.1:1/app"},
        },
        "nodes": {
            "ssh": {"key": str(factory.client_key_path), "connect_timeout": 3, **(ssh or {})},
            "providers": {
                "rack": {"driver": "byon", "hosts": entries, **(pool or {})},
                **(providers or {}),
            },
        },
    }
    path = directory / "hotsite.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
