"""verify's errors: one line on stderr, exit status 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import yaml

from hotsite.testing.mariadb import PrivateMariaDB
from tests.helpers import catch_up, hotsite, write_config

Servers = tuple[PrivateMariaDB, PrivateMariaDB]


def _fails(config: Path, *args: str, says: str) -> None:
    result = hotsite(config, "verify", "--quiet", *args, timeout=60)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_verify_errors_are_one_line_with_exit_2(source_and_target: Servers, tmp_path: Path) -> None:
    source, target = source_and_target
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)")
    config = write_config(tmp_path, source, target)

    _fails(config, says="has no replication position from 'primary'")  # never replicated
    catch_up(config)
    _fails(config, "--tables", "other.*", says="no table matches other.*")
    _fails(config, "--from", "elsewhere", says="no replication link from elsewhere")
    _fails(config, "--tables", "nodot", says="must look like 'schema.table'")
    _fails(config, "--link", "nope", says="no replication link named 'nope'")
    ok = hotsite(config, "verify", "--quiet", "--link", "primary-to-dr")
    assert ok.returncode == 0 and "identical: 1 rows in 1 tables" in ok.stdout, ok

    # Replication stopped while the source moves on: no comparison, a reason instead.
    source.execute("INSERT INTO app.t VALUES (2)")
    _fails(config, "--wait-timeout", "0.5", says="did not reach the source position")

    no_links = tmp_path / "nolinks"
    no_links.mkdir()
    doc = yaml.safe_load(config.read_text())
    doc.pop("replication")
    (no_links / "hotsite.yaml").write_text(yaml.safe_dump(doc))
    _fails(no_links / "hotsite.yaml", says="no replication link")

    target.stop()
    _fails(config, says="cannot reach the server")
