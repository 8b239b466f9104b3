"""A wrong project file never destroys data: identities, positions and locks per link."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotsite.testing.mariadb import PrivateMariaDB
from tests.helpers import (
    catch_up,
    hotsite,
    kill_group,
    one_line_error,
    start_replicate,
    table_checksums,
    write_config,
)

Servers = tuple[PrivateMariaDB, PrivateMariaDB]


def _project(directory: Path, sites: dict[str, str], **extra: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        **extra,
        "sites": {name: {"database": url} for name, url in sites.items()},
        "replication": [{"from": "primary", "to": "dr", "heartbeat_interval": 0}],
    }
    path = directory / "hotsite.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_same_server_under_another_address_is_refused_and_nothing_is_written(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, _ = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1), (2)")
    # The same server through its Unix socket: the URLs look nothing alike.
    alias = f"mysql://root@127.0.0.1:1/app?socket={source.socket_path}"
    config = _project(tmp_path, {"primary": source.url(), "dr": alias})
    for command in (["replicate", "--until-caught-up"], ["snapshot", "--quiet"]):
        one_line_error(hotsite(config, *command), "same database server")
    assert source.execute("SELECT id FROM app.t ORDER BY id") == [(1,), (2,)]
    assert source.execute("SHOW DATABASES LIKE 'hotsite'") == [], "nothing written"


def test_two_sites_sharing_a_server_id_are_refused(
    mariadb_factory: Callable[..., PrivateMariaDB], tmp_path: Path
) -> None:
    source = mariadb_factory(**{"server-id": "77"})
    target = mariadb_factory(**{"server-id": "77"})
    source.execute("CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)")
    config = write_config(tmp_path, source, target)
    one_line_error(hotsite(config, "replicate", "--until-caught-up"), "server_id=77")
    assert target.execute("SHOW DATABASES LIKE 'app'") == []


def test_replica_server_id_equal_to_a_sites_server_id_is_refused(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY)")
    config = write_config(tmp_path, source, target, server_id=source.server_id)
    one_line_error(hotsite(config, "replicate", "--until-caught-up"), "replica server id")


@pytest.mark.slow
def test_two_projects_with_the_same_site_names_share_a_target_without_sharing_positions(
    mariadb_factory: Callable[..., PrivateMariaDB], tmp_path: Path
) -> None:
    shop, blog, target = mariadb_factory(), mariadb_factory(), mariadb_factory()
    shop.execute("CREATE DATABASE shop", "CREATE TABLE shop.o (id INT PRIMARY KEY, v INT)")
    blog.execute("CREATE DATABASE blog", "CREATE TABLE blog.p (id INT PRIMARY KEY, v INT)")
    shop.execute("INSERT INTO shop.o SELECT seq, seq FROM seq_1_to_100", database="shop")
    blog.execute("INSERT INTO blog.p SELECT seq, seq FROM seq_1_to_50", database="blog")
    one = _project(tmp_path / "shop", {"primary": shop.url("shop"), "dr": target.url("shop")})
    two = _project(tmp_path / "blog", {"primary": blog.url("blog"), "dr": target.url("blog")})
    catch_up(one)
    catch_up(two)  # before: it found 'primary's position and skipped its snapshot
    shop.execute("INSERT INTO shop.o VALUES (1000, 1)")
    blog.execute("UPDATE blog.p SET v = v + 1")
    catch_up(one)
    catch_up(two)
    assert table_checksums(target, "shop") == table_checksums(shop, "shop")
    assert table_checksums(target, "blog") == table_checksums(blog, "blog")
    keys = {row[0] for row in target.execute("SELECT link_key FROM hotsite.hotsite_applied")}
    assert keys == {"shop/primary-to-dr", "blog/primary-to-dr"}

    # The same project name on another source: that position is not this link's.
    clash = _project(
        tmp_path / "clash",
        {"primary": blog.url("blog"), "dr": target.url("blog")},
        project="shop",
    )
    one_line_error(hotsite(clash, "replicate", "--until-caught-up"), "another source server")
    assert table_checksums(target, "shop") == table_checksums(shop, "shop")


def test_a_second_agent_for_the_same_link_from_another_directory_is_refused(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY)")
    first = _project(tmp_path / "a", {"primary": source.url(), "dr": target.url()}, project="p")
    second = _project(tmp_path / "b", {"primary": source.url(), "dr": target.url()}, project="p")
    catch_up(first)
    running = start_replicate(first)
    try:
        one_line_error(hotsite(second, "replicate", "--until-caught-up"), "already running")
        source.execute("INSERT INTO app.t VALUES (7)")
        deadline = time.monotonic() + 30
        while target.execute("SELECT COUNT(*) FROM app.t") != [(1,)]:
            assert running.poll() is None, "the first agent must keep running"
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        kill_group(running, signal.SIGTERM)


def test_snapshot_over_rows_this_link_did_not_load_needs_force(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute(
        "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)", "INSERT INTO app.t VALUES (1, 1)"
    )
    target.execute(
        "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)", "INSERT INTO app.t VALUES (9, 9)"
    )
    config = write_config(tmp_path, source, target)
    for command in (["replicate", "--until-caught-up"], ["snapshot", "--quiet"]):
        one_line_error(hotsite(config, *command), "app.t", "--force")
    assert target.execute("SELECT * FROM app.t") == [(9, 9)], "the target's rows are intact"
    result = hotsite(config, "snapshot", "--quiet", "--force")
    assert result.returncode == 0, result.stderr
    assert target.execute("SELECT * FROM app.t") == [(1, 1)]
    # Its own earlier load is this link's: a second snapshot needs no --force.
    assert hotsite(config, "snapshot", "--quiet").returncode == 0


def test_statement_logged_change_of_a_replicated_table_stops_the_link(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute(
        "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)",
        "CREATE DATABASE other",
        "CREATE TABLE other.x (id INT PRIMARY KEY)",
    )
    config = write_config(tmp_path, source, target)
    catch_up(config)
    # Another application's statement-logged table is none of the link's business.
    source.execute("SET SESSION binlog_format = 'STATEMENT'", "INSERT INTO other.x VALUES (1)")
    source.execute("INSERT INTO app.t VALUES (1, 1)")
    catch_up(config)
    source.execute("SET SESSION binlog_format = 'STATEMENT'", "INSERT INTO app.t VALUES (2, 2)")
    source.execute("INSERT INTO app.t VALUES (3, 3)")
    one_line_error(hotsite(config, "replicate", "--until-caught-up"), "app.t", "logged statement")
    assert target.execute("SELECT id FROM app.t") == [(1,)], "nothing applied past it"


def test_row_image_switched_to_minimal_stops_the_link(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY, v INT, w INT)")
    source.execute("INSERT INTO app.t VALUES (1, 1, 1)")
    config = write_config(tmp_path, source, target)
    catch_up(config)
    source.execute("SET SESSION binlog_row_image = 'MINIMAL'", "UPDATE app.t SET v = 2")
    one_line_error(hotsite(config, "replicate", "--until-caught-up"), "app.t", "binlog_row_image")
    assert target.execute("SELECT v FROM app.t") == [(1,)]


def test_row_metadata_switched_to_minimal_while_running_stops_the_link(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY, v INT)")
    config = write_config(tmp_path, source, target)
    catch_up(config)
    running = start_replicate(config)
    try:
        source.execute("SET GLOBAL binlog_row_metadata = 'MINIMAL'")
        source.execute("INSERT INTO app.t VALUES (1, 1)")
        _, stderr = running.communicate(timeout=30)
    finally:
        kill_group(running, signal.SIGTERM)
        source.execute("SET GLOBAL binlog_row_metadata = 'FULL'")
    assert running.returncode == 2, stderr
    assert "binlog_row_metadata" in stderr and "app.t" in stderr and "Traceback" not in stderr
    assert target.execute("SELECT COUNT(*) FROM app.t") == [(0,)]
