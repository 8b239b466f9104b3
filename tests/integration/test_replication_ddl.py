"""DDL the regular expressions got wrong, through real servers: replicated exactly,
rewritten to the link's tables, or stopped at the event with the reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hotsite.testing.mariadb import PrivateMariaDB
from tests.helpers import catch_up, hotsite, one_line_error, table_checksums, write_config

Servers = tuple[PrivateMariaDB, PrivateMariaDB]


def _no_default_schema(server: PrivateMariaDB, *statements: str) -> None:
    server.execute(*statements)  # a session with no USE: names are qualified or not at all


def test_ddl_forms_replicate_and_tables_outside_the_link_are_left_alone(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute(
        "CREATE TABLE app.t (id INT PRIMARY KEY, a INT)", "INSERT INTO app.t VALUES (1, 1)"
    )
    config = write_config(tmp_path, source, target)
    catch_up(config)
    # A table only the DR site has, outside the link's pattern, under the same name.
    target.execute(
        "CREATE DATABASE other",
        "CREATE TABLE other.b (id INT PRIMARY KEY)",
        "INSERT INTO other.b VALUES (42)",
    )
    source.execute("CREATE DATABASE other", "CREATE TABLE other.b (id INT PRIMARY KEY)")
    source.execute("TRUNCATE t", database="app")
    source.execute(
        "/* why */ CREATE TABLE `t 1` (id INT PRIMARY KEY, v VARCHAR(10))", database="app"
    )
    source.execute("INSERT INTO app.`t 1` VALUES (1, 'x')")
    _no_default_schema(source, "CREATE INDEX ix ON app.t (a)")
    source.execute("CREATE TABLE app.gone (id INT PRIMARY KEY)")
    source.execute("DROP TABLE gone, other.b", database="app")
    source.execute(
        "CREATE VIEW app.v AS SELECT id, a FROM app.t", "INSERT INTO app.t VALUES (2, 2)"
    )
    source.execute(
        "CREATE TABLE app.a1 (id INT PRIMARY KEY)",
        "CREATE TABLE app.b1 (id INT PRIMARY KEY, x INT)",
    )
    source.execute("RENAME TABLE a1 TO tmp, b1 TO a1, tmp TO b1", database="app")
    catch_up(config)
    assert table_checksums(target) == table_checksums(source)
    assert target.execute("SELECT * FROM other.b") == [(42,)], "a DR-only table survives"
    assert target.execute("SELECT * FROM app.v ORDER BY id") == [(2, 2)]
    for table in ("t", "a1", "b1", "`t 1`"):
        assert (
            target.execute(f"SHOW CREATE TABLE app.{table}")[0][1]
            == source.execute(f"SHOW CREATE TABLE app.{table}")[0][1]
        )
    source.execute("DROP VIEW app.v")
    catch_up(config)
    assert target.execute("SHOW FULL TABLES FROM app WHERE Table_type = 'VIEW'") == []


def test_a_table_renamed_into_the_link_stops_it_with_the_reason(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute(
        "CREATE TABLE app.t (id INT PRIMARY KEY)",
        "CREATE DATABASE other",
        "CREATE TABLE other.x (id INT PRIMARY KEY)",
        "INSERT INTO other.x VALUES (1)",
    )
    config = write_config(tmp_path, source, target)
    catch_up(config)
    source.execute("RENAME TABLE other.x TO app.x")
    one_line_error(
        hotsite(config, "replicate", "--until-caught-up"), "enters the link", "hotsite snapshot"
    )


def test_partitioned_tables_and_partition_ddl_replicate(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute(
        "CREATE TABLE app.p (id INT PRIMARY KEY, v INT) PARTITION BY RANGE (id)"
        " (PARTITION p0 VALUES LESS THAN (100), PARTITION p1 VALUES LESS THAN (200))",
        "INSERT INTO app.p SELECT seq, seq FROM seq_1_to_150",
        database="app",
    )
    config = write_config(tmp_path, source, target)
    catch_up(config)
    source.execute(
        "ALTER TABLE app.p ADD PARTITION (PARTITION p2 VALUES LESS THAN (300))",
        "INSERT INTO app.p SELECT seq, seq FROM seq_200_to_250",
        "ALTER TABLE app.p TRUNCATE PARTITION p0",
        "UPDATE app.p SET v = v + 1 WHERE id > 120",
        database="app",
    )
    catch_up(config)
    assert table_checksums(target) == table_checksums(source)
    assert (
        target.execute("SHOW CREATE TABLE app.p")[0][1]
        == source.execute("SHOW CREATE TABLE app.p")[0][1]
    )


def test_create_table_select_keeps_its_rows(source_and_target: Servers, tmp_path: Path) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY, v INT)")
    source.execute("INSERT INTO app.t SELECT seq, seq FROM seq_1_to_500", database="app")
    config = write_config(tmp_path, source, target)
    catch_up(config)
    source.execute("CREATE TABLE app.c (PRIMARY KEY (id)) SELECT * FROM app.t WHERE id <= 300")
    source.execute("INSERT INTO app.c VALUES (1000, 1)")
    catch_up(config)
    assert table_checksums(target) == table_checksums(source)
    assert target.execute("SELECT COUNT(*) FROM app.c") == [(301,)]


def test_ddl_runs_in_its_source_session(
    mariadb_factory: Callable[..., PrivateMariaDB], tmp_path: Path
) -> None:
    source = mariadb_factory(**{"sql-mode": "STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE"})
    target = mariadb_factory(**{"sql-mode": "STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE"})
    source.execute("CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)")
    config = write_config(tmp_path, source, target)
    catch_up(config)
    # A session that allows zero dates; a client that speaks latin1.
    source.execute(
        "SET SESSION sql_mode = ''",
        "CREATE TABLE app.z (id INT PRIMARY KEY, d DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00')",
    )
    latin1 = source.connect("app", charset="latin1")
    with latin1.cursor() as cur:
        cur.execute(
            "CREATE TABLE app.l (id INT PRIMARY KEY, v VARCHAR(5) DEFAULT 'é') CHARSET utf8mb4"
        )
    latin1.close()
    source.execute("INSERT INTO app.l (id) VALUES (1)")
    catch_up(config)
    for table in ("z", "l"):
        assert (
            target.execute(f"SHOW CREATE TABLE app.{table}")[0][1]
            == source.execute(f"SHOW CREATE TABLE app.{table}")[0][1]
        )
    assert target.execute("SELECT HEX(v) FROM app.l") == source.execute("SELECT HEX(v) FROM app.l")
