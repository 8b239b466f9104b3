"""hotsite's own files are private: directories 0700, files 0600, whatever the umask.

Journals hold full row images of the replicated databases; the state store holds the
command log, host keys and leases; status files and locks name servers and processes.
Nobody but the user running hotsite may read them, so every directory hotsite makes
for them is created 0700 and every file 0600 — and a file hotsite opens that an older
version left readable is tightened when it is opened.

SQLite creates a database's ``-wal``, ``-shm`` and ``-journal`` files itself. It gives
them the permission bits of the database file (``findCreateFileMode`` in its
``os_unix.c``, then an ``fchmod``, so the umask does not matter): creating the database
file 0600 *before* SQLite opens it is what makes those private too.

Directories that exist already are not changed (``state_dir`` may be one the user
made); ``sharing_warnings`` says when one of them is open to other users.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents with mode 0700; existing ones stay as
    they are. (``Path.mkdir(parents=True)`` would give the parents the umask's mode.)"""
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:  # made by a process running at the same time
            continue
        os.chmod(directory, DIR_MODE)  # mkdir's mode passes through the umask
    return path


def private_file(path: Path) -> Path:
    """Make sure ``path`` exists with mode 0600 (created empty if missing; an existing
    file of ours that others may read is tightened)."""
    private_dir(path.parent)
    _tighten_path(path, os.O_RDWR | os.O_CREAT)
    return path


def private_sqlite(path: Path) -> Path:
    """Prepare a SQLite database file before ``sqlite3.connect``: the file 0600, so the
    ``-wal``/``-shm`` SQLite creates next to it are 0600 too; companions an older
    version left readable are tightened.

    Files that exist are tightened by path, never opened: SQLite's locks are POSIX
    advisory locks, which belong to the process, and closing *any* descriptor of the
    file drops them all — so an open-and-close here, while another connection of this
    process holds the database (a controller opening a second store for a move), left
    that connection unlocked, and SQLite then failed with 'disk I/O error'."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        _tighten_by_path(path)
    else:
        os.close(fd)  # a new file: no connection of ours can hold it yet
    for suffix in SQLITE_COMPANIONS:
        try:
            _tighten_by_path(path.with_name(path.name + suffix))
        except FileNotFoundError:
            continue
    return path


def _tighten_by_path(path: Path) -> None:
    info = os.stat(path)
    if info.st_mode & 0o077 and info.st_uid == os.geteuid():
        os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o077 | FILE_MODE)


def _tighten_path(path: Path, flags: int) -> None:
    # Look by path first, and open the file only when it must be made or tightened:
    # closing *any* descriptor of a file drops every POSIX lock this process holds on
    # it, and SQLite's locks on a database and its -wal/-shm are POSIX locks. A second
    # StateStore opened in a process (the agent's healing and bursting open some while
    # other duties write) then silently released the first one's locks: its writes
    # stayed invisible to other processes until it exited.
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if not flags & os.O_CREAT:
            raise
    else:
        if not (info.st_mode & 0o077 and info.st_uid == os.geteuid()):
            return
    fd = os.open(path, flags | os.O_CLOEXEC, FILE_MODE)
    try:
        _tighten(fd)
    finally:
        os.close(fd)


def open_private(path: Path) -> int:
    """A file descriptor for writing ``path`` (created 0600, truncated)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    _tighten(fd)
    return fd


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``: a 0600 temporary file renamed over it,
    so a reader sees the old content or the new, never a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    fd = open_private(tmp)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    tmp.replace(path)


def _tighten(fd: int) -> None:
    info = os.fstat(fd)
    if info.st_mode & 0o077 and info.st_uid == os.geteuid():
        os.fchmod(fd, stat.S_IMODE(info.st_mode) & ~0o077 | FILE_MODE)


def sharing_warnings(project_dir: Path, state_home: Path) -> list[str]:
    """One line each: a project directory others may write to (they could replace the
    project file, the blueprints and their scripts, which run on every node), and a
    state directory others may enter (made by hand, or by an older hotsite)."""
    warnings: list[str] = []
    mode = _mode(project_dir)
    if mode is not None and mode & 0o022:
        warnings.append(
            f"the project directory {project_dir} is writable by other users"
            f" (mode {mode:04o}); they could change the project file and the scripts it"
            f" runs: chmod go-w {project_dir}"
        )
    mode = _mode(state_home)
    if mode is not None and mode & 0o077:
        warnings.append(
            f"the state directory {state_home} is open to other users (mode {mode:04o});"
            f" its journals hold whole rows of the databases: chmod 700 {state_home}"
        )
    return warnings


def _mode(path: Path) -> int | None:
    try:
        info = path.stat()
    except OSError:
        return None
    # Sticky world-writable directories (/tmp) still let others create files beside
    # ours, but not replace them; the warning is for directories without that guard.
    if info.st_mode & stat.S_ISVTX:
        return stat.S_IMODE(info.st_mode) & ~0o022
    return stat.S_IMODE(info.st_mode)
