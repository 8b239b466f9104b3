"""hotsite vs a native MariaDB replica, fed from the same primary in the same run.

Four private servers: a primary under sysbench ``oltp_write_only``, a native replica
(``MASTER_USE_GTID=slave_pos``, single-threaded apply, the MariaDB default), a second
native replica with ``slave_parallel_threads=4`` (optimistic mode; run only in part 2)
and a target fed by ``hotsite replicate``. Printed (``--parts`` picks some):

1. ``load``: under load (sysbench at full speed): the primary's TPS, each target's apply
   rate and its catch-up time once the load stops;
2. ``backlog``: on a backlog (every target stopped while sysbench runs, then started one
   at a time, alone on the machine): each target's apply rate;
3. ``lag``: at 50% of the primary's measured maximum rate: commit-to-visible lag p50/p99
   of hotsite and the single-threaded replica, from a probe row written every 100 ms and
   polled on each target; then where hotsite's lag went, stage by stage (source commit,
   decoded, shipped, journaled and fsynced, read by apply, committed at the target,
   seen), from the probes' GTIDs joined with hotsite's stage trace
   (hotsite/replication/trace.py), and the Python collections of 1 ms or more;
4. ``small``: a backlog of ``--backlog-transactions`` small transactions (default
   1,000,000): the apply rate of both and the peak RSS of hotsite's processes, sampled
   while it drains (memory must stay flat however large the backlog is);
5. ``wan``: parts 2 and 3 again with the source behind a delay proxy
   (hotsite.testing.delay_proxy, ``--wan-delay`` s each way, 25 ms by default) for hotsite and
   the single-threaded replica alike.

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

from hotsite.replication.trace import ENV as TRACE_ENV
from hotsite.replication.trace import gc_pauses, read_traces
from hotsite.testing.mariadb import PrivateMariaDB, free_port
from hotsite.testing.sysbench import run_sysbench

HOTSITE = [sys.executable, "-m", "hotsite"]
SYSBENCH_TABLES = 4
PARALLEL_THREADS = 4  # the native replica with parallel apply (slave_parallel_threads)


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


def start_native(replica: PrivateMariaDB, primary_port: int) -> None:
    replica.execute(
        f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary_port},"
        " MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos,"
        " MASTER_CONNECT_RETRY=1",
        "START SLAVE",
    )


def repoint_native(replica: PrivateMariaDB, primary_port: int) -> None:
    """The same replica reading the primary at another port (the delay proxy's)."""
    replica.execute("STOP SLAVE")
    start_native(replica, primary_port)


class Hotsite:
    """``hotsite replicate`` for the bench's link, started and stopped by its PID."""

    def __init__(self, directory: Path, primary: PrivateMariaDB, target: PrivateMariaDB) -> None:
        self.config = directory / "hotsite.yaml"
        self.trace_dir = directory / "trace"
        self.target = target
        self.write_config(primary.port)
        self.process: subprocess.Popen[bytes] | None = None

    def write_config(self, source_port: int) -> None:
        """The project file, the source reached at ``source_port`` (the primary's own, or
        the delay proxy's in front of it): same link, same journal, same position."""
        link = {"from": "primary", "to": "dr", "tables": ["sbtest.*", "bench.*"]}
        source = f"mysql://root@127.0.0.1:{source_port}/sbtest"
        sites = {"primary": source, "dr": self.target.url("sbtest")}
        project = {
            "sites": {name: {"database": url} for name, url in sites.items()},
            "replication": [link],
        }
        self.config.write_text(yaml.safe_dump(project, sort_keys=False))

    def catch_up(self) -> None:
        subprocess.run(
            [*HOTSITE, "-c", str(self.config), "replicate", "--until-caught-up", "--quiet"],
            check=True,
            cwd=self.config.parent,
        )

    def start(self, trace: bool = False, profile: str = "", idle: bool = False) -> None:
        """``trace``: each stage notes when each transaction passed it (for the breakdown);
        the directory is emptied first. ``profile``: run it under ``py-spy record``
        (``--format raw``, both processes) into that file: the samples of the thread
        holding the interpreter lock, or with ``idle`` every thread's, waiting or not
        (where a transaction's wall time goes, for the lag)."""
        env = dict(os.environ)
        env.pop(TRACE_ENV, None)
        if trace:
            subprocess.run(["rm", "-rf", str(self.trace_dir)], check=True)
            self.trace_dir.mkdir()
            env[TRACE_ENV] = str(self.trace_dir)
        self.process = subprocess.Popen(
            [*HOTSITE, "-c", str(self.config), "replicate", "--quiet"],
            cwd=self.config.parent,
            start_new_session=True,
            env=env,
        )
        if profile:  # py-spy ends, writing its samples, when the process does
            # The venv's py-spy (the dev extras), not one on PATH; --gil: only the samples
            # of the thread holding the interpreter lock, which is what a process's speed
            # is bound by (threads waiting on a socket or fsync are not counted).
            spy = [str(Path(sys.executable).parent / "py-spy"), "record", "-r", "50",
                   "--subprocesses", "--format", "raw", "--idle" if idle else "--gil"]  # fmt: skip
            subprocess.Popen([*spy, "-o", profile, "--pid", str(self.process.pid)])

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
    kinds of target alike, whatever each reports about itself. Each probe's GTID and times
    (epoch seconds, the clock of hotsite's stage trace) are kept for the breakdown."""

    def __init__(self, primary: PrivateMariaDB, targets: dict[str, PrivateMariaDB]) -> None:
        self.primary = primary
        self.targets = targets
        self.committed: dict[int, float] = {}
        self.gtids: dict[int, str] = {}
        self.visible: dict[str, dict[int, float]] = {name: {} for name in targets}
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        # Probes go on from the last one of an earlier part (their ids are the key).
        self.base = int(primary.execute("SELECT COALESCE(MAX(id), 0) FROM bench.probe")[0][0] or 0)

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
        probe = self.base
        with conn.cursor() as cur:
            while not self.stop_event.is_set():
                probe += 1
                cur.execute("INSERT INTO probe VALUES (%s)", (probe,))
                self.committed[probe] = time.time()
                cur.execute("SELECT @@last_gtid")
                self.gtids[probe] = str((cur.fetchone() or ("",))[0])
                time.sleep(interval)
        conn.close()

    def _watch(self, name: str) -> None:
        conn = self.targets[name].connect()
        seen = self.base
        visible = self.visible[name]
        with conn.cursor() as cur:
            while not self.stop_event.is_set():
                try:
                    cur.execute("SELECT MAX(id) FROM bench.probe")
                    latest = int((cur.fetchone() or (0,))[0] or 0)
                except Exception:  # the table has not reached this target yet
                    latest = 0
                now = time.time()
                for probe in range(seen + 1, latest + 1):
                    visible[probe] = now
                seen = max(seen, latest)
                time.sleep(0.002)
        conn.close()

    def lags(self, name: str) -> list[float]:
        return [
            at - self.committed[probe]
            for probe, at in self.visible[name].items()
            if probe in self.committed
        ]

    def percentiles(self, name: str) -> tuple[float, float, int]:
        return (*p50_p99(self.lags(name)), len(self.lags(name)))


def p50_p99(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return float("nan"), float("nan")
    cuts = statistics.quantiles(sorted(values), n=100)
    return cuts[49], cuts[98]


# From the source's commit to the target's, each stage of hotsite's pipeline in order
# (hotsite/replication/trace.py), then until the bench's poll saw the row.
STAGES = [
    ("source commit -> decoded by capture", "source", "captured"),
    ("decoded -> taken by ship (queue)", "captured", "batched"),
    ("taken -> in the journal, fsynced", "batched", "journaled"),
    ("journaled -> read by apply (wake-up)", "journaled", "read"),
    ("read -> committed at the target", "read", "committed"),
    ("committed -> seen by the probe", "committed", "visible"),
]


def print_stage_ends(trace_dir: Path, backlog: int) -> None:
    """On a backlog: when each stage had passed every transaction, from the first one
    decoded: the slowest stage ends last, the others wait for it. And the rate without
    the process's start-up (checks, the capture process spawned: seconds)."""
    ends: dict[str, list[float]] = {}
    for stages in read_traces(trace_dir).values():
        for stage, at in stages.items():
            ends.setdefault(stage, []).append(at)
    if "captured" not in ends:
        return
    start = min(ends["captured"])
    spans = ", ".join(
        f"{stage} {max(ends[stage]) - start:.1f} s"
        for stage in ("captured", "journaled", "read", "committed")
        if stage in ends
    )
    print(f"   hotsite's stages done after: {spans}")
    if "committed" in ends:
        streaming = max(ends["committed"]) - start
        print(f"   hotsite from its first transaction decoded: {backlog / streaming:,.0f} tx/s")


def print_breakdown(probe: LagProbe, trace_dir: Path, name: str = "hotsite") -> None:
    """p50/p99 of each stage over the probe transactions, and which stage made the slowest
    probes slow."""
    passed = read_traces(trace_dir)
    rows: list[dict[str, float]] = []
    for number, gtid in probe.gtids.items():
        stages = dict(passed.get(gtid, {}))
        if number not in probe.visible[name] or len(stages) < 5:
            continue
        stages["source"] = probe.committed[number]
        stages["visible"] = probe.visible[name][number]
        rows.append(stages)
    if not rows:
        print("   (no stage trace)")
        return
    print(f"   where hotsite's lag goes ({len(rows)} probes traced), ms:")
    for label, first, last in STAGES:
        p50, p99 = p50_p99([r[last] - r[first] for r in rows if first in r and last in r])
        print(f"     {label:40s} p50 {p50 * 1000:7.1f}   p99 {p99 * 1000:7.1f}")
    slowest = sorted(rows, key=lambda r: r["visible"] - r["source"])[-max(1, len(rows) // 50) :]
    blame: dict[str, int] = {}
    for r in slowest:
        label = max(STAGES, key=lambda s: r.get(s[2], 0) - r.get(s[1], 0))[0]
        blame[label] = blame.get(label, 0) + 1
    print(f"     slowest {len(slowest)} probes, longest stage: {blame}")
    began = min(probe.committed.values())
    for r in slowest[-3:]:
        steps = " ".join(f"{(r[last] - r[first]) * 1000:.0f}" for _, first, last in STAGES)
        print(f"       probe at +{r['source'] - began:.1f} s: stages {steps} ms")
    for process, pauses in gc_pauses(trace_dir, since=began).items():
        print(
            f"     {process}: {len(pauses)} collections of 1 ms or more, longest"
            f" {max(pauses):.1f} ms, {sum(pauses):.0f} ms in all"
        )


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


class DelayProxy:
    """hotsite.testing.delay_proxy in front of the primary: ``delay`` s each way."""

    def __init__(self, to_port: int, delay: float) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hotsite.testing.delay_proxy", "--listen", str(self.port),
             "--to", f"127.0.0.1:{to_port}", "--delay", str(delay)],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != b"ready":
            raise RuntimeError("the delay proxy did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class Run:
    """The servers of one run and the parts it measures, in order."""

    def __init__(self, args: argparse.Namespace, servers: list[PrivateMariaDB], workdir: Path):
        self.args = args
        self.primary, self.native, self.parallel, self.target = servers
        self.workdir = workdir
        self.hotsite = Hotsite(workdir, self.primary, self.target)
        self.max_tps = float(args.rate * 2) if args.rate else 0.0

    def seqs(self) -> dict[str, Callable[[], int]]:
        return {
            "native": lambda: native_seq(self.native),
            "hotsite": lambda: hotsite_seq(self.target),
        }

    def prepare(self) -> None:
        primary = self.primary
        primary.execute("CREATE DATABASE sbtest", "CREATE DATABASE bench")
        primary.execute(
            "CREATE TABLE bench.probe (id INT PRIMARY KEY)",
            "CREATE TABLE bench.ready (id INT AUTO_INCREMENT PRIMARY KEY)",
        )
        start_native(self.native, primary.port)
        self.parallel.execute(
            f"SET GLOBAL slave_parallel_threads = {PARALLEL_THREADS}",
            "SET GLOBAL slave_parallel_mode = 'optimistic'",
        )
        start_native(self.parallel, primary.port)
        sysbench(primary, "prepare", "--threads=4")
        self.hotsite.catch_up()  # snapshot, then stream to the primary's position
        wait_for(lambda: native_seq(self.native), primary_seq(primary))
        wait_for(lambda: native_seq(self.parallel), primary_seq(primary))
        self.parallel.execute("STOP SLAVE")  # only the backlog part runs it
        print(f"servers ready; {SYSBENCH_TABLES} sysbench tables of 10,000 rows on each target")

    def under_load(self) -> None:
        args, primary, hotsite = self.args, self.primary, self.hotsite
        hotsite.start()
        before = {name: seq() for name, seq in self.seqs().items()}
        load_start_seq = primary_seq(primary)
        started = time.monotonic()
        output = sysbench(
            primary, "run", f"--threads={args.threads}", f"--time={args.load_seconds}"
        )
        elapsed = time.monotonic() - started
        stop_seq = primary_seq(primary)
        applied = {name: seq() - before[name] for name, seq in self.seqs().items()}
        catch_up = wait_for_each(self.seqs(), stop_seq)
        self.max_tps = sysbench_tps(output)
        print(f"\n1. under load ({args.threads} threads, {args.load_seconds} s)")
        print(
            f"   primary: {self.max_tps:,.0f} TPS (sysbench);"
            f" {stop_seq - load_start_seq:,} transactions"
        )
        rates = {name: count / elapsed for name, count in applied.items()}
        for name in ("native", "hotsite"):
            label = "native replica" if name == "native" else "hotsite"
            print(
                f"   {label + ' apply:':21s} {rates[name]:,.0f} tx/s,"
                f" catch-up {catch_up[name]:.2f} s"
            )
        print(
            f"   ratio hotsite/native apply rate: {rates['hotsite'] / max(rates['native'], 1e-9):.2f}"
        )
        hotsite.stop()

    def measure_max_rate(self) -> None:
        if self.max_tps:
            return
        output = sysbench(self.primary, "run", f"--threads={self.args.threads}", "--time=10")
        self.max_tps = sysbench_tps(output)
        print(f"\nprimary alone: {self.max_tps:,.0f} TPS (sysbench, 10 s)")

    def caught_up(self, *, parallel: bool = False) -> None:
        """Every target at the primary's position; hotsite and the replicas stopped."""
        goal = primary_seq(self.primary)
        self.hotsite.start()
        wait_for_each(self.seqs(), goal)
        self.hotsite.stop()
        self.native.execute("STOP SLAVE")
        if parallel:
            self.parallel.execute("START SLAVE")
            wait_for(lambda: native_seq(self.parallel), goal)
            self.parallel.execute("STOP SLAVE")

    def sysbench_backlog(self, title: str, *, parallel: bool) -> None:
        """A sysbench backlog made while every target is stopped, then each target
        draining it alone on the machine."""
        args = self.args
        self.caught_up(parallel=parallel)
        base = primary_seq(self.primary)
        sysbench(self.primary, "run", f"--threads={args.threads}", f"--time={args.load_seconds}")
        goal = primary_seq(self.primary)
        backlog = goal - base
        drains: dict[str, float] = {}
        self.native.execute("START SLAVE")
        drains["native replica"] = wait_for(lambda: native_seq(self.native), goal)
        if parallel:
            self.parallel.execute("START SLAVE")
            drains[f"native, {PARALLEL_THREADS} threads"] = wait_for(
                lambda: native_seq(self.parallel), goal
            )
            self.parallel.execute("STOP SLAVE")
        # Untraced, as users run it (the stage trace cost capture ~7% of its time):
        # BENCH_TRACE_BACKLOG=1 traces it, to print when each stage was done.
        traced = bool(os.environ.get("BENCH_TRACE_BACKLOG"))
        self.hotsite.start(trace=traced, profile=os.environ.get("BENCH_PROFILE_BACKLOG", ""))
        started = time.monotonic()
        first = wait_for(lambda: hotsite_seq(self.target), base + 1, every=0.01)
        drains["hotsite"] = (
            time.monotonic() - started + wait_for(lambda: hotsite_seq(self.target), goal)
        )
        self.hotsite.stop()
        print(f"\n{title}: backlog of {backlog:,} sysbench transactions, each target alone")
        for name, seconds in drains.items():
            print(f"   {name + ':':24s} {backlog / seconds:,.0f} tx/s ({seconds:.1f} s)")
        streaming = drains["hotsite"] - first
        print(
            f"   hotsite from its first transaction applied: {backlog / streaming:,.0f} tx/s"
            f" (start-up {first:.1f} s: the process, its checks, the capture process)"
        )
        if traced:
            print_stage_ends(self.hotsite.trace_dir, backlog)
        for name, seconds in drains.items():
            if name != "hotsite":
                print(f"   ratio hotsite/{name}: {seconds / drains['hotsite']:.2f}")

    def streaming(self) -> None:
        """Until both targets apply a write made now: hotsite's process has started (its
        checks and capture process take seconds), not only the target's position."""
        self.primary.execute("INSERT INTO bench.ready VALUES ()")
        wait_for_each(self.seqs(), primary_seq(self.primary))

    def lag(self, title: str) -> None:
        """Commit-to-visible lag at half the primary's maximum rate, and where it goes."""
        args = self.args
        self.caught_up()
        self.native.execute("START SLAVE")
        self.hotsite.start(trace=True, profile=os.environ.get("BENCH_PROFILE_LAG", ""), idle=True)
        self.streaming()
        half = max(1, int(self.max_tps / 2))
        probe = LagProbe(self.primary, {"native": self.native, "hotsite": self.target})
        probe.start()
        sysbench(
            self.primary,
            "run",
            f"--threads={args.threads}",
            f"--time={args.lag_seconds}",
            f"--rate={half}",
        )
        probe.stop()
        self.hotsite.stop()
        print(
            f"\n{title}: commit-to-visible lag at {half:,} TPS (50% of maximum), probe every 100 ms"
        )
        for name in ("native", "hotsite"):
            p50, p99, count = probe.percentiles(name)
            print(
                f"   {name:8s} p50 {p50 * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms   ({count} probes)"
            )
        n50, n99, _ = probe.percentiles("native")
        h50, h99, _ = probe.percentiles("hotsite")
        print(f"   ratio hotsite/native: p50 {h50 / n50:.2f}, p99 {h99 / n99:.2f}")
        print_breakdown(probe, self.hotsite.trace_dir)

    def small_transactions(self) -> None:
        """A large backlog of small transactions: rate and hotsite's memory."""
        self.caught_up()
        primary, hotsite = self.primary, self.hotsite
        base = primary_seq(primary)
        made = time.monotonic()
        small_backlog(primary, self.args.backlog_transactions)
        goal = primary_seq(primary)
        print(
            f"\n4. backlog of {goal - base:,} single-row transactions"
            f" (generated in {time.monotonic() - made:.0f} s)"
        )
        self.native.execute("START SLAVE")
        drain_native = wait_for(lambda: native_seq(self.native), goal, every=0.5)
        hotsite.start()
        samples: list[float] = []
        drain_hotsite = wait_for(
            lambda: (samples.append(hotsite.rss_mib()), hotsite_seq(self.target))[1],
            goal,
            every=0.5,
        )
        hotsite.stop()
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

    def wan(self) -> None:
        """The source behind a delay proxy, for hotsite and the native replica alike."""
        self.caught_up()
        proxy = DelayProxy(self.primary.port, self.args.wan_delay)
        delay_ms = self.args.wan_delay * 1000
        try:
            repoint_native(self.native, proxy.port)
            self.hotsite.write_config(proxy.port)
            self.sysbench_backlog(f"5a. WAN ({delay_ms:.0f} ms each way)", parallel=False)
            self.lag(f"5b. WAN ({delay_ms:.0f} ms each way)")
        finally:
            self.native.execute("STOP SLAVE")
            self.hotsite.write_config(self.primary.port)
            start_native(self.native, self.primary.port)
            proxy.stop()


PARTS = ("load", "backlog", "lag", "small", "wan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load-seconds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--lag-seconds", type=int, default=30)
    parser.add_argument("--backlog-transactions", type=int, default=1_000_000)
    parser.add_argument("--wan-delay", type=float, default=0.025, help="seconds, each way")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}"
    )
    parser.add_argument(
        "--rate", type=int, default=0, help="the half-load rate (TPS) when 'load' is not run"
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if parts - set(PARTS):
        parser.error(f"unknown parts: {sorted(parts - set(PARTS))}")

    # SIGTERM stops the run like Ctrl-C: the finally below stops every server it started.
    signal.signal(signal.SIGTERM, _interrupt)
    servers = [PrivateMariaDB(server_id=i) for i in (1, 2, 3, 4)]
    workdir = Path(tempfile.mkdtemp(prefix="hotsite-bench-"))
    run: Run | None = None
    try:
        for server in servers:
            server.start()
        run = Run(args, servers, workdir)
        run.prepare()
        if "load" in parts:
            run.under_load()
        if "backlog" in parts:
            run.sysbench_backlog("2", parallel=True)
        if "lag" in parts or "wan" in parts:
            run.measure_max_rate()
        if "lag" in parts:
            run.lag("3")
        if "small" in parts and args.backlog_transactions:
            run.small_transactions()
        if "wan" in parts:
            run.wan()
    finally:
        if run:
            run.hotsite.stop()
        for server in servers:
            if server.process:
                server.stop()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


if __name__ == "__main__":
    main()
