"""hotsite vs a native MariaDB replica, fed from the same primary in the same run.

Three private servers: a primary under sysbench ``oltp_write_only``, a native replica
(``MASTER_USE_GTID=slave_pos``, single-threaded apply, the MariaDB default) and a target
fed by ``hotsite replicate``. Printed:

1. under load (sysbench at full speed): the primary's TPS, each target's apply rate and
   its catch-up time once the load stops;
2. on a backlog (both stopped while sysbench runs, then started one at a time, alone on
   the machine): each target's apply rate;
3. at 50% of the primary's measured maximum rate: commit-to-visible lag p50/p99 of both,
   from a probe row written every 100 ms and polled on each target;
4. a backlog of ``--backlog-transactions`` small transactions (default 1,000,000): the
   apply rate of both and the peak RSS of hotsite's processes, sampled while it drains
   (memory must stay flat however large the backlog is).

Run: ``make bench`` or ``.venv/bin/python bench/replication_vs_native.py [--help]``.
Figures depend on the machine and on what else runs on it: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from hotsite.testing.mariadb import PrivateMariaDB
from hotsite.testing.sysbench import run_sysbench

HOTSITE = [sys.executable, "-m", "hotsite"]
SYSBENCH_TABLES = 4


# --- servers and load -------------------------------------------------------------------


def sysbench(server: PrivateMariaDB, command: str, *extra: str) -> str:
    return run_sysbench(server, command, *extra, table_size=10000)


def sysbench_tps(output: str) -> float:
    match = re.search(r"transactions:\s+\d+\s+\(([\d.]+) per sec", output)
    return float(match.group(1)) if match else 0.0


def gtid_seq(position: object) -> int:
    """Sequence number of domain 0 in a GTID position like ``0-1-1234``."""
    for part in str(position or "").split(","):
        domain, _, seq = part.strip().split("-") if part.strip() else ("", "", "0")
        if domain == "0":
            return int(seq)
    return 0


def primary_seq(primary: PrivateMariaDB) -> int:
    return gtid_seq(primary.execute("SELECT @@gtid_binlog_pos")[0][0])


def native_seq(replica: PrivateMariaDB) -> int:
    return gtid_seq(replica.execute("SELECT @@gtid_slave_pos")[0][0])


def hotsite_seq(target: PrivateMariaDB) -> int:
    try:
        rows = target.execute(
            "SELECT gtid_state FROM hotsite.hotsite_applied WHERE origin = 'primary'"
        )
    except Exception:  # the hotsite schema is created on the first apply
        return 0
    return gtid_seq(rows[0][0]) if rows else 0


def start_native(replica: PrivateMariaDB, primary: PrivateMariaDB) -> None:
    replica.execute(
        f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary.port},"
        " MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos,"
        " MASTER_CONNECT_RETRY=1",
        "START SLAVE",
    )


class Hotsite:
    """``hotsite replicate`` for the bench's link, started and stopped by its PID."""

    def __init__(self, directory: Path, primary: PrivateMariaDB, target: PrivateMariaDB) -> None:
        self.config = directory / "hotsite.yaml"
        link = {"from": "primary", "to": "dr", "tables": ["sbtest.*", "bench.*"]}
        sites = {"primary": primary.url("sbtest"), "dr": target.url("sbtest")}
        project = {
            "sites": {name: {"database": url} for name, url in sites.items()},
            "replication": [link],
        }
        self.config.write_text(yaml.safe_dump(project, sort_keys=False))
        self.process: subprocess.Popen[bytes] | None = None

    def catch_up(self) -> None:
        subprocess.run(
            [*HOTSITE, "-c", str(self.config), "replicate", "--until-caught-up", "--quiet"],
            check=True,
            cwd=self.config.parent,
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            [*HOTSITE, "-c", str(self.config), "replicate", "--quiet"],
            cwd=self.config.parent,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=60)
        self.process = None

    def rss_mib(self) -> float:
        """Resident memory of the replicate process and its capture child, in MiB."""
        if not self.process:
            return 0.0
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.getpgid(int(entry.name)) != self.process.pid:
                    continue
                status = (entry / "status").read_text()
            except (OSError, ProcessLookupError):
                continue
            match = re.search(r"VmRSS:\s+(\d+) kB", status)
            total += int(match.group(1)) if match else 0
        return total / 1024


def wait_for(
    target_seq: Callable[[], int], goal: int, timeout: float = 3600, every: float = 0.05
) -> float:
    """Seconds until ``target_seq()`` reaches ``goal``."""
    started = time.monotonic()
    while target_seq() < goal:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"target stuck at {target_seq()} of {goal}")
        time.sleep(every)
    return time.monotonic() - started


