"""DDL at the target: run exactly once across crashes, and a refusal stops the link.

DDL commits by itself, so a crash between the statement and its position row is real.
The fault points kill ``hotsite replicate`` right there; the next start must see from
the target's schema fingerprint that the statement took effect and not run it again,
even for statements that would succeed twice with another result.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hotsite.testing.mariadb import PrivateMariaDB
from tests.helpers import HOTSITE, catch_up, hotsite, rows, table_checksums, write_config

Servers = tuple[PrivateMariaDB, PrivateMariaDB]


def run_with_fault(
    config: Path, fault: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HOTSITE, "--config", str(config), "replicate", "--until-caught-up", "--quiet"],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=config.parent,
        env={**os.environ, "HOTSITE_FAULT": fault},
    )


def create_tables(server: PrivateMariaDB, *tables: str) -> dict[str, str]:
    return {t: str(server.execute(f"SHOW CREATE TABLE app.{t}")[0][1]) for t in tables}


SWAP = "RENAME TABLE app.a TO app.tmp, app.b TO app.a, app.tmp TO app.b"
ADD_INDEX = "ALTER TABLE app.a ADD INDEX (c)"  # unnamed: a second run adds c_2


@pytest.mark.parametrize("fault", ["apply.ddl.before_position", "apply.ddl.before_run"])
@pytest.mark.parametrize("statement", [SWAP, ADD_INDEX], ids=["rename-swap", "add-unnamed-index"])
def test_ddl_killed_around_its_run_takes_effect_exactly_once(
    source_and_target: Servers, tmp_path: Path, statement: str, fault: str
) -> None:
    source, target = source_and_target
    # Two tables of the same shape: only their rows (and InnoDB's table ids) tell a
    # swap from no swap.
    source.execute(
        "CREATE TABLE app.a (id INT PRIMARY KEY, c INT)",
        "CREATE TABLE app.b (id INT PRIMARY KEY, c INT)",
        "INSERT INTO app.a VALUES (1, 10)",
        "INSERT INTO app.b VALUES (2, 20), (3, 30)",
    )
    config = write_config(tmp_path, source, target)
    catch_up(config)
    source.execute(statement, "INSERT INTO app.a VALUES (100, 100)")
    died = run_with_fault(config, fault)
    assert died.returncode == 137, died.stderr
    assert f"fault point {fault}" in died.stderr
    catch_up(config)
    assert create_tables(target, "a", "b") == create_tables(source, "a", "b")
    assert rows(target, "app.a") == rows(source, "app.a")
    assert rows(target, "app.b") == rows(source, "app.b")
    assert table_checksums(target) == table_checksums(source)
    ddl = target.execute("SELECT ddl_in_progress, ddl_fingerprint FROM hotsite.hotsite_applied")
    assert ddl == [("", "")]


def _refused(config: Path) -> str:
    result = hotsite(config, "replicate", "--until-caught-up", "--quiet")
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    return lines[0]


def test_ddl_refused_by_the_target_stops_the_link_until_the_target_is_fixed(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)")
    config = write_config(tmp_path, source, target)
    catch_up(config)
    # Someone made a table on the target that the source now creates too.
    target.execute("CREATE TABLE app.extra (x INT PRIMARY KEY)")
    long_comment = "c" * 300
    source.execute(
        f"CREATE TABLE app.extra (id INT PRIMARY KEY, v INT) COMMENT '{long_comment}'",
        "INSERT INTO app.extra VALUES (1, 1)",
        "INSERT INTO app.t VALUES (2)",
    )
    first = _refused(config)
    for fragment in ("DDL", "CREATE TABLE app.extra", "already exists", "hotsite snapshot"):
        assert fragment in first, (fragment, first)
    assert long_comment not in first, "the statement is shortened"
    # Every restart: the same line, nothing applied past the statement; not "already applied".
    assert _refused(config) == first
    assert rows(target, "app.t") == [(1,)]
    assert rows(target, "app.extra") == []
    target.execute("DROP TABLE app.extra")  # the user fixes the target
    catch_up(config)
    assert table_checksums(target) == table_checksums(source)
    assert create_tables(target, "extra") == create_tables(source, "extra")
