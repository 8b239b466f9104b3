"""Bad input gets one clear line, exit status 2, no traceback, and loses nothing."""

from __future__ import annotations

from pathlib import Path

from hotsite.testing.mariadb import PrivateMariaDB, free_port
from tests.helpers import catch_up, hotsite, one_line_error, source_seq, write_config

Servers = tuple[PrivateMariaDB, PrivateMariaDB]


def test_wrong_credentials(source_and_target: Servers, tmp_path: Path) -> None:
    source, target = source_and_target
    config = write_config(tmp_path, source, target)
    config.write_text(config.read_text().replace("root@", "root:wrong@"))
    message = one_line_error(hotsite(config, "replicate", "--until-caught-up"), "access denied")
    assert "wrong" not in message, "the password must never be shown"


def test_unreachable_server(source_and_target: Servers, tmp_path: Path) -> None:
    source, target = source_and_target
    config = write_config(tmp_path, source, target)
    config.write_text(config.read_text().replace(str(target.port), str(free_port())))
    one_line_error(hotsite(config, "replicate", "--until-caught-up"), "cannot reach", "dr")


def test_missing_binlog_settings(mariadb_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = mariadb_factory(**{"binlog-format": "MIXED", "binlog-row-metadata": "MINIMAL"})
    target = mariadb_factory()
    source.execute("CREATE DATABASE app")
    config = write_config(tmp_path, source, target)
    one_line_error(
        hotsite(config, "replicate", "--until-caught-up"),
        "binlog_format",
        "set binlog_format=ROW in the server's configuration file ([mariadbd] section)",
    )


def test_table_without_primary_key_is_named(source_and_target: Servers, tmp_path: Path) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.ok (id INT PRIMARY KEY)", "CREATE TABLE app.nokey (a INT)")
    config = write_config(tmp_path, source, target)
    one_line_error(hotsite(config, "replicate", "--until-caught-up"), "app.nokey", "primary key")


def test_purged_position_says_how_to_resnapshot_and_never_skips(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY)")
    config = write_config(tmp_path, source, target)
    catch_up(config)
    # The target goes away for a while; meanwhile the source's binlogs are purged.
    for i in range(3):
        source.execute(f"INSERT INTO app.t VALUES ({i})", "FLUSH BINARY LOGS")
    newest = source.execute("SHOW BINARY LOGS")[-1][0]
    source.execute(f"PURGE BINARY LOGS TO '{newest}'")
    before = target.execute("SELECT COUNT(*) FROM app.t")
    one_line_error(
        hotsite(config, "replicate", "--until-caught-up"),
        "no longer has position",
        "hotsite snapshot",
    )
    assert target.execute("SELECT COUNT(*) FROM app.t") == before, "nothing applied past a gap"
    result = hotsite(config, "snapshot", "--quiet")
    assert result.returncode == 0, result.stderr
    catch_up(config)
    assert target.execute("SELECT id FROM app.t ORDER BY id") == source.execute(
        "SELECT id FROM app.t ORDER BY id"
    )
    assert source_seq(source) > 0


def test_malformed_config_names_file_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "hotsite.yaml"
    config.write_text(
        "sites:\n  primary: {database: 'mysql://root@127.0.0.1:1/app'}\n  dr:\n    databse: x\n"
    )
    one_line_error(hotsite(config, "status"), "hotsite.yaml:4", "sites.dr.databse", "unknown key")
    config.write_text("sites:\n  primary: {database: 'postgres://x/y'}\n")
    one_line_error(
        hotsite(config, "status"), "hotsite.yaml:2", "sites.primary.database", "mysql://"
    )
    config.write_text("sites: [unclosed\n")
    one_line_error(hotsite(config, "status"), "not valid YAML")
    one_line_error(hotsite(tmp_path / "missing.yaml", "status"), "file not found")


def _error_lines(result: object) -> list[str]:
    stderr = result.stderr  # type: ignore[attr-defined]
    assert result.returncode == 2, (result.returncode, stderr)  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and all(line.startswith("error: ") for line in lines), stderr
    return lines


def test_every_config_error_is_reported_at_once_one_line_each(tmp_path: Path) -> None:
    config = tmp_path / "hotsite.yaml"
    config.write_text(
        "sites:\n"
        "  primary: {database: 'mysql://root@127.0.0.1:1/app'}\n"
        "  dr: {database: 'mysql://root@127.0.0.1:2/shop'}\n"
        "  dr: {database: 'mysql://root@127.0.0.1:2/other'}\n"
        "replication:\n"
        "  - {from: primary, to: dr, batch_rows: 0}\n"
        "  - {from: primary, to: dr}\n"
    )
    lines = _error_lines(hotsite(config, "status"))
    assert [line.split(":")[2] for line in lines] == ["4", "4", "6", "7"], lines
    assert "key 'dr' is written twice (lines 3 and 4)" in lines[0]
    assert "hotsite does not map schemas" in lines[1]
    assert "replication.0.batch_rows" in lines[2]
    assert "a second link primary->dr" in lines[3]


def test_only_configured_links_run(tmp_path: Path) -> None:
    config = tmp_path / "hotsite.yaml"
    config.write_text(
        "sites:\n"
        "  primary: {database: 'mysql://root@127.0.0.1:1/app'}\n"
        "  dr: {database: 'mysql://root@127.0.0.1:2/app'}\n"
        "replication:\n  - {from: primary, to: dr}\n"
    )
    for command in ("replicate", "snapshot", "verify"):
        one_line_error(
            hotsite(config, command, "--from", "primary", "--to", "primary"),
            "no replication link from primary to primary",
            "links in",
            "primary->dr",
        )
    one_line_error(
        hotsite(config, "snapshot", "--from", "dr", "--to", "primary"),
        "no replication link from dr to primary",
        "primary->dr",
    )
    assert not (tmp_path / ".hotsite" / "journal").exists(), "nothing made for a made-up link"


def test_a_password_with_url_characters_works_from_the_environment(
    source_and_target: Servers,
    tmp_path: Path,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    source, target = source_and_target
    password = "p@ss/w#rd%41:x?y"
    for server in (source, target):
        server.execute(
            f"CREATE USER 'hs'@'127.0.0.1' IDENTIFIED BY '{password}'",
            "GRANT ALL ON *.* TO 'hs'@'127.0.0.1'",
        )
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)")
    config = write_config(tmp_path, source, target)
    config.write_text(config.read_text().replace("root@", "hs:${HS_PASSWORD}@"))
    monkeypatch.setenv("HS_PASSWORD", password)
    catch_up(config)
    assert target.execute("SELECT id FROM app.t") == [(1,)]
    # A wrong one is refused without a fragment of either password in the message.
    monkeypatch.setenv("HS_PASSWORD", password + "-wrong")
    message = one_line_error(hotsite(config, "replicate", "--until-caught-up"), "access denied")
    for i in range(len(password) - 2):
        assert password[i : i + 3] not in message, message
