"""TLS settings of the sites' databases: from the URL and/or the project file, one key
in one place, absolute paths, require_tls per project and per site, and the reserved
place for the controller/agent channel."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from hotsite.config import load
from hotsite.db import connection_settings
from hotsite.errors import ConfigError
from hotsite.tls import TLSSettings
from tests.tlsca import TestCA
from tests.unit.test_config import problems

URL = "mysql://hs:pw@db.example:3306/app"


def site_tls(tmp_path: Path, text: str, name: str = "dr") -> TLSSettings:
    path = tmp_path / "hotsite.yaml"
    path.write_text(text)
    return load(path).site(name).database_url.tls


def test_tls_from_the_url_and_from_the_project_file_combine(tmp_path: Path) -> None:
    text = (
        "sites:\n"
        f"  primary: {{database: '{URL}?ssl_ca=/etc/hs/ca.pem'}}\n"
        f"  dr: {{database: '{URL}?ssl_ca=/etc/hs/ca.pem',"
        " tls: {cert: /etc/hs/c.pem, key: /etc/hs/c.key}}\n"
        "  plain: {database: 'mysql://u@h/app'}\n"
    )
    assert site_tls(tmp_path, text) == TLSSettings(
        "/etc/hs/ca.pem", "/etc/hs/c.pem", "/etc/hs/c.key"
    )
    assert site_tls(tmp_path, text, "primary") == TLSSettings(ca="/etc/hs/ca.pem")
    assert not site_tls(tmp_path, text, "plain").enabled


def test_require_tls_for_the_project_and_per_site(tmp_path: Path) -> None:
    text = (
        "require_tls: true\n"
        "sites:\n"
        f"  dr: {{database: '{URL}'}}\n"
        f"  lab: {{database: '{URL}', require_tls: false}}\n"
    )
    assert site_tls(tmp_path, text) == TLSSettings(required=True)
    assert not site_tls(tmp_path, text, "lab").enabled
    text = f"sites:\n  dr: {{database: '{URL}', require_tls: true}}\n  x: {{database: '{URL}'}}\n"
    assert site_tls(tmp_path, text).required and not site_tls(tmp_path, text, "x").enabled


def test_bad_tls_settings_are_refused_at_their_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "sites:\n"
        f"  a: {{database: '{URL}?ssl_ca=/x/ca.pem', tls: {{ca: /y/ca.pem}}}}\n"
        f"  b: {{database: '{URL}', tls: {{ca: certs/ca.pem}}}}\n"
        f"  c: {{database: '{URL}', tls: {{key: /k.pem}}}}\n"
        "  d: {database: 'mysql://u@h/app?socket=/s.sock', tls: {ca: /ca.pem}}\n"
        "  e: {database: 'mysql://u@h/app?socket=/s.sock', require_tls: true}\n"
        f"  f: {{database: '{URL}?ssl_cert=/c.pem&ssl_ca=/a.pem&ssl_ca=/b.pem'}}\n",
    )
    assert [line.split(": ", 1)[0] for line in found] == [
        ":2", ":3", ":4", ":5", ":6", ":7",
    ]  # fmt: skip
    joined = "\n".join(found)
    for expected in (
        "sites.a: Value error, the TLS ca is given twice (in the URL and under tls:); keep one",
        "sites.b.tls.ca: Value error, the TLS ca path 'certs/ca.pem' must be absolute",
        "sites.c.tls: Value error, a TLS key is given without its certificate",
        "sites.d: Value error, TLS is for TCP connections, but the database URL uses ?socket=",
        "sites.e.database: TLS is required (require_tls), but the database URL uses ?socket=",
        "sites.f.database: the database URL gives ?ssl_ca= twice",
    ):
        assert expected.replace("Value error, ", "") in joined, (expected, found)


def test_connections_of_a_tls_site_verify_certificate_and_host(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "pki")
    client = ca.issue("client", client=True)
    text = (
        f"sites:\n  dr: {{database: '{URL}?ssl_ca={ca.cert}',"
        f" tls: {{cert: {client.cert}, key: {client.key}}}}}\n"
    )
    path = tmp_path / "hotsite.yaml"
    path.write_text(text)
    settings = connection_settings(load(path).site("dr").database_url)
    context = settings["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert "pw" not in repr(load(path).site("dr").database_url)
    # A file that is not there: one line naming it, not a traceback at connect time.
    path.write_text(text.replace(str(ca.cert), str(tmp_path / "missing.pem")))
    with pytest.raises(ConfigError) as caught:
        connection_settings(load(path).site("dr").database_url)
    assert str(caught.value).startswith(
        f"mysql://hs:***@db.example:3306/app: cannot use the TLS CA file {tmp_path / 'missing.pem'}"
        " (No such file or directory)"
    )


def test_the_controller_channel_has_a_reserved_place(tmp_path: Path) -> None:
    path = tmp_path / "hotsite.yaml"
    path.write_text(f"control_tls: {{ca: /etc/hs/ca.pem}}\nsites:\n  dr: {{database: '{URL}'}}\n")
    assert load(path).control_tls is not None
    assert problems(
        tmp_path, "control_tls: {ca: rel.pem}\nsites: {dr: {database: 'mysql://u@h/a'}}\n"
    )
