"""sysbench ``oltp_write_only`` against a private server: the write load of the tests,
the demo's proofs and the benchmarks, spelled once."""

from __future__ import annotations

import subprocess

from hotsite.testing.mariadb import PrivateMariaDB


def sysbench_command(
    server: PrivateMariaDB, *, database: str = "sbtest", tables: int = 4, table_size: int = 2000
) -> list[str]:
    """The command line up to its options; append more options and prepare/run/cleanup."""
    return [
        "sysbench",
        "oltp_write_only",
        "--db-driver=mysql",
        "--mysql-host=127.0.0.1",
        f"--mysql-port={server.port}",
        "--mysql-user=root",
        f"--mysql-db={database}",
        f"--tables={tables}",
        f"--table-size={table_size}",
    ]


def run_sysbench(
    server: PrivateMariaDB,
    command: str,
    *extra: str,
    table_size: int = 2000,
    timeout: float | None = None,
) -> str:
    """Run ``prepare``/``run``/``cleanup`` to the end; returns sysbench's report."""
    result = subprocess.run(
        [*sysbench_command(server, table_size=table_size), *extra, command],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return result.stdout
