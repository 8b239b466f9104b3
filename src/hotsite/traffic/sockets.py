"""Where an HAProxy's runtime-API socket goes: a Unix socket path holds 108 bytes."""

from __future__ import annotations

import hashlib

# sun_path holds 108 bytes; HAProxy binds "<path>.<pid>.tmp" first, then renames it
SOCKET_PATH_MAX = 90


def runtime_socket(directory: str, prefix: str) -> str:
    """``<directory>/admin.sock``, unless that is too long for a Unix socket (a deep state
    directory, or a test's, exceeds it); then a short path in /tmp named after the
    directory, the same every time for the same directory."""
    path = f"{directory.rstrip('/')}/admin.sock"
    if len(path.encode()) <= SOCKET_PATH_MAX:
        return path
    digest = hashlib.sha256(directory.encode()).hexdigest()[:16]
    return f"/tmp/hotsite-{prefix}-{digest}.sock"
