"""When each transaction passed each stage: for finding where lag goes (benches).

Off unless ``HOTSITE_STAGE_TRACE`` names a directory. Then each stage appends
``stage gtid epoch-seconds`` lines to a file of its own process there: capture (the
transaction decoded), ship (taken from the queue, then in the journal and fsynced) and
apply (read from the journal, then committed at the target). A bench joins them on the
GTID with the source commit times it saw itself (bench/replication_vs_native.py).
Buffered, flushed about once a second: a few µs a transaction, none when off.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

ENV = "HOTSITE_STAGE_TRACE"
FLUSH_EVERY = 1.0


class StageTrace:
    def __init__(self, name: str) -> None:
        directory = os.environ.get(ENV)
        self.enabled = bool(directory)
        self._file: TextIO | None = None
        self._lock = threading.Lock()
        self._flushed = 0.0
        self._gc_started = 0.0
        self._pauses: list[str] = []
        if directory:
            path = Path(directory) / f"{name}-{os.getpid()}.trace"
            self._file = path.open("a", buffering=1 << 16)
            gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        """Collections of this process that took a millisecond or more: ``gc-GEN ms``."""
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        took = time.perf_counter() - self._gc_started
        if took >= 0.001:  # written by the next note: no file writes inside a collection
            self._pauses.append(f"gc{info.get('generation')} {took * 1000:.1f} {time.time():.6f}\n")

    def note(self, stage: str, gtids: Iterable[str], at: float | None = None) -> None:
        if self._file is None:
            return
        at = time.time() if at is None else at
        with self._lock:
            self._file.writelines(f"{stage} {gtid} {at:.6f}\n" for gtid in gtids)
            while self._pauses:
                self._file.write(self._pauses.pop())
            if at - self._flushed > FLUSH_EVERY:
                self._file.flush()
                self._flushed = at

    def close(self) -> None:
        if self._file is not None:
            if self._gc in gc.callbacks:
                gc.callbacks.remove(self._gc)
            with self._lock:
                self._file.close()
                self._file = None


def read_traces(directory: Path) -> dict[str, dict[str, float]]:
    """gtid -> {stage: first time it passed that stage} over every trace file."""
    passed: dict[str, dict[str, float]] = {}
    for path in sorted(directory.glob("*.trace")):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) != 3 or parts[0].startswith("gc"):
                continue  # a line cut by a kill, or a collection (gc_pauses)
            stage, gtid, at = parts
            stages = passed.setdefault(gtid, {})
            stages[stage] = min(stages.get(stage, float(at)), float(at))
    return passed


def gc_pauses(directory: Path, since: float = 0.0) -> dict[str, list[float]]:
    """Per trace file (process), the collections of 1 ms or more that ended after
    ``since`` (epoch seconds): their durations, ms."""
    pauses: dict[str, list[float]] = {}
    for path in sorted(directory.glob("*.trace")):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0].startswith("gc") and float(parts[2]) >= since:
                pauses.setdefault(path.stem, []).append(float(parts[1]))
    return pauses
