"""Operations: how hotsite reaches servers, what it checks before it starts, and how it
behaves when its own files or the servers get in the way."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hotsite.testing.mariadb import PrivateMariaDB, free_port
from tests.helpers import HOTSITE, catch_up, hotsite, write_config

Servers = tuple[PrivateMariaDB, PrivateMariaDB]


def socket_url(server: PrivateMariaDB) -> str:
    """A URL whose TCP port leads nowhere: only its socket reaches the server."""
    return f"mysql://root@127.0.0.1:{free_port()}/app?socket={server.socket_path}"


@pytest.mark.slow
@pytest.mark.parametrize("decoder", ["library", "fast"])
def test_both_decoders_connect_through_the_socket_of_the_url(
    source_and_target: Servers, tmp_path: Path, decoder: str
) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)")
    config = write_config(tmp_path, source, target, decoder=decoder)
    text = config.read_text()
    config.write_text(
        text.replace(source.url(), socket_url(source)).replace(target.url(), socket_url(target))
    )
    catch_up(config)  # the snapshot
    source.execute("INSERT INTO app.t VALUES (2), (3)")
    catch_up(config)  # streamed by the decoder, over the source's socket
    assert target.execute("SELECT id FROM app.t ORDER BY id") == [(1,), (2,), (3,)]


def _one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def test_a_source_database_that_does_not_exist_is_refused(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    config = write_config(tmp_path, source, target)
    config.write_text(config.read_text().replace("/app", "/nope"))
    _one_line_error(
        hotsite(config, "replicate", "--until-caught-up"),
        "site 'primary': database 'nope' does not exist on the source",
        "sites.primary.database",
    )
    assert target.execute("SHOW DATABASES LIKE 'hotsite'") == [], "the target was not touched"
    _one_line_error(
        hotsite(config, "verify", "--quiet"), "database 'nope' does not exist on the source"
    )


def test_a_link_whose_tables_match_nothing_warns(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    config = write_config(tmp_path, source, target, tables=["app.orders_*"])
    source.execute("CREATE TABLE app.other (id INT PRIMARY KEY)")
    result = hotsite(config, "replicate", "--until-caught-up", "--quiet")
    assert result.returncode == 0, result.stderr
    assert (
        "warning: site 'primary': no table on the source matches the link's tables (app.orders_*)"
        in result.stderr
    ), result.stderr


SOURCE_GRANTS = (
    "GRANT REPLICATION SLAVE, SELECT ON *.* TO {user}",
    "GRANT SELECT, INSERT, UPDATE, CREATE ON hotsite.* TO {user}",
)
TARGET_GRANTS = (
    "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX ON app.* TO {user}",
    "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON hotsite.* TO {user}",
)


def _user(server: PrivateMariaDB, name: str, grants: tuple[str, ...], role: bool = False) -> None:
    """A user with exactly ``grants`` (given to a default role of it when ``role``)."""
    grantee = f"{name}_role" if role else f"'{name}'@'127.0.0.1'"
    server.execute(
        f"CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY 'pw'",
        *([f"CREATE ROLE {grantee}"] if role else []),
        *(grant.format(user=grantee) for grant in grants),
        *(
            [
                f"GRANT {grantee} TO '{name}'@'127.0.0.1'",
                f"SET DEFAULT ROLE {grantee} FOR '{name}'@'127.0.0.1'",
            ]
            if role
            else []
        ),
    )


def _as_users(config: Path, source: PrivateMariaDB, target: PrivateMariaDB, s: str, t: str) -> None:
    text = config.read_text()
    text = text.replace(f"root@127.0.0.1:{source.port}", f"{s}:pw@127.0.0.1:{source.port}")
    text = text.replace(f"root@127.0.0.1:{target.port}", f"{t}:pw@127.0.0.1:{target.port}")
    config.write_text(text)


@pytest.mark.parametrize("select_on", ["*.*", "app.*"])
def test_the_documented_privileges_are_enough(
    source_and_target: Servers, tmp_path: Path, select_on: str
) -> None:
    source, target = source_and_target
    source.execute(
        "CREATE TABLE app.t (id INT PRIMARY KEY, u INT UNIQUE, v VARCHAR(9))",
        "INSERT INTO app.t VALUES (1, 1, 'a'), (2, 2, 'b')",
    )
    grants = (
        "GRANT REPLICATION SLAVE ON *.* TO {user}",
        f"GRANT SELECT ON {select_on} TO {{user}}",
    )
    _user(source, "capture", (*grants, SOURCE_GRANTS[1]))
    _user(target, "applier", TARGET_GRANTS, role=True)  # through a role: seen too
    config = write_config(tmp_path, source, target)
    _as_users(config, source, target, "capture", "applier")
    catch_up(config)  # snapshot, then streaming
    source.execute(
        "INSERT INTO app.t VALUES (3, 3, 'c')",
        "UPDATE app.t SET v = 'z' WHERE id = 1",
        "DELETE FROM app.t WHERE id = 2",
        "ALTER TABLE app.t ADD COLUMN w INT NULL, ADD INDEX (v)",
        "CREATE TABLE app.n (id INT PRIMARY KEY)",
        "DROP TABLE app.n",
    )
    catch_up(config)
    assert target.execute("SELECT id, v, w FROM app.t ORDER BY id") == [
        (1, "z", None),
        (3, "c", None),
    ]
    status = hotsite(config, "status", "--json")
    assert status.returncode == 0, status.stderr
    verify = hotsite(config, "verify", "--quiet")
    assert verify.returncode == 0, (verify.stdout, verify.stderr)


def test_a_missing_privilege_is_named_with_the_grant_that_fixes_it(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY)")
    _user(source, "capture", ("GRANT SELECT ON *.* TO {user}", SOURCE_GRANTS[1]))
    _user(target, "applier", TARGET_GRANTS)
    _user(target, "reader", ("GRANT SELECT, INSERT, UPDATE ON app.* TO {user}", TARGET_GRANTS[1]))
    config = write_config(tmp_path, source, target)
    _as_users(config, source, target, "capture", "applier")
    _one_line_error(
        hotsite(config, "replicate", "--until-caught-up"),
        "site 'primary': the source user 'capture'@'127.0.0.1' lacks REPLICATION SLAVE on *.*",
        "GRANT REPLICATION SLAVE ON *.* TO 'capture'@'127.0.0.1'",
    )
    source.execute("GRANT REPLICATION SLAVE ON *.* TO 'capture'@'127.0.0.1'")
    config.write_text(config.read_text().replace("applier:pw", "reader:pw"))
    _one_line_error(
        hotsite(config, "replicate", "--until-caught-up"),
        "site 'dr': the target user 'reader'@'127.0.0.1' lacks DELETE, CREATE, DROP, ALTER,"
        " INDEX on `app`.*",
        "GRANT DELETE, CREATE, DROP, ALTER, INDEX ON `app`.* TO 'reader'@'127.0.0.1'",
    )
    assert target.execute("SHOW TABLES FROM app") == [], "nothing was written"


def _status(config: Path) -> tuple[int, dict[str, Any]]:
    result = hotsite(config, "status", "--json")
    assert "Traceback" not in result.stderr, result.stderr
    [report] = json.loads(result.stdout)
    return result.returncode, report


def test_status_only_reads_and_exits_1_for_a_link_in_error(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)")
    config = write_config(tmp_path, source, target)
    code, report = _status(config)
    assert code == 1 and report["errors"] == [
        "dr has no position from primary: the first replicate will snapshot"
    ], report
    assert target.execute("SHOW DATABASES LIKE 'hotsite'") == [], "status created nothing"

    catch_up(config)
    code, report = _status(config)
    assert code == 0 and report["errors"] == [], report
    assert report["apply"]["position"] == report["source"]["position"]

    # A corrupt journal: reported with the least destructive fix, the rest still read.
    journal = tmp_path / ".hotsite" / "journal" / "primary-to-dr.db"
    for leftover in journal.parent.glob("primary-to-dr.db-*"):
        leftover.unlink()
    journal.write_bytes(b"not a journal" * 100)
    code, report = _status(config)
    assert code == 1, report
    [error] = report["errors"]
    assert error.startswith(f"journal {journal} cannot be read"), error
    assert "move the journal aside: the target's own position rebuilds it" in error
    assert report["source"]["position"] and report["apply"]["position"], report
    assert journal.read_bytes() == b"not a journal" * 100, "status wrote nothing into it"
    # ... and the fix it gives works, without a snapshot.
    journal.rename(journal.with_suffix(".corrupt"))
    source.execute("INSERT INTO app.t VALUES (2)")
    catch_up(config)
    assert target.execute("SELECT id FROM app.t ORDER BY id") == [(1,), (2,)]

    target.stop()
    code, report = _status(config)
    assert code == 1 and report["source"]["position"], report
    assert any("cannot reach the server" in e for e in report["errors"]), report
    table = hotsite(config, "status")
    assert table.returncode == 1 and "cannot reach the server" in table.stdout, table


def _read_only(directory: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``hotsite ARGS`` with ``directory`` mounted read-only (root passes permission
    checks, so a read-only bind mount in a private mount namespace stands in)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)  # as hotsite makes it
    script = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"'
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, str(directory),
         *HOTSITE, "--config", str(config), *args],
        capture_output=True, text=True, timeout=120, cwd=config.parent,
    )  # fmt: skip


def test_a_read_only_state_directory_is_one_line_naming_it(
    source_and_target: Servers, tmp_path: Path
) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)")
    config = write_config(tmp_path, source, target)
    state = tmp_path / ".hotsite"
    for command in ("replicate", "snapshot"):
        _one_line_error(
            _read_only(state, config, command, "--quiet"),
            f"cannot write {state / 'locks'} (Read-only file system)",
            "set state_dir in the project file to a writable directory",
        )
    assert target.execute("SHOW DATABASES LIKE 'hotsite'") == [], "no server was touched"
    _one_line_error(
        _read_only(state, config, "nodes", "list"),
        f"cannot open the state store {state / 'state.db'}",
    )

    # The journal's directory alone read-only: named, with the key that moves it.
    journals = tmp_path / "journals"
    config.write_text(config.read_text() + "  journal: journals/primary-to-dr.db\n")
    _one_line_error(
        _read_only(journals, config, "replicate", "--until-caught-up"),
        f"cannot write {journals}",
        "set this link's journal (or state_dir) in the project file",
    )
    catch_up(config)  # writable again: nothing was left half-made
    assert target.execute("SELECT id FROM app.t") == [(1,)]