def wait_for_each(
    targets: dict[str, Callable[[], int]], goal: int, timeout: float = 3600
) -> dict[str, float]:
    """Seconds until each target reaches ``goal``, all watched at once (so one's wait is
    not counted as the other's catch-up)."""
    started = time.monotonic()
    reached: dict[str, float] = {}
    while len(reached) < len(targets):
        for name, seq in targets.items():
            if name not in reached and seq() >= goal:
                reached[name] = time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not caught up: {sorted(set(targets) - set(reached))}")
        time.sleep(0.02)
    return reached


# --- lag probe --------------------------------------------------------------------------


class LagProbe:
    """Writes a probe row every ``interval`` s on the primary; one thread per target polls
    for it and records commit-to-visible delay. Measures what a user would see, on both
    kinds of target alike, whatever each reports about itself."""

    def __init__(self, primary: PrivateMariaDB, targets: dict[str, PrivateMariaDB]) -> None:
        self.primary = primary
        self.targets = targets
        self.committed: dict[int, float] = {}
        self.lags: dict[str, list[float]] = {name: [] for name in targets}
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, interval: float = 0.1) -> None:
        self.threads = [threading.Thread(target=self._write, args=(interval,), daemon=True)]
        self.threads += [
            threading.Thread(target=self._watch, args=(name,), daemon=True) for name in self.targets
        ]
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        time.sleep(1.0)  # let the last probes arrive
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=10)

    def _write(self, interval: float) -> None:
        conn = self.primary.connect("bench")
        probe = 0
        with conn.cursor() as cur:
            while not self.stop_event.is_set():
                probe += 1
                cur.execute("INSERT INTO probe VALUES (%s)", (probe,))
                self.committed[probe] = time.monotonic()
                time.sleep(interval)
        conn.close()

    def _watch(self, name: str) -> None:
        conn = self.targets[name].connect()
        seen = 0
        with conn.cursor() as cur:
            while not self.stop_event.is_set():
                try:
                    cur.execute("SELECT MAX(id) FROM bench.probe")
                    latest = int((cur.fetchone() or (0,))[0] or 0)
                except Exception:  # the table has not reached this target yet
                    latest = 0
                now = time.monotonic()
                for probe in range(seen + 1, latest + 1):
                    if probe in self.committed:
                        self.lags[name].append(now - self.committed[probe])
                seen = max(seen, latest)
                time.sleep(0.002)
        conn.close()

    def percentiles(self, name: str) -> tuple[float, float, int]:
        lags = sorted(self.lags[name])
        if len(lags) < 2:
            return float("nan"), float("nan"), len(lags)
        cuts = statistics.quantiles(lags, n=100)
        return cuts[49], cuts[98], len(lags)


# --- the run ----------------------------------------------------------------------------


