"""hotsite verify vs a plain CHECKSUM TABLE on a table of a million rows.

Two private servers get the same sysbench-shaped table (id, k, c CHAR(120), pad CHAR(60))
from the same generator; the target is marked as having applied the source's position,
as after a snapshot. Then, in the same run: CHECKSUM TABLE on each server (alone, and
on both at once), ``verify_link`` (the code path of ``hotsite verify``) on identical
tables, and again after changing 10 rows on the target (found and listed).

    .venv/bin/python bench/verify_vs_checksum.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import yaml

from hotsite.config import load
from hotsite.db import connect
from hotsite.replication.schema import APPLIED_TABLE, HOTSITE_SCHEMA, ensure_hotsite_schema
from hotsite.replication.verify import VerifyOptions, verify_link
from hotsite.testing.mariadb import PrivateMariaDB

TABLE = (
    "CREATE TABLE app.sbtest1 (id INT NOT NULL PRIMARY KEY, k INT NOT NULL DEFAULT 0,"
    " c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k))"
)
FILL = (
    "INSERT INTO app.sbtest1 SELECT seq, seq * 7919 % {rows},"
    " CONCAT(MD5(seq), '-', MD5(seq + 1), '-', MD5(seq + 2), '-', LEFT(MD5(seq + 3), 18)),"
    " CONCAT(MD5(seq * 3), '-', LEFT(MD5(seq * 5), 27)) FROM seq_1_to_{rows}"
)


def timed(fn: object, *args: object) -> float:
    started = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - started


def checksum(server: PrivateMariaDB) -> None:
    server.execute("CHECKSUM TABLE app.sbtest1")


def both_at_once(source: PrivateMariaDB, target: PrivateMariaDB) -> None:
    threads = [threading.Thread(target=checksum, args=(s,)) for s in (source, target)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    settings = {"innodb-buffer-pool-size": "768M", "innodb-flush-log-at-trx-commit": "2"}
    source = PrivateMariaDB(server_id=71, extra_settings=settings)
    target = PrivateMariaDB(server_id=72, extra_settings=settings)
    work = Path(tempfile.mkdtemp(prefix="hotsite-bench-verify-"))
    try:
        for server in (source, target):
            server.start()
            server.execute("CREATE DATABASE app", TABLE)
        loads = [
            threading.Thread(
                target=s.execute, args=(FILL.format(rows=args.rows),), kwargs={"database": "app"}
            )
            for s in (source, target)
        ]
        started = time.perf_counter()
        for thread in loads:
            thread.start()
        for thread in loads:
            thread.join()
        print(f"loaded {args.rows:,} rows on both servers in {time.perf_counter() - started:.1f}s")

        # The target "has applied" everything the source has: as after 'hotsite snapshot'.
        position = str(source.execute("SELECT @@gtid_binlog_pos")[0][0])
        conn = target.connect()
        ensure_hotsite_schema(conn)
        with conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {HOTSITE_SCHEMA}.{APPLIED_TABLE} (origin, gtid_state) VALUES (%s, %s)",
                ("primary", position),
            )
        conn.close()
        config_path = work / "hotsite.yaml"
        config_path.write_text(
            yaml.safe_dump(
                {
                    "sites": {
                        "primary": {"database": source.url()},
                        "dr": {"database": target.url()},
                    },
                    "replication": [{"from": "primary", "to": "dr", "tables": ["app.sbtest1"]}],
                }
            )
        )
        config = load(config_path)
        link = config.replication[0]

        for server in (source, target):  # warm the buffer pools the same way for everyone
            checksum(server)
        # The machine is shared: interleave the contenders and keep each one's best run.
        sequence, parallel, verify, verify_all = [], [], [], []
        for attempt in range(args.repeat):
            one, other = timed(checksum, source), timed(checksum, target)
            sequence.append(one + other)
            parallel.append(timed(both_at_once, source, target))
            report = verify_link(config, link, VerifyOptions())
            table = report.tables[0]
            verify.append(table.seconds)
            verify_all.append(report.seconds)
            print(
                f"run {attempt + 1}: CHECKSUM TABLE source {one:.3f}s + target {other:.3f}s"
                f" = {one + other:.3f}s, both at once {parallel[-1]:.3f}s; verify"
                f" {table.rows:,} rows in {table.chunks} chunks {table.seconds:.3f}s"
                f" ({table.rows / table.seconds:,.0f} rows/s; {report.seconds:.3f}s with"
                f" connecting and schema checks), exit {report.exit_code}"
            )
        best = min(verify)
        ids = list(range(1, args.rows, args.rows // 10))[:10]
        with connect(config.site("dr").database_url, "dr") as conn, conn.cursor() as cur:
            cur.execute(
                f"UPDATE app.sbtest1 SET k = k + 1 WHERE id IN ({', '.join(map(str, ids))})"
            )
        report = verify_link(config, link, VerifyOptions())
        table = report.tables[0]
        print(
            f"verify with 10 changed rows: found {table.different} different"
            f" ({', '.join(str(d.key[0]) for d in table.diffs)}) in {table.seconds:.3f}s,"
            f" {table.row_rounds} row-level rounds, exit {report.exit_code}"
        )
        print(
            f"best of {args.repeat}: verify {best:.3f}s ({args.rows / best:,.0f} rows/s),"
            f" CHECKSUM TABLE both in sequence {min(sequence):.3f}s, both at once"
            f" {min(parallel):.3f}s"
        )
        print(
            f"verify / CHECKSUM TABLE: {best / min(sequence):.2f}x of both in sequence,"
            f" {best / min(parallel):.2f}x of both at once (goal: within 3x)"
        )
    finally:
        source.stop()
        target.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
