"""hotsite verify / verify --repair against real servers: exact differences, repair, no
false positives under write load, awkward types and schemas, clear errors."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hotsite.testing.mariadb import PrivateMariaDB
from hotsite.testing.sysbench import sysbench_command
from tests.helpers import (
    Workload,
    catch_up,
    hotsite,
    kill_group,
    start_replicate,
    table_checksums,
    write_config,
)

Servers = tuple[PrivateMariaDB, PrivateMariaDB]
ROWS = 5000


class PacedLoad:
    """Workload-like writes at a steady rate: updates of ids < 200 (NULLs included), new
    rows, deletes of new rows, and composite-key moves in app.orders."""

    def __init__(self, server: PrivateMariaDB, per_second: float) -> None:
        self.server = server
        self.interval = 1 / per_second
        self.stop_event = threading.Event()
        self.transactions = 0
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=30)
        assert not self.errors, self.errors

    def _run(self) -> None:
        rng = random.Random(5)
        next_id = 10_000_000
        try:
            conn = self.server.connect("app")
            conn.autocommit(False)
            with conn.cursor() as cur:
                while not self.stop_event.wait(self.interval):
                    for _ in range(rng.randint(1, 4)):
                        op = rng.random()
                        if op < 0.3:
                            next_id += 1
                            cur.execute(
                                "INSERT INTO items VALUES (%s, 'n', 1, 1.5, NOW(6), %s, NULL)",
                                (next_id, rng.choice([None, "", "t"])),
                            )
                        elif op < 0.7:
                            cur.execute(
                                "UPDATE items SET qty = qty + 1, note = %s WHERE id = %s",
                                (rng.choice([None, "", "u"]), rng.randint(0, 199)),
                            )
                        elif op < 0.8:
                            cur.execute("DELETE FROM items WHERE id = %s", (next_id - 3,))
                        elif op < 0.9:
                            cur.execute(
                                "INSERT INTO orders VALUES (%s, %s, 1, 2.5)"
                                " ON DUPLICATE KEY UPDATE total = total + 1",
                                (rng.randint(0, 3), rng.randint(0, 300)),
                            )
                        else:  # a composite primary key changes
                            cur.execute(
                                "UPDATE IGNORE orders SET num = num + 1000"
                                " WHERE shop = %s AND num = %s",
                                (rng.randint(0, 3), rng.randint(0, 300)),
                            )
                    conn.commit()
                    self.transactions += 1
            conn.close()
        except BaseException as exc:
            self.errors.append(exc)


def verify_json(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = hotsite(config, "verify", "--json", "--quiet", *args)
    assert result.returncode in (0, 1) or result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def diff_set(report: dict[str, Any], table: str) -> set[tuple[Any, ...]]:
    [entry] = [t for t in report["tables"] if t["table"] == table]
    return {(tuple(d["key"].values()), d["kind"], tuple(d["columns"])) for d in entry["diffs"]}


@pytest.mark.slow
def test_reports_exactly_the_injected_rows_and_repair_fixes_them(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute(
        "CREATE TABLE app.t (id INT PRIMARY KEY, a VARCHAR(40) NULL, b INT NOT NULL)",
        f"INSERT INTO app.t SELECT seq, IF(seq % 7 = 0, NULL, CONCAT('v', seq)), seq * 3"
        f" FROM seq_1_to_{ROWS}",
        "CREATE TABLE app.pairs (shop INT, num INT, v VARCHAR(10), PRIMARY KEY (shop, num))",
        "INSERT INTO app.pairs SELECT seq % 10, seq, 'x' FROM seq_1_to_8000",
        database="app",
    )
    config = write_config(tmp_path, source, target)
    catch_up(config)
    assert verify_json(config)[0] == 0

    rng = random.Random(11)
    ids = rng.sample(range(2, ROWS), 40)
    deleted = {1, ROWS, *ids[:10]}  # first and last rows too
    updated = set(ids[10:25])
    nulled = {i for i in ids[25:40] if i % 7}  # a non-NULL value becomes NULL
    emptied = {i for i in ids[25:40] if i % 7 == 0}  # NULL becomes ''
    extra = {0, ROWS + 1, ROWS + 500}
    target.execute(
        f"DELETE FROM app.t WHERE id IN ({', '.join(map(str, deleted))})",
        f"UPDATE app.t SET b = b + 1 WHERE id IN ({', '.join(map(str, updated))})",
        f"UPDATE app.t SET a = NULL WHERE id IN ({', '.join(map(str, nulled))})",
        f"UPDATE app.t SET a = '' WHERE id IN ({', '.join(map(str, emptied))})",
        f"INSERT INTO app.t VALUES {', '.join(f'({i}, NULL, 0)' for i in extra)}",
        "UPDATE app.pairs SET v = 'y' WHERE shop = 3 AND num = 13",
        "DELETE FROM app.pairs WHERE shop = 1 AND num = 1",
        "INSERT INTO app.pairs VALUES (9, 999999, 'z')",
    )

    code, report = verify_json(config)
    assert code == 1
    assert diff_set(report, "app.t") == (
        {((i,), "missing", ()) for i in deleted}
        | {((i,), "different", ("b",)) for i in updated}
        | {((i,), "different", ("a",)) for i in nulled | emptied}
        | {((i,), "extra", ()) for i in extra}
    )
    assert diff_set(report, "app.pairs") == {
        ((3, 13), "different", ("v",)),
        ((1, 1), "missing", ()),
        ((9, 999999), "extra", ()),
    }

    code, report = verify_json(config, "--repair")
    assert code == 1
    repaired = {t["table"]: t["repaired"] for t in report["tables"]}
    assert repaired == {"app.t": len(deleted | updated | nulled | emptied | extra), "app.pairs": 3}
    markers = target.execute("SELECT origin, table_name FROM hotsite.hotsite_repair")
    assert {m[1] for m in markers} == {"app.t", "app.pairs"} and {m[0] for m in markers} == {
        "primary"
    }

    code, report = verify_json(config)
    assert code == 0, report
    assert table_checksums(target) == table_checksums(source)
    assert target.execute("SELECT a FROM app.t WHERE id = 7") == [(None,)]


@pytest.mark.slow
def test_types_composite_keys_empty_and_schema_differences(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute(
        "CREATE TABLE app.typed (k VARCHAR(20) NOT NULL, d DATE NOT NULL, n INT NOT NULL,"
        " txt TEXT NULL, bin BLOB NULL, doc JSON NULL, amount DECIMAL(20,6) NULL,"
        " at DATETIME(6) NULL, ts TIMESTAMP(3) NULL, f DOUBLE NULL,"
        " cs VARCHAR(10) COLLATE utf8mb4_bin NULL, l VARCHAR(10) CHARACTER SET latin1 NULL,"
        " PRIMARY KEY (k, d, n))",
        "INSERT INTO app.typed SELECT CONCAT('key', seq % 13), DATE('2024-01-01') + INTERVAL seq % 50 DAY,"
        " seq, IF(seq % 5 = 0, NULL, REPEAT('ü', seq % 30)), IF(seq % 4 = 0, NULL, UNHEX(MD5(seq))),"
        " IF(seq % 6 = 0, NULL, JSON_OBJECT('n', seq, 's', 'x')), seq / 7, NOW(6) - INTERVAL seq SECOND,"
        " '2024-05-01 10:00:00.123', seq / 3, IF(seq % 2, 'Abc', 'abc'), 'é' FROM seq_1_to_3000",
        "CREATE TABLE app.empty (id BIGINT UNSIGNED PRIMARY KEY, v VARCHAR(5))",
        "CREATE TABLE app.shape (id INT PRIMARY KEY, v VARCHAR(5))",
        "CREATE TABLE app.flags (id INT PRIMARY KEY, f CHAR(1))",
        "INSERT INTO app.flags SELECT seq, 'x' FROM seq_10_to_99",
        "INSERT INTO app.shape VALUES (1, 'a')",
        database="app",
    )
    config = write_config(tmp_path, source, target)
    catch_up(config)
    code, report = verify_json(config)
    assert code == 0, report
    assert {t["table"]: t["status"] for t in report["tables"]} == {
        "app.empty": "identical",
        "app.flags": "identical",
        "app.shape": "identical",
        "app.typed": "identical",
    }

    # The differences a careless checksum misses: case under a binary collation,
    # NULL vs '', separators moving between columns, sub-second times, JSON text.
    target.execute(
        "UPDATE app.typed SET cs = 'abc' WHERE k = 'key1' AND n = 1",  # was 'Abc'
        "UPDATE app.typed SET txt = '' WHERE n = 5",  # was NULL
        "UPDATE app.typed SET bin = NULL WHERE n = 6",
        "UPDATE app.typed SET at = at + INTERVAL 1 MICROSECOND WHERE n = 7",
        "UPDATE app.typed SET doc = JSON_OBJECT('n', 8, 's', 'y') WHERE n = 8",
        "UPDATE app.typed SET amount = amount + 0.000001 WHERE n = 9",
        "INSERT INTO app.empty VALUES (18446744073709551615, NULL)",
        # The same change in two same-length rows: a linear CRC's changes would cancel.
        "UPDATE app.flags SET f = 'y' WHERE id IN (20, 30)",
        "ALTER TABLE app.shape MODIFY v VARCHAR(6)",
        "CREATE TABLE app.only_here (id INT PRIMARY KEY)",
        database="app",
    )
    source.execute("CREATE TABLE app.not_there (id INT PRIMARY KEY)")
    catch_up(config)
    target.execute("DROP TABLE app.not_there")
    code, report = verify_json(config)
    assert code == 1
    statuses = {t["table"]: t["status"] for t in report["tables"]}
    assert statuses == {
        "app.empty": "rows differ",
        "app.flags": "rows differ",
        "app.not_there": "missing on target",
        "app.only_here": "only on target",
        "app.shape": "schema differs",
        "app.typed": "rows differ",
    }
    [shape] = [t for t in report["tables"] if t["table"] == "app.shape"]
    assert shape["schema"] == ["v: varchar(5) vs varchar(6)"]
    typed = {(d["key"]["n"], tuple(d["columns"])) for d in _table(report, "app.typed")["diffs"]}
    assert typed == {
        (1, ("cs",)),
        (5, ("txt",)),
        (6, ("bin",)),
        (7, ("at",)),
        (8, ("doc",)),
        (9, ("amount",)),
    }
    assert diff_set(report, "app.empty") == {((18446744073709551615,), "extra", ())}
    assert diff_set(report, "app.flags") == {((i,), "different", ("f",)) for i in (20, 30)}

    code, report = verify_json(config, "--repair", "--tables", "app.typed,app.empty")
    assert code == 1 and {t["table"] for t in report["tables"]} == {"app.typed", "app.empty"}
    code, report = verify_json(config, "--tables", "app.typed", "--tables", "app.empty")
    assert code == 0, report
    checksums = table_checksums(target)
    assert checksums["app.typed"] == table_checksums(source)["app.typed"]


def _table(report: dict[str, Any], name: str) -> dict[str, Any]:
    [entry] = [t for t in report["tables"] if t["table"] == name]
    return entry


@pytest.mark.slow
def test_no_false_differences_under_write_load_and_repair_while_replicating(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    Workload(source).create(initial_rows=20000)
    load = PacedLoad(source, per_second=150)  # this machine's replication keeps up with it
    config = write_config(tmp_path, source, target, heartbeat_interval=0.2)
    catch_up(config)
    replicate = start_replicate(config)
    load.start()
    try:
        for _ in range(2):
            code, report = verify_json(config, "--chunk-time", "0.01")
            assert code == 0, report
            assert sum(t["chunks"] for t in report["tables"]) > 5
        # Without the journal no window can be proven: only reads at exactly the same
        # position count. Busy rows may stay unsettled (exit 2); none is a difference.
        blind = tmp_path / "blind"
        blind.mkdir()
        blind_config = write_config(
            blind, source, target, journal=str(tmp_path / "no-such-journal.db")
        )
        # The same link (same project) as config's, only without its journal.
        blind_config.write_text(f"project: {tmp_path.name}\n" + blind_config.read_text())
        code, report = verify_json(blind / "hotsite.yaml", "--chunk-time", "0.01")
        assert code in (0, 2) and not any(t["diffs"] for t in report["tables"]), report
        # A real difference, made while rows around it keep changing.
        target.execute("UPDATE app.items SET name = 'diverged' WHERE id = 1500")
        code, report = verify_json(config, "--chunk-time", "0.01")
        assert code == 1
        assert diff_set(report, "app.items") == {((1500,), "different", ("name",))}
        assert diff_set(report, "app.orders") == set()
        code, report = verify_json(config, "--repair")
        assert code == 1 and _table(report, "app.items")["repaired"] == 1
        assert verify_json(config)[0] == 0
        assert load.transactions > 300
    finally:
        load.stop()
        kill_group(replicate, signal.SIGTERM)
    catch_up(config)
    assert table_checksums(target) == table_checksums(source)


def test_repair_from_the_target_writes_the_targets_rows_into_the_source(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute(
        "CREATE TABLE app.t (id INT PRIMARY KEY, a VARCHAR(10) NULL, u INT NULL UNIQUE)",
        "INSERT INTO app.t SELECT seq, CONCAT('v', seq), seq FROM seq_1_to_1500",
        database="app",
    )
    config = write_config(tmp_path, source, target)
    catch_up(config)
    before = table_checksums(target)
    # The source drifts without a trace in its binlog (as after a restore): dr is right.
    source.execute(
        "SET SESSION sql_log_bin = 0",
        "UPDATE app.t SET a = NULL WHERE id IN (3, 1500)",
        "DELETE FROM app.t WHERE id = 1",
        "INSERT INTO app.t VALUES (2000, 'new', 2000)",
        "UPDATE app.t SET u = 10000 + id WHERE id IN (10, 11)",  # then swap two unique values
        "UPDATE app.t SET u = 11 WHERE id = 10",
        "UPDATE app.t SET u = 10 WHERE id = 11",
    )
    code, report = verify_json(config)
    assert code == 1
    assert diff_set(report, "app.t") == {
        ((1,), "extra", ()),
        ((2000,), "missing", ()),
        ((3,), "different", ("a",)),
        ((1500,), "different", ("a",)),
        ((10,), "different", ("u",)),
        ((11,), "different", ("u",)),
    }
    # The repair is an ordinary source transaction: it replicates, and verify's next
    # chunks need the target to have applied it.
    replicate = start_replicate(config)
    try:
        code, report = verify_json(config, "--repair", "--from", "dr")
        assert code == 1 and _table(report, "app.t")["repaired"] == 6
        assert verify_json(config)[0] == 0
    finally:
        kill_group(replicate, signal.SIGTERM)
    markers = source.execute("SELECT origin, SUM(rows_written) FROM hotsite.hotsite_repair")
    assert markers == [("dr", 5)]
    assert table_checksums(source) == table_checksums(target) == before


@pytest.mark.skipif(shutil.which("sysbench") is None, reason="scripts/bootstrap installs sysbench")
def test_no_false_differences_under_sysbench(source_and_target: Servers, tmp_path: Path) -> None:
    source, target = source_and_target
    sysbench = sysbench_command(source, database="app", tables=2, table_size=5000)
    subprocess.run([*sysbench, "prepare"], check=True, capture_output=True, timeout=120)
    config = write_config(tmp_path, source, target, heartbeat_interval=0.5)
    catch_up(config)
    replicate = start_replicate(config)
    # The load runs until it is stopped (--time is only a backstop): on a loaded machine
    # the two verifies may take far longer than on an idle one, and they must both run
    # under load to prove anything.
    load = subprocess.Popen(
        [*sysbench, "--threads=2", "--rate=250", "--time=600", "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(1)
        for _ in range(2):
            assert load.poll() is None, "the load must be running while verify runs"
            code, report = verify_json(config, "--chunk-time", "0.02")
            assert code == 0, json.dumps(report)  # the whole report: pytest cuts a dict's repr
            assert report["rows"] >= 10_000
        assert load.poll() is None, f"the load stopped early: {load.communicate()[0]}"
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
        kill_group(replicate, signal.SIGTERM)
    catch_up(config)
    assert table_checksums(target) == table_checksums(source)
