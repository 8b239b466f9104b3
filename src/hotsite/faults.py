"""Named fault points: places where a crash test can make the process die on the spot.

``HOTSITE_FAULT=apply.before_commit`` makes the first call of
``fault_point("apply.before_commit")`` end the process with ``os._exit(137)`` (the exit
status of a ``kill -9``): no ``finally``, no flush, no clean shutdown, exactly like a
crash at that line. ``HOTSITE_FAULT=apply.before_commit:5`` dies at the fifth hit.

The variable is read once, at import: with it unset a fault point is one comparison of
a module global. Points (see tests/integration/test_fault_points.py):

- ``apply.before_commit``      rows and position written, target transaction not committed
- ``apply.after_commit``       target transaction committed, apply's memory not updated
- ``apply.ddl.before_run``     DDL marked in progress on the target, not yet run
- ``apply.ddl.before_position`` DDL ran on the target, its position not yet written
- ``journal.after_trim``       the capture side trimmed the journal (applied entries)
- ``ship.after_append``        the capture process appended a batch to the journal
- ``snapshot.mid_copy``        a snapshot committed one batch of a table's rows
- ``move.after_unfence``       a move made its target writable, its timeline not updated
- ``wheelhouse.before_rename`` the agent's wheelhouse is built, not yet renamed into place
"""

from __future__ import annotations

import os
import threading

FAULT_EXIT_STATUS = 137  # what a shell reports for a process killed by SIGKILL


def _parse(spec: str) -> tuple[str, int] | None:
    spec = spec.strip()
    if not spec:
        return None
    name, _, count = spec.partition(":")
    try:
        at = int(count) if count else 1
    except ValueError:
        at = 1
    return name.strip(), max(1, at)


_ARMED = _parse(os.environ.get("HOTSITE_FAULT", ""))
_hits = 0
_lock = threading.Lock()


def armed() -> bool:
    """True when this process was started with a fault point to hit."""
    return _ARMED is not None


def fault_point(name: str) -> None:
    """Die here (exit status 137) when HOTSITE_FAULT names this point and its hit count."""
    if _ARMED is None or _ARMED[0] != name:
        return
    global _hits
    with _lock:
        _hits += 1
        if _hits < _ARMED[1]:
            return
    crash(f"fault point {name} (hit {_hits})")


def crash(reason: str) -> None:
    """End the process now, like ``kill -9``, leaving one line on stderr for the test."""
    try:
        os.write(2, f"hotsite: {reason}: exiting {FAULT_EXIT_STATUS}\n".encode())
    finally:
        os._exit(FAULT_EXIT_STATUS)
