"""Advisory file locks, so two hotsite processes never drive the same thing at once."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from hotsite.errors import LockedError
from hotsite.private import FILE_MODE, private_dir
from hotsite.statefiles import cannot_write


class FileLock:
    """An exclusive ``flock`` on a file; released by the kernel if the process dies."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> FileLock:
        try:
            private_dir(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except OSError as exc:
            raise cannot_write(exc.filename or self.path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise LockedError(
                f"{self.what} is in use by process {holder}",
                "wait for it to finish or stop it, then try again",
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except OSError as exc:  # the lock is held; only its note of the holder failed
            os.close(fd)
            raise cannot_write(self.path, exc) from None
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