def small_backlog(primary: PrivateMariaDB, transactions: int) -> None:
    """``transactions`` single-row transactions, generated fast inside the server."""
    primary.execute(
        "SET GLOBAL innodb_flush_log_at_trx_commit = 2",
        "SET GLOBAL sync_binlog = 0",
        "CREATE TABLE IF NOT EXISTS sbtest.backlog (id INT PRIMARY KEY, n INT)",
        f"INSERT INTO sbtest.backlog SELECT seq, 0 FROM seq_1_to_{min(transactions, 50000)}"
        " ON DUPLICATE KEY UPDATE n = n",
        "CREATE OR REPLACE PROCEDURE sbtest.churn(count INT)"
        " BEGIN DECLARE i INT DEFAULT 0;"
        " WHILE i < count DO UPDATE sbtest.backlog SET n = n + 1 WHERE id = 1 + i % 50000;"
        " SET i = i + 1; END WHILE; END",
        database="sbtest",
    )
    primary.execute(f"CALL sbtest.churn({transactions})")
    primary.execute("SET GLOBAL innodb_flush_log_at_trx_commit = 1", "SET GLOBAL sync_binlog = 1")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load-seconds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--lag-seconds", type=int, default=30)
    parser.add_argument("--backlog-transactions", type=int, default=1_000_000)
    args = parser.parse_args()

    # SIGTERM stops the run like Ctrl-C: the finally below stops every server it started.
    signal.signal(signal.SIGTERM, _interrupt)
    servers = [PrivateMariaDB(server_id=i) for i in (1, 2, 3)]
    workdir = Path(tempfile.mkdtemp(prefix="hotsite-bench-"))
    hotsite: Hotsite | None = None
    try:
        primary, native, target = (s.start() for s in servers)
        primary.execute("CREATE DATABASE sbtest", "CREATE DATABASE bench")
        primary.execute("CREATE TABLE bench.probe (id INT PRIMARY KEY)")
        start_native(native, primary)
        sysbench(primary, "prepare", "--threads=4")
        hotsite = Hotsite(workdir, primary, target)
        hotsite.catch_up()  # snapshot, then stream to the primary's position
        wait_for(lambda: native_seq(native), primary_seq(primary))
        print(f"servers ready; {SYSBENCH_TABLES} sysbench tables of 10,000 rows on each target")

        # 1. Under load.
        hotsite.start()
        before = {"native": native_seq(native), "hotsite": hotsite_seq(target)}
        load_start_seq = primary_seq(primary)
        started = time.monotonic()
        output = sysbench(
            primary, "run", f"--threads={args.threads}", f"--time={args.load_seconds}"
        )
        elapsed = time.monotonic() - started
        stop_seq = primary_seq(primary)
        applied_during = {
            "native": native_seq(native) - before["native"],
            "hotsite": hotsite_seq(target) - before["hotsite"],
        }
        catch_up = wait_for_each(
            {"native": lambda: native_seq(native), "hotsite": lambda: hotsite_seq(target)},
            stop_seq,
        )
        catch_up_native, catch_up_hotsite = catch_up["native"], catch_up["hotsite"]
        max_tps = sysbench_tps(output)
        produced = stop_seq - load_start_seq
        print(f"\n1. under load ({args.threads} threads, {args.load_seconds} s)")
        print(f"   primary: {max_tps:,.0f} TPS (sysbench); {produced:,} transactions")
        rate_native = applied_during["native"] / elapsed
        rate_hotsite = applied_during["hotsite"] / elapsed
        print(f"   native replica apply: {rate_native:,.0f} tx/s, catch-up {catch_up_native:.2f} s")
        print(
            f"   hotsite apply:        {rate_hotsite:,.0f} tx/s, catch-up {catch_up_hotsite:.2f} s"
        )
        print(f"   ratio hotsite/native apply rate: {rate_hotsite / max(rate_native, 1e-9):.2f}")

        # 2. Backlog of sysbench transactions, each target draining it alone.
        native.execute("STOP SLAVE")
        hotsite.stop()
        base = primary_seq(primary)
        sysbench(primary, "run", f"--threads={args.threads}", f"--time={args.load_seconds}")
        goal = primary_seq(primary)
        backlog = goal - base
        native.execute("START SLAVE")
        drain_native = wait_for(lambda: native_seq(native), goal)
        hotsite.start()
        drain_hotsite = wait_for(lambda: hotsite_seq(target), goal)
        print(f"\n2. backlog of {backlog:,} sysbench transactions, each target alone")
        print(f"   native replica: {backlog / drain_native:,.0f} tx/s ({drain_native:.1f} s)")
        print(f"   hotsite:        {backlog / drain_hotsite:,.0f} tx/s ({drain_hotsite:.1f} s)")
        print(f"   ratio hotsite/native: {drain_native / drain_hotsite:.2f}")

        # 3. Lag at half the primary's maximum rate.
        half = max(1, int(max_tps / 2))
        probe = LagProbe(primary, {"native": native, "hotsite": target})
        probe.start()
        sysbench(
            primary,
            "run",
            f"--threads={args.threads}",
            f"--time={args.lag_seconds}",
            f"--rate={half}",
        )
        probe.stop()
        print(f"\n3. commit-to-visible lag at {half:,} TPS (50% of maximum), probe every 100 ms")
        for name in ("native", "hotsite"):
            p50, p99, count = probe.percentiles(name)
            print(
                f"   {name:8s} p50 {p50 * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms   ({count} probes)"
            )

        # 4. A large backlog of small transactions: rate and hotsite's memory.
        if args.backlog_transactions:
            wait_for(lambda: hotsite_seq(target), primary_seq(primary))
            native.execute("STOP SLAVE")
            hotsite.stop()
            base = primary_seq(primary)
            made = time.monotonic()
            small_backlog(primary, args.backlog_transactions)
            goal = primary_seq(primary)
            print(
                f"\n4. backlog of {goal - base:,} single-row transactions"
                f" (generated in {time.monotonic() - made:.0f} s)"
            )
            native.execute("START SLAVE")
            drain_native = wait_for(lambda: native_seq(native), goal, every=0.5)
            hotsite.start()
            samples: list[float] = []
            drain_hotsite = wait_for(
                lambda: (samples.append(hotsite.rss_mib()), hotsite_seq(target))[1],
                goal,
                every=0.5,
            )
            backlog = goal - base
            print(f"   native replica: {backlog / drain_native:,.0f} tx/s ({drain_native:.1f} s)")
            print(f"   hotsite:        {backlog / drain_hotsite:,.0f} tx/s ({drain_hotsite:.1f} s)")
            print(f"   ratio hotsite/native: {drain_native / drain_hotsite:.2f}")
            quarter = max(1, len(samples) // 4)
            print(
                f"   hotsite RSS (replicate + capture processes): peak {max(samples):.0f} MiB,"
                f" first quarter max {max(samples[:quarter]):.0f} MiB,"
                f" last quarter max {max(samples[-quarter:]):.0f} MiB"
            )
    finally:
        if hotsite:
            hotsite.stop()
        for server in servers:
            if server.process:
                server.stop()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


if __name__ == "__main__":
    main()
