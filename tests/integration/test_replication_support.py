"""What cannot be replicated exactly is refused at start, or stops the link at the event."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hotsite.testing.mariadb import PrivateMariaDB
from tests.helpers import (
    catch_up,
    hotsite,
    kill_group,
    one_line_error,
    start_replicate,
    write_config,
)

Servers = tuple[PrivateMariaDB, PrivateMariaDB]


@pytest.mark.parametrize(
    ("statements", "fragments"),
    [
        (["CREATE TABLE app.m (id INT PRIMARY KEY) ENGINE=MyISAM"], ["app.m", "MyISAM", "InnoDB"]),
        (["CREATE SEQUENCE app.s"], ["app.s", "sequence"]),
        (
            [
                "CREATE TABLE app.p (id INT PRIMARY KEY)",
                "CREATE TABLE app.c (id INT PRIMARY KEY, p INT,"
                " FOREIGN KEY (p) REFERENCES app.p (id) ON DELETE CASCADE)",
            ],
            ["app.c", "CASCADE"],
        ),
    ],
    ids=["myisam", "sequence", "fk-cascade"],
)
def test_refused_at_start_naming_the_table(
    source_and_target: Servers, tmp_path: Path, statements: list[str], fragments: list[str]
) -> None:
    source, target = source_and_target
    source.execute(*statements)
    config = write_config(tmp_path, source, target)
    one_line_error(hotsite(config, "replicate", "--until-caught-up"), *fragments)
    assert target.execute("SHOW TABLES FROM app") == []


def test_library_decoder_refuses_text_it_cannot_keep_exact(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(5) CHARACTER SET ucs2)")
    config = write_config(tmp_path, source, target, decoder="library")
    one_line_error(hotsite(config, "replicate", "--until-caught-up"), "app.t.v", "ucs2")


def test_target_with_a_smaller_max_allowed_packet_is_refused(
    mariadb_factory: Callable[..., PrivateMariaDB], tmp_path: Path
) -> None:
    source = mariadb_factory(**{"max-allowed-packet": "64M"})
    target = mariadb_factory(**{"max-allowed-packet": "16M"})
    source.execute("CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)")
    config = write_config(tmp_path, source, target)
    one_line_error(
        hotsite(config, "replicate", "--until-caught-up"), "max_allowed_packet=67108864", "dr"
    )


def test_a_prepared_xa_transaction_stops_the_link_and_one_phase_xa_replicates(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY)")
    config = write_config(tmp_path, source, target)
    catch_up(config)
    source.execute(
        "XA START 'a'", "INSERT INTO app.t VALUES (1)", "XA END 'a'", "XA COMMIT 'a' ONE PHASE"
    )
    catch_up(config)
    assert target.execute("SELECT id FROM app.t") == [(1,)]
    source.execute("XA START 'b'", "INSERT INTO app.t VALUES (2)", "XA END 'b'", "XA PREPARE 'b'")
    source.execute("XA COMMIT 'b'")
    one_line_error(hotsite(config, "replicate", "--until-caught-up"), "XA", "app.t")
    assert target.execute("SELECT id FROM app.t") == [(1,)]


def test_a_table_made_myisam_while_running_stops_the_link(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY)")
    config = write_config(tmp_path, source, target)
    catch_up(config)
    running = start_replicate(config)
    try:
        source.execute("ALTER TABLE app.t ENGINE=MyISAM")
        _, stderr = running.communicate(timeout=30)
    finally:
        kill_group(running)
    assert running.returncode == 2 and "not transactional" in stderr, stderr


def test_generated_columns_are_never_written_and_match(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute(
        "CREATE TABLE app.g (id INT PRIMARY KEY, a INT, v INT AS (a * 2) VIRTUAL,"
        " s VARCHAR(20) AS (CONCAT('n', a)) STORED, KEY (s))",
        "INSERT INTO app.g (id, a) VALUES (1, 1), (2, 2)",
    )
    config = write_config(tmp_path, source, target)
    catch_up(config)  # the snapshot
    source.execute(
        "INSERT INTO app.g (id, a) VALUES (3, 3)",
        "UPDATE app.g SET a = a + 10 WHERE id = 1",
        "DELETE FROM app.g WHERE id = 2",
    )
    catch_up(config)
    assert target.execute("SELECT * FROM app.g ORDER BY id") == source.execute(
        "SELECT * FROM app.g ORDER BY id"
    )


def test_a_row_bigger_than_half_the_packet_replicates(
    source_and_target: Servers, tmp_path: Path
) -> None:
    """Values used to travel hex-encoded: a 9 MB row needed an 18 MB statement, over the
    default 16 MB max_allowed_packet that the source itself satisfied."""
    source, target = source_and_target
    source.execute("CREATE TABLE app.b (id INT PRIMARY KEY, data LONGBLOB)")
    config = write_config(tmp_path, source, target)
    catch_up(config)
    source.execute(
        "INSERT INTO app.b VALUES (1, RANDOM_BYTES(1024)), (2, REPEAT(RANDOM_BYTES(1024), 9 << 10))"
    )
    catch_up(config)
    assert target.execute("SELECT id, MD5(data) FROM app.b ORDER BY id") == source.execute(
        "SELECT id, MD5(data) FROM app.b ORDER BY id"
    )


def test_a_table_without_primary_key_created_while_running_stops_only_its_changes(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY)")
    config = write_config(tmp_path, source, target)
    catch_up(config)
    source.execute("CREATE TABLE app.nokey (a INT)", "INSERT INTO app.nokey VALUES (1), (2)")
    source.execute("INSERT INTO app.t VALUES (1)", "DROP TABLE app.nokey")
    source.execute("INSERT INTO app.t VALUES (2)")
    result = hotsite(config, "replicate", "--until-caught-up")
    assert result.returncode == 0, result.stderr
    assert "app.nokey" in result.stderr and "primary key" in result.stderr
    assert "snapshot" not in result.stderr
    assert target.execute("SELECT id FROM app.t ORDER BY id") == [(1,), (2,)]
    status = hotsite(config, "status", "--json")
    assert "app.nokey" in status.stdout


def test_a_row_too_big_for_the_targets_packet_stops_with_the_setting_to_change(
    source_and_target: Servers, tmp_path: Path
) -> None:
    """Bytes that all need escaping grow to 5/3 of their size: 12 MB becomes 20 MB."""
    source, target = source_and_target
    source.execute("CREATE TABLE app.b (id INT PRIMARY KEY, data LONGBLOB)")
    config = write_config(tmp_path, source, target)
    catch_up(config)
    source.execute("INSERT INTO app.b VALUES (1, REPEAT(X'00FF27', 4 << 20))")
    one_line_error(
        hotsite(config, "replicate", "--until-caught-up"), "app.b", "set max_allowed_packet="
    )
