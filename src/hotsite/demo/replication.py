"""The smaller walkthrough behind ``scripts/demo-replication``: two private MariaDB
servers, a write load on one, hotsite replicating it to the other live, then proof that
both hold the same rows.

Everything runs on loopback; both servers are stopped (by PID) and removed at the end.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from hotsite.testing.mariadb import PrivateMariaDB

console = Console()
LOAD_SECONDS = 8


def _load(server: PrivateMariaDB, stop: threading.Event, counter: list[int]) -> None:
    conn = server.connect("shop")
    conn.autocommit(False)
    rng = random.Random(1)
    with conn.cursor() as cur:
        while not stop.is_set():
            cur.execute(
                "INSERT INTO orders (customer, amount, placed_at) VALUES (%s, %s, NOW(6))",
                (f"customer-{rng.randint(1, 500)}", rng.randint(100, 100000) / 100),
            )
            cur.execute("UPDATE stock SET qty = qty - 1 WHERE sku = %s", (rng.randint(1, 200),))
            if rng.random() < 0.1:
                cur.execute(
                    "DELETE FROM orders WHERE id = %s", (rng.randint(1, max(1, counter[0])),)
                )
            conn.commit()
            counter[0] += 1
    conn.close()


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="hotsite-demo-"))
    console.rule("[bold]hotsite demo: live MariaDB replication")
    primary, dr = PrivateMariaDB(server_id=1), PrivateMariaDB(server_id=2)
    replicate: subprocess.Popen[bytes] | None = None
    try:
        primary.start()
        dr.start()
        console.print(
            f"started two private MariaDB servers: primary :{primary.port}, dr :{dr.port}"
        )
        primary.execute(
            "CREATE DATABASE shop",
            "CREATE TABLE shop.orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer VARCHAR(40),"
            " amount DECIMAL(10,2), placed_at DATETIME(6))",
            "CREATE TABLE shop.stock (sku INT PRIMARY KEY, qty INT)",
        )
        primary.execute("INSERT INTO stock SELECT seq, 1000000 FROM seq_1_to_200", database="shop")
        config = workdir / "hotsite.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "sites": {
                        "primary": {"database": primary.url("shop")},
                        "dr": {"database": dr.url("shop")},
                    },
                    "replication": [{"from": "primary", "to": "dr"}],
                },
                sort_keys=False,
            )
        )
        console.print(f"project file {config}:\n{config.read_text()}")
        stop, counter = threading.Event(), [0]
        writer = threading.Thread(target=_load, args=(primary, stop, counter), daemon=True)
        writer.start()
        console.print(f"write load running on primary; 'hotsite replicate' for {LOAD_SECONDS}s:")
        hotsite = [sys.executable, "-m", "hotsite", "--config", str(config)]
        replicate = subprocess.Popen([*hotsite, "replicate"], start_new_session=True)
        time.sleep(LOAD_SECONDS)
        stop.set()
        writer.join()
        replicate.terminate()
        replicate.wait(timeout=30)
        replicate = None
        console.print(f"\nload stopped after {counter[0]} transactions; catching up:")
        subprocess.run([*hotsite, "replicate", "--until-caught-up", "--quiet"], check=True)
        subprocess.run([*hotsite, "status"], check=True)
        _prove(primary, dr)
    finally:
        if replicate is not None:
            replicate.kill()
            replicate.wait()
        primary.stop()
        dr.stop()


def _prove(primary: PrivateMariaDB, dr: PrivateMariaDB) -> None:
    table = Table(
        "table", "rows on primary", "rows on dr", "checksum primary", "checksum dr", "same"
    )
    same_everywhere = True
    for name in ("shop.orders", "shop.stock"):
        counts = [s.execute(f"SELECT COUNT(*) FROM {name}")[0][0] for s in (primary, dr)]
        sums = [s.execute(f"CHECKSUM TABLE {name} EXTENDED")[0][1] for s in (primary, dr)]
        same = counts[0] == counts[1] and sums[0] == sums[1]
        same_everywhere &= same
        table.add_row(
            name,
            str(counts[0]),
            str(counts[1]),
            str(sums[0]),
            str(sums[1]),
            "yes" if same else "NO",
        )
    console.print(table)
    if not same_everywhere:
        console.print("[red]the sites differ[/]")
        raise SystemExit(1)
    console.print("[green]both sites hold the same rows[/]")


if __name__ == "__main__":
    main()
