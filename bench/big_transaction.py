"""One source transaction of millions of rows: time to replicate it and peak memory.

A primary and a target (private servers); ``hotsite replicate`` runs while the primary
commits a single ``INSERT … SELECT`` of ``--rows`` rows (default 5,000,000). Printed: the
source's time to commit it, hotsite's time until the target has it, and the peak RSS
(VmHWM) of each of hotsite's processes — which must not grow with the transaction:
capture hands the rows on in parts of ~2 MB of binlog, the queue to the journal is
bounded by bytes, and apply streams the parts into one target transaction.

Run: ``.venv/bin/python bench/big_transaction.py [--rows N]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from hotsite.testing.mariadb import PrivateMariaDB

HOTSITE = [sys.executable, "-m", "hotsite"]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def group_pids(leader: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == leader:
                    pids.append(int(entry.name))
            except ProcessLookupError:
                continue
    return pids


def applied_seq(target: PrivateMariaDB) -> int:
    rows = target.execute("SELECT gtid_state FROM hotsite.hotsite_applied")
    return int(str(rows[0][0]).split("-")[-1]) if rows and rows[0][0] else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hotsite-bench-bigtx-"))
    primary = PrivateMariaDB(server_id=1, extra_settings={"max-binlog-size": "1G"}).start()
    target = PrivateMariaDB(server_id=2).start()
    replicate = None
    try:
        for server in (primary, target):
            server.execute("CREATE DATABASE app")
        primary.execute("CREATE TABLE app.big (id INT PRIMARY KEY, n INT, pad VARCHAR(100))")
        config = work / "hotsite.yaml"
        sites = {"primary": primary.url(), "dr": target.url()}
        config.write_text(
            yaml.safe_dump(
                {
                    "sites": {name: {"database": url} for name, url in sites.items()},
                    "replication": [{"from": "primary", "to": "dr", "journal": str(work / "j.db")}],
                }
            )
        )
        subprocess.run([*HOTSITE, "-c", str(config), "replicate", "--until-caught-up", "-q"],
                       check=True, cwd=work)  # fmt: skip
        replicate = subprocess.Popen(
            [*HOTSITE, "-c", str(config), "replicate", "--quiet"], cwd=work, start_new_session=True
        )
        time.sleep(3)
        started = time.monotonic()
        primary.execute(
            f"INSERT INTO app.big SELECT seq, 0, REPEAT('p', 100) FROM seq_1_to_{args.rows}",
            database="app",
        )
        committed = time.monotonic() - started
        goal = int(str(primary.execute("SELECT @@gtid_binlog_pos")[0][0]).split("-")[-1])
        peaks: dict[int, float] = {}
        while applied_seq(target) < goal:
            for pid in group_pids(replicate.pid):
                try:
                    peaks[pid] = max(peaks.get(pid, 0.0), peak_rss_mib(pid))
                except OSError:
                    continue
            if replicate.poll() is not None:
                raise SystemExit("hotsite replicate exited")
            time.sleep(0.5)
        replicated = time.monotonic() - started
        count = target.execute("SELECT COUNT(*) FROM app.big")[0][0]
        print(f"one transaction of {args.rows:,} rows (INSERT … SELECT)")
        print(f"  source commit: {committed:.1f} s")
        print(f"  on the target: {replicated:.1f} s after the statement began"
              f" ({args.rows / replicated:,.0f} rows/s); target rows: {count:,}")  # fmt: skip
        for pid, mib in sorted(peaks.items()):
            role = "agent" if pid == replicate.pid else "child"
            print(f"  peak RSS {role} {pid}: {mib:.0f} MiB")
    finally:
        if replicate is not None and replicate.poll() is None:
            os.killpg(replicate.pid, signal.SIGTERM)
            replicate.wait(timeout=60)
        primary.stop()
        target.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
