"""A readers-writer lock across the processes of one parallel test session.

Most tests share the machine; a test that cannot (it times something against the whole
machine, or changes something machine-wide) takes the lock alone. Two flock files in a
directory every worker of the session sees: each test passes the gate and then holds
the share lock shared; an alone test holds the gate while it waits for the running
tests to end and while it runs, so no test starts meanwhile (without the gate a steady
stream of shared holders could keep it waiting forever).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def machine_share(directory: Path, alone: bool) -> Iterator[None]:
    gate = os.open(directory / "alone.gate", os.O_RDWR | os.O_CREAT, 0o600)
    share = os.open(directory / "alone.share", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(gate, fcntl.LOCK_EX)
        if alone:
            fcntl.flock(share, fcntl.LOCK_EX)
        else:
            fcntl.flock(share, fcntl.LOCK_SH)
            fcntl.flock(gate, fcntl.LOCK_UN)
        yield
    finally:
        os.close(share)  # closing releases what it holds
        os.close(gate)
