"""Apply alone on a backlog: rows/s of the collapsed and the in-order paths.

A synthetic backlog of transactions (4 changes each: updates, deletes, inserts with
consistent before-images) is applied by ``MySQLApplier`` to a private server holding
100k rows, in groups of 2000 transactions as the agent reads them; no capture, no
journal file. ``pk`` is a table with only a primary key (collapsed path); ``uq`` has a
secondary unique key too (change by change, in source order). The mismatch count must
stay 0: every change finds its row as the source had it.

    .venv/bin/python bench/apply_backlog.py [--rows 200000] [--repeat 2] [--tables pk uq]
"""

from __future__ import annotations

import argparse
import random
import time

from hotsite.config import DatabaseURL
from hotsite.replication.apply.mysql import MySQLApplier
from hotsite.replication.journal import JournalEntry
from hotsite.replication.transactions import DELETE, INSERT, UPDATE, RowChange, Transaction, encode
from hotsite.testing.mariadb import PrivateMariaDB

PRELOAD = 100_000
GROUP = 2000
TABLES = {
    "pk": "CREATE TABLE app.pk (id INT PRIMARY KEY, k INT, c VARCHAR(40), pad CHAR(60))",
    "uq": "CREATE TABLE app.uq (id INT PRIMARY KEY, k INT, c VARCHAR(40), pad CHAR(60),"
    " UNIQUE KEY uk (k))",
}


def backlog(table: str, rows: int) -> list[JournalEntry]:
    rng = random.Random(1)
    live = {i: {"id": i, "k": i, "c": f"c{i}", "pad": "x" * 40} for i in range(PRELOAD)}
    keys, next_id, entries, done = list(live), PRELOAD, [], 0
    while done < rows:
        changes = []
        for _ in range(4):
            op = rng.random()
            if op < 0.5:
                i = rng.choice(keys)
                before = live[i]
                # uq: k stays (a unique value); pk: k moves too
                after = dict(before, k=before["k"] + (table == "pk"), c=f"u{done}")
                live[i] = after
                changes.append(RowChange(UPDATE, "app", table, before, after))
            elif op < 0.75:
                index = rng.randrange(len(keys))
                i = keys[index]
                keys[index] = keys[-1]
                keys.pop()
                changes.append(RowChange(DELETE, "app", table, live.pop(i), None))
            else:
                i, next_id = next_id, next_id + 1
                live[i] = {"id": i, "k": i, "c": f"c{i}", "pad": "x" * 40}
                keys.append(i)
                changes.append(RowChange(INSERT, "app", table, None, live[i]))
            done += 1
        seq = len(entries) + 1
        tx = Transaction(gtid=f"0-1-{seq}", commit_ts=time.time(), changes=changes)
        entries.append(JournalEntry(seq, tx.gtid, tx.commit_ts, tx.commit_ts, 4, encode(tx)))
    return entries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    args = parser.parse_args()
    server = PrivateMariaDB(server_id=9100).start()
    try:
        server.execute("CREATE DATABASE app", *TABLES.values())
        fill = (
            "INSERT INTO app.{} SELECT seq, seq, CONCAT('c', seq), REPEAT('x', 40)"
            f" FROM app.seq_0_to_{PRELOAD - 1}"
        )
        for table in args.tables:
            entries = backlog(table, args.rows)
            for _ in range(args.repeat):
                server.execute(
                    f"TRUNCATE app.{table}", fill.format(table), "DROP DATABASE IF EXISTS hotsite"
                )
                applier = MySQLApplier(
                    DatabaseURL.parse(server.url()), "dr", "primary", f"bench/{table}"
                )
                applier.open()
                started = time.perf_counter()
                for start in range(0, len(entries), GROUP):
                    applier.apply(entries[start : start + GROUP])
                elapsed = time.perf_counter() - started
                applier.close()
                print(
                    f"{table}: {args.rows} rows in {elapsed:.2f}s = {args.rows / elapsed:,.0f} rows/s"
                    f" (mismatches {applier.position.mismatches})",
                    flush=True,
                )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
