"""hotsite verify / verify --repair against real servers: exact differences, repair, no
false positives under write load, awkward types and schemas, clear errors."""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path
from typing import Any

from hotsite.testing.mariadb import PrivateMariaDB
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


def verify_json(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = hotsite(config, "verify", "--json", "--quiet", *args)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def diff_set(report: dict[str, Any], table: str) -> set[tuple[Any, ...]]:
    [entry] = [t for t in report["tables"] if t["table"] == table]
    return {
        (tuple(d["key"].values()), d["kind"], tuple(d["columns"])) for d in entry["diffs"]
    }


def test_reports_exactly_the_injected_rows_and_repair_fixes_them(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute(
        "CREATE TABLE app.t (id INT PRIMARY KEY, a VARCHAR(40) NULL, b INT NOT NULL)",
        f"INSERT INTO app.t SELECT seq, IF(seq % 7 = 0, NULL, CONCAT('v', seq)), seq * 3"
        f" FROM seq_1_to_{ROWS}",
        "CREATE TABLE app.pairs (shop INT, num INT, v VARCHAR(10), PRIMARY KEY (shop, num))",
        "INSERT INTO app.pairs SELECT seq % 10, seq, 'x' FROM seq_1_to_2000",
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
