"""The sample blueprint's schema step against a real MariaDB: a password full of quote,
backslash and shell characters works, and never reaches a command line."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pymysql

from hotsite.blueprint.render import render
from hotsite.testing.mariadb import PrivateMariaDB

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "petclinic"
PASSWORD = "it's a \\' test; $(touch /tmp/hsc-pwned) `x` \"q\" %s"


def test_schema_step_keeps_the_password_off_command_lines(
    mariadb_factory: Callable[..., PrivateMariaDB], tmp_path: Path
) -> None:
    server = mariadb_factory()
    assert server.base_dir is not None
    shutil.copy(EXAMPLE / "db" / "schema.sql", server.base_dir / "schema.sql")
    # A `mariadb` first on PATH that writes down its arguments, then runs the real one.
    shims = tmp_path / "bin"
    shims.mkdir()
    argv_log = tmp_path / "argv.log"
    real = shutil.which("mariadb")
    assert real
    shim = shims / "mariadb"
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {argv_log}\nexec {real} "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    script = render(
        (EXAMPLE / "scripts" / "schema.sh").read_text(),
        {"inputs": {"db_dir": str(server.base_dir)}},
        "services.schema.configure",
    )
    env = {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}", "DB_PASSWORD": PASSWORD}
    for _ in range(2):  # the step is run again by a resumed `up`: still fine
        done = subprocess.run(
            ["sh", "-ec", script], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
    assert PASSWORD not in script
    logged = argv_log.read_text()
    assert logged.count("--defaults-file=") == 4 and "test" not in logged
    assert not Path("/tmp/hsc-pwned").exists()
    conn = pymysql.connect(
        host="127.0.0.1", port=server.port, user="petclinic", password=PASSWORD,
        database="petclinic",
    )  # fmt: skip
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM vets")
        assert cur.fetchone()[0] > 0  # type: ignore[index]
    conn.close()
