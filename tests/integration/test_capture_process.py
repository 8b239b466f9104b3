"""The capture process never outlives the agent that started it — also when that agent
died while the process was still starting (it once compared against the parent it found
itself, by then already the init process, and ran on for good)."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

from hotsite.dburl import DatabaseURL
from hotsite.replication.capture.process import CaptureJob, run_capture_side
from hotsite.testing.mariadb import PrivateMariaDB

Servers = tuple[PrivateMariaDB, PrivateMariaDB]


def _dead_pid() -> int:
    pid = 4_000_000
    while Path(f"/proc/{pid}").exists():
        pid += 1
    return pid


def _start_capture(
    source: PrivateMariaDB, tmp_path: Path, server_id: int, parent_pid: int
) -> tuple[Any, Any]:
    """A capture process of a link from ``source``, started as an agent starts it."""
    job = CaptureJob(
        source_url=DatabaseURL.parse(source.url()),
        source_site="primary",
        link_name="primary-to-dr",
        server_id=server_id,
        patterns=(),
        journal_path=str(tmp_path / "journal.db"),
        heartbeat_interval=0,
        parent_pid=parent_pid,
    )
    ctx = multiprocessing.get_context("spawn")
    report = ctx.Queue()
    process = ctx.Process(target=run_capture_side, args=(job, report), daemon=True)
    process.start()
    return process, report


def test_a_capture_process_whose_agent_is_gone_at_its_start_stops(
    source_and_target: Servers, tmp_path: Path
) -> None:
    # the agent that started it is no longer there
    process, report = _start_capture(source_and_target[0], tmp_path, 4242, _dead_pid())
    try:
        process.join(timeout=30)
        assert not process.is_alive(), "the capture process ran on without its agent"
        assert process.exitcode == 0
    finally:
        if process.is_alive():
            process.kill()
            process.join()
        report.close()
        report.join_thread()


def test_a_capture_process_with_its_agent_alive_runs_on(
    source_and_target: Servers, tmp_path: Path
) -> None:
    process, report = _start_capture(source_and_target[0], tmp_path, 4243, os.getpid())
    try:
        time.sleep(5)
        assert process.is_alive()
    finally:
        process.terminate()  # SIGTERM: it stops cleanly
        process.join(timeout=30)
        assert process.exitcode == 0
        report.close()
        report.join_thread()
