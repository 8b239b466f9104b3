"""Fixtures for integration tests."""

# ---- SSH test hosts (network namespaces + real sshd), owned by the nodes work ----
from tests.sshhosts_fixtures import ssh_hosts  # noqa: F401
