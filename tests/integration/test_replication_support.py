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
