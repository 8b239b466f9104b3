"""A transaction of hundreds of thousands of rows replicates exactly, in bounded memory."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from hotsite.testing.mariadb import PrivateMariaDB
from tests.helpers import (
    applied,
    catch_up,
    kill_group,
    source_seq,
    start_replicate,
    table_checksums,
    write_config,
)

Servers = tuple[PrivateMariaDB, PrivateMariaDB]
ROWS = 300_000
# Whatever the transaction's size: parts of ~2 MB of binlog, a queue of 16 MB.
PEAK_RSS_BOUND_MB = 350


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.slow
def test_one_transaction_of_many_rows_replicates_in_bounded_memory(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute(
        "CREATE TABLE app.big (id INT PRIMARY KEY, n INT, pad VARCHAR(100))",
        f"INSERT INTO app.big SELECT seq, 0, REPEAT('p', 100) FROM seq_1_to_{ROWS}",
        database="app",
    )
    config = write_config(tmp_path, source, target)
    catch_up(config)
    replicate = start_replicate(config)
    try:
        source.execute("UPDATE app.big SET n = n + 1, pad = REPEAT('q', 100)")  # one transaction
        goal = source_seq(source)
        deadline = time.monotonic() + 300
        while int(applied(target)[0].split("-")[-1]) < goal:
            assert replicate.poll() is None, replicate.stderr.read() if replicate.stderr else ""
            assert time.monotonic() < deadline, "the big transaction did not replicate in time"
            time.sleep(0.2)
        peaks = {"agent": peak_rss_mb(replicate.pid)}
        for child in children(replicate.pid):
            peaks[f"capture {child}"] = peak_rss_mb(child)
    finally:
        kill_group(replicate, signal.SIGTERM)
    print(f"peak RSS for one {ROWS}-row transaction (MB):", peaks)
    assert len(peaks) >= 2, peaks
    assert all(mb < PEAK_RSS_BOUND_MB for mb in peaks.values()), peaks
    assert table_checksums(target) == table_checksums(source)
    assert target.execute("SELECT COUNT(*) FROM app.big WHERE n = 1") == [(ROWS,)]
