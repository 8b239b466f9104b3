"""The project file: every problem reported at once, each at its own line; URLs that
carry any password; only configured links exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotsite.config import DatabaseURL, load
from hotsite.errors import ConfigError, ConfigErrors

SITES = (
    "sites:\n"
    "  primary: {database: 'mysql://root@127.0.0.1:1/app'}\n"
    "  dr: {database: 'mysql://root@127.0.0.1:2/app'}\n"
)


def problems(tmp_path: Path, text: str | bytes) -> list[str]:
    path = tmp_path / "hotsite.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    lines = str(caught.value).splitlines()
    assert all(line.startswith(f"{path}:") for line in lines), lines
    return [line.removeprefix(str(path)) for line in lines]


def test_duplicate_keys_anywhere_are_refused_naming_the_key_and_both_lines(
    tmp_path: Path,
) -> None:
    found = problems(
        tmp_path,
        SITES
        + "  dr: {database: 'mysql://root@127.0.0.1:3/app'}\n"
        + "replication:\n"
        + "  - {from: primary, to: dr, to: dr}\n"
        + "state_dir: a\n"
        + "state_dir: b\n",
    )
    assert found == [
        ":4: sites.dr: key 'dr' is written twice (lines 3 and 4); keep one",
        ":6: replication.0.to: key 'to' is written twice (lines 6 and 6); keep one",
        ":8: state_dir: key 'state_dir' is written twice (lines 7 and 8); keep one",
    ]


def test_all_errors_are_reported_at_once_each_at_the_line_of_its_key(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "sites:\n"
        "  primary: {database: 'mysql://root@127.0.0.1:1/app'}\n"
        "  dr:\n"
        "    databse: x\n"
        "  other: {database: 'mysql://root@127.0.0.1:3/'}\n"
        "  shop: {database: 'mysql://root@127.0.0.1:4/shop'}\n"
        "replication:\n"
        "  - {from: primary, to: dr, server_id: 7}\n"
        "  - {from: primary, to: dr}\n"
        "  - {from: primary, to: shop, server_id: 7}\n"
        "  - {from: primary, to: other, journal: .hotsite/journal/primary-to-dr.db}\n"
        "  - {from: primary, to: nowhere}\n"
        "  - {from: dr, to: dr}\n"
        "  - {from: primary, to: dr, batch_rows: 0}\n",
    )
    assert [line.split(":")[1] for line in found] == [
        "4", "5", "6", "9", "10", "11", "12", "13", "14", "14",
    ]  # fmt: skip
    joined = "\n".join(found)
    for expected in (
        "sites.dr.databse: unknown key",
        "sites.other.database: the database URL names no database",
        "sites.shop.database: database 'shop' is not primary's 'app' (link primary->shop):"
        " hotsite does not map schemas — use the same database name on both sites",
        "replication.1.from: a second link primary->dr (the first is replication.0, line 8)",
        "replication.2.server_id: server_id 7 is also the server_id of the link at"
        " replication.0, line 8",
        "replication.3.journal: journal",
        "is also the journal of the link at replication.0, line 8",
        "replication.4.to: site 'nowhere' is not under sites (known: dr, other, primary, shop)",
        "replication.5.to: a link from 'dr' to itself",
        "replication.6.batch_rows: Input should be greater than or equal to 1",
        # checks across links still see a link with a bad value elsewhere
        "replication.6.from: a second link primary->dr",
    ):
        assert expected in joined, (expected, found)


def test_a_database_url_must_name_its_database(tmp_path: Path) -> None:
    for url in ("mysql://root@h:1/", "mysql://root@h:1"):
        found = problems(tmp_path, f"sites:\n  primary: {{database: '{url}'}}\n")
        assert found == [
            ":2: sites.primary.database: the database URL names no database"
            " (mysql://user@host:port/DATABASE) — add the database to replicate after the last '/'"
        ]


def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    found = problems(tmp_path, SITES.encode() + b"# caf\xe9\n")
    assert found == [":4: not UTF-8 text (byte 0xe9) — save the file as UTF-8"]


PASSWORD = "p@ss/w#rd%41:x?y"


def test_a_password_from_the_environment_may_hold_any_character(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_PASSWORD", PASSWORD)
    monkeypatch.setenv("DB_USER", "app@x")
    url = DatabaseURL.parse("mysql://${DB_USER}:${DB_PASSWORD}@db.example:3307/app?socket=/s")
    assert (url.user, url.password, url.host, url.port, url.database, url.unix_socket) == (
        "app@x", PASSWORD, "db.example", 3307, "app", "/s",
    )  # fmt: skip
    assert PASSWORD not in repr(url) and PASSWORD not in str(url)
    # Literal text is percent-decoded; an expanded value is used as it is.
    assert DatabaseURL.parse("mysql://u:a%40${DB_PASSWORD}@h/app").password == "a@" + PASSWORD


def test_no_fragment_of_a_password_reaches_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_PASSWORD", PASSWORD)
    fragments = [PASSWORD[i : i + 3] for i in range(len(PASSWORD) - 2)]
    # Literal passwords that break the URL: described, never quoted.
    for url in (
        f"mysql://u:{PASSWORD}@h:1/app",
        "mysql://u:secret/part@h:1/app",
        "mysql://u:secret#part@h:1/app",
        "mysql://u:secret?part@h:1/app",
        "mysql://u:secret/db?socket=/part@h:1/app",
        "mysql://u:12/app?secret=part@h:1/app",
        "mysql://u:${DB_PASSWORD}@h:1/app?sslmode=part",
        "mysql://u:${DB_PASSWORD}@h:1/app?socket=/s&socket=/t",
        "mysql://u:${DB_PASSWORD}@h:1/",
    ):
        found = problems(tmp_path, f"sites:\n  primary: {{database: '{url}'}}\n")
        assert len(found) == 1 and found[0].startswith(":2: sites.primary.database: ")
        for secret in [*fragments, "secret", "part"]:
            assert secret not in found[0], (url, found)


def test_an_unset_environment_variable_is_named(tmp_path: Path) -> None:
    found = problems(tmp_path, "sites:\n  primary: {database: 'mysql://u:${NOT_SET_1}@h/app'}\n")
    assert found == [
        ":2: sites.primary.database: environment variable NOT_SET_1 is not set"
        " (used in the database URL's password)"
    ]


def test_only_configured_links_exist(tmp_path: Path) -> None:
    path = tmp_path / "hotsite.yaml"
    path.write_text(
        SITES
        + "  third: {database: 'mysql://root@127.0.0.1:3/app'}\n"
        + "replication:\n  - {from: primary, to: dr}\n  - {from: primary, to: third}\n"
    )
    config = load(path)
    assert config.link("primary", "dr").target == "dr"
    assert config.link(None, "third").target == "third"
    with pytest.raises(ConfigError) as caught:
        config.link("dr", "primary")  # both sites are known, but no link runs that way
    assert str(caught.value) == (
        f"no replication link from dr to primary — links in {path}:"
        " primary->dr, primary->third; pass --from and --to"
    )
    with pytest.raises(ConfigError, match="several replication links match"):
        config.link("primary", None)


def test_config_errors_keep_file_order(tmp_path: Path) -> None:
    error = ConfigErrors([(9, "b"), (2, "a")])
    assert str(error) == "a\nb" and error.exit_code == 2


def test_unknown_url_options_are_refused_by_name(tmp_path: Path) -> None:
    found = problems(tmp_path, "sites:\n  primary: {database: 'mysql://u@h/app?sslmode=x'}\n")
    assert found == [
        ":2: sites.primary.database: unknown option ?sslmode in the database URL"
        " (known: ?socket=/path/to/mysqld.sock, ?ssl_ca=, ?ssl_cert=, ?ssl_key=)"
    ]


def test_a_site_needs_a_database_or_a_blueprint(tmp_path: Path) -> None:
    found = problems(tmp_path, SITES + "  web: {driver: local}\n")
    assert found == [
        ":4: sites.web: a site needs a 'database' (mysql://user:password@host:port/db, to"
        " replicate it) or a 'blueprint' (a file, to bring it up); add one of the two"
    ]
