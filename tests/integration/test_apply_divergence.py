"""A target that diverged before a change: counted, reported by table and key, never hidden.

The source's row wins for the row a change names; no other row is ever written. A change
that would collide with another target row on a unique key stops the link, saying which
table, row and key, until the target is fixed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hotsite.testing.mariadb import PrivateMariaDB
from tests.helpers import hotsite, rows, table_checksums, write_config

Servers = tuple[PrivateMariaDB, PrivateMariaDB]
SECRET = "secret-value-4711"  # a row value that must never reach a log line or the status


def _mismatches(target: PrivateMariaDB) -> int:
    return int(target.execute("SELECT mismatches FROM hotsite.hotsite_applied")[0][0])


def _replicate(config: Path) -> str:
    """Catch up; return stderr (warnings), which must not show row values."""
    result = hotsite(config, "replicate", "--until-caught-up", "--quiet")
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stderr
    return result.stderr


def _stopped(config: Path, *fragments: str) -> str:
    result = hotsite(config, "replicate", "--until-caught-up", "--quiet")
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert SECRET not in lines[0]
    return lines[0]


@pytest.mark.parametrize("unique_email", [False, True], ids=["primary-key-only", "unique-key"])
def test_changes_onto_a_diverged_target_are_counted_and_the_source_row_wins(
    source_and_target: Servers, tmp_path: Path, unique_email: bool
) -> None:
    """Both apply paths: collapsed (primary key only) and in source order (unique key)."""
    source, target = source_and_target
    unique = ", UNIQUE KEY email (email)" if unique_email else ""
    source.execute(
        f"CREATE TABLE app.users (id INT PRIMARY KEY, email VARCHAR(40), note VARCHAR(40){unique})",
        "INSERT INTO app.users VALUES (1, 'a@x', 'one'), (2, 'b@x', 'two'), (3, 'c@x', 'three')",
    )
    config = write_config(tmp_path, source, target)
    _replicate(config)
    # The target diverges: a row the source will update is gone, a row the source will
    # insert is already there (other values), a row the source will delete is gone.
    target.execute(
        "DELETE FROM app.users WHERE id IN (1, 3)",
        f"INSERT INTO app.users VALUES (7, 'other@x', '{SECRET}')",
    )
    source.execute(
        f"UPDATE app.users SET note = '{SECRET}' WHERE id = 1",
        "INSERT INTO app.users VALUES (7, 'g@x', 'seven')",
        "DELETE FROM app.users WHERE id = 3",
        "UPDATE app.users SET note = 'fine' WHERE id = 2",  # not diverged: not counted
    )
    warnings = _replicate(config)
    assert rows(target, "app.users") == rows(source, "app.users")
    assert _mismatches(target) == 3
    assert "app.users" in warnings
    for key, what in (("id=1", "update of a row"), ("id=7", "insert of a key"), ("id=3", "delete")):
        assert any(key in line and what in line for line in warnings.splitlines()), warnings

    status = hotsite(config, "status", "--json")
    assert status.returncode == 1, status.stderr  # a diverged target is not healthy
    report = json.loads(status.stdout)[0]
    assert report["apply"]["mismatches"] == 3
    assert any("mismatches" in error for error in report["errors"]), report["errors"]
    assert SECRET not in status.stdout

    # The count is cumulative and lives in the target, in the position's transaction.
    target.execute("DELETE FROM app.users WHERE id = 2")
    source.execute("UPDATE app.users SET note = 'again' WHERE id = 2")
    _replicate(config)
    assert _mismatches(target) == 4
    assert table_checksums(target) == table_checksums(source)


def test_unique_key_collision_with_another_row_stops_and_overwrites_nothing(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute(
        "CREATE TABLE app.users (id INT PRIMARY KEY, email VARCHAR(40) NOT NULL,"
        " note VARCHAR(40), UNIQUE KEY uq_email (email))",
        "INSERT INTO app.users VALUES (1, 'a@x', 'one'), (2, 'b@x', 'two')",
    )
    # Heartbeats on: hotsite's own heartbeat row, which no snapshot copies, is no mismatch.
    config = write_config(tmp_path, source, target, heartbeat_interval=0.2)
    _replicate(config)
    # Another row on the target holds the email the source is about to give row 3: an
    # upsert would rewrite row 9 through the unique key. It must not.
    target.execute(f"INSERT INTO app.users VALUES (9, '{SECRET}@x', 'target only')")
    source.execute(f"INSERT INTO app.users VALUES (3, '{SECRET}@x', 'three')")
    for _ in range(2):  # stays stopped on every restart until the target is fixed
        _stopped(config, "app.users", "id=3", "'uq_email'", "hotsite snapshot")
    assert rows(target, "app.users") == [
        (1, "a@x", "one"),
        (2, "b@x", "two"),
        (9, f"{SECRET}@x", "target only"),
    ]
    target.execute("DELETE FROM app.users WHERE id = 9")
    _replicate(config)
    assert rows(target, "app.users") == rows(source, "app.users")

    # The same through an UPDATE: row 2 takes an email another target row holds.
    target.execute("INSERT INTO app.users VALUES (10, 'd@x', 'target only')")
    source.execute("UPDATE app.users SET email = 'd@x' WHERE id = 2")
    _stopped(config, "app.users", "id=2", "'uq_email'")
    assert rows(target, "app.users")[-1] == (10, "d@x", "target only")
    assert rows(target, "app.users")[1] == (2, "b@x", "two")
    target.execute("DELETE FROM app.users WHERE id = 10")
    _replicate(config)
    assert table_checksums(target) == table_checksums(source)
    assert _mismatches(target) == 0
