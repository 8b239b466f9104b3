"""hotsite's own files — the state directory, locks, status files, journals — and one
clear line when they cannot be written.

A read-only state directory (a remounted file system, a wrong owner) is found before a
command touches any server, and every later OSError on these files names the path and
the fix instead of ending in a traceback.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from hotsite.errors import StateError
from hotsite.private import private_dir, write_private

STATE_DIR_HINT = "make it writable, or set state_dir in the project file to a writable directory"


def cannot_write(path: Path | str, exc: OSError, hint: str = STATE_DIR_HINT) -> StateError:
    reason = exc.strerror or type(exc).__name__
    return StateError(f"cannot write {path} ({reason})", hint)


def require_writable_dir(directory: Path, hint: str = STATE_DIR_HINT) -> None:
    """Create ``directory`` if needed and prove a file can be written in it.

    Tried, not asked (``os.access``): root passes access checks that a read-only
    mount or an immutable directory still refuses.
    """
    try:
        private_dir(directory)
        fd, probe = tempfile.mkstemp(prefix=".hotsite-probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise cannot_write(exc.filename or directory, exc, hint) from None


class StatusFile:
    """A status file rewritten at most once per ``every`` seconds while what it says
    stays the same: an idle agent polls its duties four times a second, and writing two
    files each time was most of what it burnt doing nothing. A change of ``shape``
    (running, failed, a new warning) is written at once, so whoever waits for it (a
    test, a move) waits no longer; readers count a file older than a few seconds as no
    agent (replication.status.STALE_AFTER), so once a second keeps it fresh."""

    def __init__(self, path: Path, every: float = 1.0) -> None:
        self.path = path
        self.every = every
        self._shape: object = None
        self._written_at = float("-inf")

    def write(self, text: str, shape: object, force: bool = False) -> None:
        now = time.monotonic()
        if not force and shape == self._shape and now - self._written_at < self.every:
            return
        write_private(self.path, text)
        self._shape, self._written_at = shape, now
