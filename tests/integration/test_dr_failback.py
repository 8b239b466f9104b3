"""Failback on real servers: after a failover from a primary that had committed writes
the DR site never received (its errant tail), ``hotsite failback`` exports every one of
them (file and conflict log), undoes them — or re-snapshots the old primary where it
cannot (DDL in the tail) — re-synchronises it, verifies both sites identical and moves
the service home; the link home→DR then starts past the tail, which never reaches DR."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hotsite.testing.mariadb import PrivateMariaDB
from tests.dr_helpers import app_write, dr_project, pets, read_only
from tests.helpers import hotsite, kill_group, start_replicate, table_checksums


@pytest.fixture
def sites(tmp_path: Path, mariadb_factory: Callable[..., PrivateMariaDB]) -> dict[str, Any]:
    return dr_project(
        tmp_path, mariadb_factory, "id INT PRIMARY KEY, name VARCHAR(20), born DATETIME NULL", True
    )


def wait_rows(server: PrivateMariaDB, rows: list[tuple[Any, ...]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while pets(server) != rows:
        assert time.monotonic() < deadline, (pets(server), rows)
        time.sleep(0.05)


def one_line_refusal(result: Any, words: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and words in lines[0], result.stderr


def _fail_over_with_a_tail(
    config: Path, primary: PrivateMariaDB, dr: PrivateMariaDB, errant: list[str]
) -> None:
    """Replicate the first rows, lose the link, let the primary commit ``errant``, then
    fail over to dr (the primary still answers: it is fenced)."""
    app_write(
        primary,
        *(f"INSERT INTO app.pets VALUES ({i}, 'p{i}', '2020-01-0{i} 10:00:00')" for i in (1, 2, 3)),
    )
    replicate = start_replicate(config, "--from", "primary", "--to", "dr")
    try:
        wait_rows(dr, [(1, "p1"), (2, "p2"), (3, "p3")])
    finally:
        kill_group(replicate)
    app_write(primary, *errant)
    result = hotsite(config, "failover", "--to", "dr", "--apply-timeout", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RPO 0 transactions" not in result.stdout  # the tail is the RPO


def test_failback_exports_and_undoes_the_errant_tail(sites: dict[str, Any]) -> None:
    config, primary, dr, records = (sites[k] for k in ("config", "primary", "dr", "records"))
    one_line_refusal(hotsite(config, "failback"), "there is no failover to undo")

    tail_ids = [100, 101, 102, 103, 104]
    errant = [f"INSERT INTO app.pets VALUES ({i}, 'tail{i}', NULL)" for i in tail_ids]
    errant += [
        "UPDATE app.pets SET name = 'renamed' WHERE id = 1",
        "DELETE FROM app.pets WHERE id = 2",
    ]
    _fail_over_with_a_tail(config, primary, dr, errant)
    assert read_only(primary) and not read_only(dr)
    # The new primary takes writes of its own meanwhile; they must reach the old one.
    app_write(
        dr,
        *(f"INSERT INTO app.pets VALUES ({i}, 'dr{i}', NULL)" for i in (200, 201, 202)),
        "UPDATE app.pets SET name = 'dr-three' WHERE id = 3",
    )

    result = hotsite(config, "failback", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "errant tail of 7 transactions (7 row changes)" in result.stdout, result.stdout
    assert "; undone;" in result.stdout

    # Exported, every acknowledged write of the tail exactly once, nothing else.
    moves = json.loads(hotsite(config, "history", "--json").stdout)
    # newest first: the relocate back began inside the failback
    assert [(m["kind"], m["outcome"]) for m in moves] == [
        ("relocate", "done"), ("failback", "done"), ("failover", "done"),
    ]  # fmt: skip
    back = moves[1]
    assert back["relocate"] == moves[0]["id"] and back["epoch_after"] == 3
    assert (back["tail_transactions"], back["tail_rows"], back["method"]) == (7, 7, "undone")
    jsonl, sql = (Path(p) for p in back["export"])
    assert jsonl.stat().st_mode & 0o777 == 0o600
    entries = [json.loads(line) for line in jsonl.read_text().splitlines()]
    inserted = [e["after"]["id"] for e in entries if e["kind"] == "insert"]
    assert sorted(inserted) == tail_ids and len(set(inserted)) == len(inserted)
    updates = [e for e in entries if e["kind"] == "update"]
    deletes = [e for e in entries if e["kind"] == "delete"]
    assert [(u["before"]["name"], u["after"]["name"]) for u in updates] == [("p1", "renamed")]
    assert [d["before"]["id"] for d in deletes] == [2]
    assert len(entries) == 7 and {e["table"] for e in entries} == {"pets"}
    assert len({e["gtid"] for e in entries}) == 7
    script = sql.read_text()
    assert script.count("INSERT INTO `app`.`pets`") == 5
    assert (
        "UPDATE `app`.`pets` SET" in script
        and "DELETE FROM `app`.`pets` WHERE `id` <=> 2" in script
    )
    logged = primary.execute(
        "SELECT kind, decision, origin_gtid FROM hotsite.hotsite_conflicts ORDER BY id"
    )
    assert len(logged) == 7 and {(k, d) for k, d, _ in logged} == {
        ("errant insert", "undone"), ("errant update", "undone"), ("errant delete", "undone"),
    }  # fmt: skip
    assert sorted(g for _, _, g in logged) == sorted(e["gtid"] for e in entries)

    # Home again: primary writable at the next epochs, dr a fenced standby, both identical,
    # the tail undone (what dr had, plus dr's own writes).
    record = records.read()
    assert (record.primary, record.epoch, record.move) == ("primary", 3, None)
    assert not read_only(primary) and read_only(dr)
    expected = [
        (1, "p1"),
        (2, "p2"),
        (3, "dr-three"),
        (200, "dr200"),
        (201, "dr201"),
        (202, "dr202"),
    ]
    assert pets(primary) == expected and pets(dr) == expected
    assert table_checksums(primary) == table_checksums(dr)
    shown = hotsite(config, "history", "show", back["id"]).stdout
    for step in ("decided", "fenced", "tail found", "exported", "undone", "caught up",
                 "verified", "relocated"):  # fmt: skip
        assert f"s  {step}  " in shown, shown

    # The link home -> dr starts past the tail and its undo: new writes arrive, the tail
    # never does; verify passes.
    replicate = start_replicate(config, "--from", "primary", "--to", "dr")
    try:
        app_write(primary, "INSERT INTO app.pets VALUES (300, 'home', NULL)")
        wait_rows(dr, [*expected, (300, "home")])
        verify = hotsite(config, "verify", "--from", "primary", "--to", "dr", "--json")
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        kill_group(replicate)
    assert pets(dr) == pets(primary)

    # 'hotsite status' shows the record and each site's fence beside the links.
    status = hotsite(config, "status")
    assert "primary primary, epoch 3" in status.stdout, status.stdout + status.stderr
    shown_json = json.loads(hotsite(config, "status", "--json").stdout)
    assert [link["link"] for link in shown_json["links"]] == ["primary-to-dr", "dr-to-primary"]
    report = shown_json["dr"]
    assert (report["record"]["primary"], report["record"]["epoch"]) == ("primary", 3)
    assert report["writable"] == ["primary"]
    assert (report["sites"]["dr"]["kind"], report["sites"]["dr"]["epoch"]) == ("move", 3)


def test_failback_re_snapshots_where_the_tail_cannot_be_undone(sites: dict[str, Any]) -> None:
    config, primary, dr, records = (sites[k] for k in ("config", "primary", "dr", "records"))
    errant = [
        "INSERT INTO app.pets VALUES (100, 'tail100', NULL)",
        "INSERT INTO app.pets VALUES (101, 'tail101', NULL)",
    ]
    _fail_over_with_a_tail(config, primary, dr, errant)
    primary.execute("ALTER TABLE app.pets ADD COLUMN age INT NULL")  # DDL: no undo for it
    app_write(dr, "INSERT INTO app.pets VALUES (200, 'dr200', NULL)")

    # --stay: re-synchronised, verified, and left a replica.
    result = hotsite(config, "failback", "--stay", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "re-snapshotted" in result.stdout and "is DDL" in result.stderr, result.stderr
    back = json.loads(hotsite(config, "history", "--json").stdout)[0]  # no relocate: newest
    assert (back["kind"], back["method"], back["relocate"]) == ("failback", "re-snapshotted", None)
    entries = [json.loads(line) for line in Path(back["export"][0]).read_text().splitlines()]
    assert sorted(e["after"]["id"] for e in entries if e["kind"] == "insert") == [100, 101]
    assert [e["statement"] for e in entries if e["kind"] == "ddl"] == [
        "ALTER TABLE app.pets ADD COLUMN age INT NULL"
    ]
    logged = primary.execute("SELECT decision, COUNT(*) FROM hotsite.hotsite_conflicts GROUP BY 1")
    assert logged == [("re-snapshotted", 3)]
    expected = [(1, "p1"), (2, "p2"), (3, "p3"), (200, "dr200")]
    assert pets(primary) == expected == pets(dr)
    assert table_checksums(primary) == table_checksums(dr)  # the column is gone too
    record = records.read()
    assert (record.primary, record.epoch) == ("dr", 2) and read_only(primary)

    # Then home by the ordinary relocate, with the link running.
    replicate = start_replicate(config, "--from", "dr", "--to", "primary")
    try:
        app_write(dr, "INSERT INTO app.pets VALUES (201, 'dr201', NULL)")
        moved = hotsite(config, "relocate", "--to", "primary")
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert "RPO 0 transactions" in moved.stdout
    finally:
        kill_group(replicate)
    assert pets(primary) == [*expected, (201, "dr201")] and not read_only(primary)
    one_line_refusal(hotsite(config, "failback"), "there is no failover to undo")
