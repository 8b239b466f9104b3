"""TLS between hotsite and the sites' databases, against private MariaDB servers that
hold a certificate from a CA made in the test: replication works over verified TLS
(the servers refuse plaintext), a wrong CA or host name and a server without TLS
under require_tls are refused in one line, and no password reaches the output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotsite.config import load
from hotsite.db import connect, query_value
from hotsite.testing.mariadb import PrivateMariaDB
from tests.helpers import catch_up, hotsite, rows
from tests.tlsca import TestCA

PASSWORD = "tls-Test-pw-8812"


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "pki")


def tls_server(factory: Callable[..., PrivateMariaDB], ca: TestCA, name: str) -> PrivateMariaDB:
    """A server with a certificate for 127.0.0.1 (only: not for 'localhost') that
    refuses every plaintext connection."""
    issued = ca.issue(name, hosts=("127.0.0.1",))
    server = factory(
        ssl_ca=str(ca.cert),
        ssl_cert=str(issued.cert),
        ssl_key=str(issued.key),
        require_secure_transport="ON",
    )
    server.execute("CREATE DATABASE app")
    return server


def project(directory: Path, sites: dict[str, Any], **top: Any) -> Path:
    config = {
        "sites": sites,
        "replication": [{"from": "primary", "to": "dr", "heartbeat_interval": 0}],
        **top,
    }
    path = directory / "hotsite.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_replicate_over_verified_tls_with_a_client_certificate(
    mariadb_factory: Callable[..., PrivateMariaDB], ca: TestCA, tmp_path: Path
) -> None:
    source, target = tls_server(mariadb_factory, ca, "src"), tls_server(mariadb_factory, ca, "dst")
    # The target's user must show a certificate from the CA (REQUIRE X509).
    target.execute(
        f"CREATE USER 'hs'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}' REQUIRE X509",
        "GRANT ALL ON *.* TO 'hs'@'127.0.0.1' WITH GRANT OPTION",
    )
    client = ca.issue("hotsite-client", client=True)
    source.execute("CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))")
    source.execute("INSERT INTO app.t VALUES (1, 'one'), (2, 'two')")
    config = project(
        tmp_path,
        {
            "primary": {"database": f"mysql://root@127.0.0.1:{source.port}/app?ssl_ca={ca.cert}"},
            "dr": {
                "database": f"mysql://hs:{PASSWORD}@127.0.0.1:{target.port}/app",
                "tls": {"ca": str(ca.cert), "cert": str(client.cert), "key": str(client.key)},
            },
        },
        require_tls=True,
    )
    result = hotsite(config, "--verbose", "replicate", "--until-caught-up", "--quiet")
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert rows(target, "app.t") == [(1, "one"), (2, "two")]
    # The other decoder streams over TLS too.
    data = yaml.safe_load(config.read_text())
    data["replication"][0]["decoder"] = "library"
    config.write_text(yaml.safe_dump(data))
    source.execute("INSERT INTO app.t VALUES (3, 'three')")
    catch_up(config)
    assert rows(target, "app.t")[-1] == (3, "three")
    # hotsite's own sessions are encrypted (the servers would refuse them otherwise).
    loaded = load(config)
    for site in ("primary", "dr"):
        conn = connect(loaded.site(site).database_url, site)
        cipher = query_value(
            conn,
            "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS"
            " WHERE VARIABLE_NAME = 'Ssl_cipher'",
        )
        conn.close()
        assert cipher, site
    for server in (source, target):
        assert server.execute("SHOW GLOBAL STATUS LIKE 'Ssl_accepts'")[0][1] != "0"
        assert server.execute("SELECT @@require_secure_transport")[0][0] == 1


def refusal(config: Path) -> str:
    result = hotsite(config, "replicate", "--until-caught-up", "--quiet")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_wrong_ca_or_host_name_is_refused_in_one_line(
    mariadb_factory: Callable[..., PrivateMariaDB], ca: TestCA, tmp_path: Path
) -> None:
    source, target = tls_server(mariadb_factory, ca, "src"), mariadb_factory()
    target.execute("CREATE DATABASE app")
    other = TestCA(tmp_path / "other", name="someone else")
    dr = {"database": target.url()}
    wrong_ca = project(
        tmp_path,
        {"primary": {"database": f"{source.url()}?ssl_ca={other.cert}"}, "dr": dr},
    )
    line = refusal(wrong_ca)
    # OpenSSL's reason (here: the server sends its CA, "self-signed certificate in
    # certificate chain") follows the prefix.
    assert line.startswith(
        f"error: site 'primary' database {source.url()}: the server's TLS certificate is refused: "
    ), line
    assert f"(TLS verified against CA {other.cert}) — sites.primary.tls.ca" in line
    # The right CA, but a host name the certificate does not name.
    localhost = f"mysql://root@localhost:{source.port}/app"
    wrong_name = project(
        tmp_path, {"primary": {"database": localhost, "tls": {"ca": str(ca.cert)}}, "dr": dr}
    )
    assert "Hostname mismatch, certificate is not valid for 'localhost'" in refusal(wrong_name)


def test_require_tls_refuses_a_server_without_tls_in_one_line(
    source_and_target: tuple[PrivateMariaDB, PrivateMariaDB], tmp_path: Path
) -> None:
    source, target = source_and_target
    config = project(
        tmp_path,
        {"primary": {"database": source.url()}, "dr": {"database": target.url()}},
        require_tls=True,
    )
    assert refusal(config) == (
        f"error: site 'primary' database {source.url()}: the server does not offer TLS, and"
        " this site requires it — enable TLS on the server (ssl_cert, ssl_key), or remove TLS"
        " and require_tls from sites.primary"
    )
    # A site may opt out of the project's rule; nothing then needs TLS.
    data = yaml.safe_load(config.read_text())
    for site in data["sites"].values():
        site["require_tls"] = False
    config.write_text(yaml.safe_dump(data))
    catch_up(config)
