"""Every process the demo starts, recorded by PID in its directory (``pids.json``), so
that the end of the demo, Ctrl-C, or ``hotsite demo --stop DIR`` after ``--keep`` stops
exactly those — never a process found by its name.

A PID is only ever signalled while it still names the process that was recorded: its
start time (``/proc/PID/stat`` field 22) is kept with it, so a PID the kernel gave to
another process since is left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PIDS_FILE = "pids.json"


@dataclass(frozen=True)
class Recorded:
    name: str
    pid: int
    started: int  # /proc/PID/stat starttime: the PID's identity
    group: bool = False  # it leads a process group of its own: signal the whole group


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks; None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def alive(entry: Recorded) -> bool:
    return start_time(entry.pid) == entry.started


class Processes:
    """The demo's processes: started here (``spawn``) or by a command that daemonises
    (``adopt`` a PID read from its pid file). Written to ``pids.json`` on every change."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / PIDS_FILE
        self.entries: dict[str, Recorded] = {}
        self.popens: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def spawn(
        self, name: str, argv: Sequence[str], log: Path, env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:  # fmt: skip
        # A session of its own: the terminal's Ctrl-C reaches the demo alone, which then
        # stops everything in order (the agents before the databases they write to).
        with log.open("ab") as out:
            process = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=env, cwd=cwd, start_new_session=True,
            )  # fmt: skip
        self.popens[name] = process
        # Its children (an agent's capture processes) are in its group: a kill -9 of the
        # agent alone would leave them running, orphaned.
        self.adopt(name, process.pid, group=True)
        return process

    def adopt(self, name: str, pid: int, group: bool = False) -> None:
        started = start_time(pid)
        if started is None:
            return
        with self._lock:
            self.entries[name] = Recorded(name, pid, started, group)
            self._save()

    def stop(self, name: str, grace: float = 5.0, sig: int = signal.SIGTERM) -> None:
        with self._lock:
            entry = self.entries.pop(name, None)
            self._save()
        process = self.popens.pop(name, None)
        if entry is not None:
            terminate([entry], grace, sig)
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1)  # reap it: no zombie left behind

    def kill(self, name: str) -> None:
        """``kill -9``: the crash case."""
        self.stop(name, grace=0.0, sig=signal.SIGKILL)

    def stop_all(self, grace: float = 5.0, servers: tuple[str, ...] = ("mariadbd",)) -> None:
        """Everything at once, the database servers last (their clients first)."""
        with self._lock:
            entries = list(self.entries.values())
        last = [e for e in entries if e.name.endswith(servers)]
        terminate([e for e in entries if e not in last], grace)
        terminate(last, grace)
        with self._lock:
            self.entries.clear()
            self._save()
        for process in self.popens.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1)
        self.popens.clear()

    def _save(self) -> None:
        body = [entry.__dict__ for entry in self.entries.values()]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, indent=1))
        tmp.replace(self.path)


def load(directory: Path) -> list[Recorded]:
    try:
        body = json.loads((directory / PIDS_FILE).read_text())
    except (OSError, ValueError):
        return []
    return [
        Recorded(str(e["name"]), int(e["pid"]), int(e["started"]), bool(e.get("group")))
        for e in body
    ]


def terminate(entries: Sequence[Recorded], grace: float, sig: int = signal.SIGTERM) -> None:
    """Signal each still-recorded process, wait up to ``grace`` seconds, then SIGKILL."""
    for entry in entries:
        if alive(entry):
            _signal(entry, sig)
    deadline = time.monotonic() + grace
    while any(alive(e) for e in entries) and time.monotonic() < deadline:
        time.sleep(0.05)
    for entry in entries:
        if alive(entry) or entry.group:
            _signal(entry, signal.SIGKILL)  # a group's children may outlive their leader
    deadline = time.monotonic() + 5
    while any(alive(e) for e in entries) and time.monotonic() < deadline:
        time.sleep(0.02)


def _signal(entry: Recorded, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if entry.group and alive(entry):
            os.killpg(entry.pid, sig)  # a live leader: its group is still ours
        elif alive(entry):
            os.kill(entry.pid, sig)
