"""Secrets are masked before anything is cut, however short they are; a blueprint
secret too short to hide is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hotsite.blueprint.model import load_blueprint
from hotsite.blueprint.render import read_secrets
from hotsite.blueprint.runner import output_tail
from hotsite.errors import ConfigError, DriverError
from hotsite.nodes.config import NodesConfig
from hotsite.nodes.providers import Providers
from hotsite.redaction import redact
from hotsite.remote import history
from hotsite.remote.base import CommandResult
from hotsite.state import StateStore

SECRET = "S3cret-Value!"


def test_longest_secret_first_and_short_ones_too() -> None:
    assert redact("pw=abcdef and abc", ["abc", "abcdef"]) == "pw=*** and ***"
    assert redact("short a, b", ["a", ""]) == "short ***, b"


def test_a_secret_at_the_tail_cut_leaves_nothing_behind(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    # The 4000-character tail starts 7 characters into the secret.
    stdout = "a" * 10 + SECRET + "b" * (history.TAIL_CHARS - 6)
    history.record(
        store, node="n", command="echo", exit_status=0, duration=0.0, started_at=0.0,
        stdout=stdout, stderr="x" + SECRET + "y", secrets=[SECRET, "ab"],
    )  # fmt: skip
    (entry,) = history.query(store, node="n")
    assert entry.stdout_tail.startswith("…aaa***bbb")
    assert not any(SECRET[i:] in entry.stdout_tail for i in range(len(SECRET) - 2))
    assert entry.stderr_tail == "x***y"


def test_failure_output_is_masked_before_its_last_lines_are_kept() -> None:
    secret = "first-half\nsecond-half"
    lines = "\n".join(f"line {i}" for i in range(14))
    result = CommandResult("n", "c", 1, f"{lines}\n{secret}\n", "", 0.1)
    tail = output_tail(result, lambda text: redact(text, [secret]))
    assert "second-half" not in tail and tail.endswith("***")


def test_cloud_errors_are_masked_before_they_are_cut(tmp_path: Path) -> None:
    config = NodesConfig.model_validate(
        {"providers": {"lab": {"driver": "libcloud", "provider": "dummy", "key": SECRET}}}
    )
    driver = Providers(config, StateStore(tmp_path / "state.db")).driver("lab")
    driver.api()  # type: ignore[attr-defined]

    def fails() -> None:
        raise RuntimeError("x" * 295 + f" key={SECRET} refused")

    with pytest.raises(DriverError) as caught:
        asyncio.run(driver._call("list", fails))  # type: ignore[attr-defined]
    assert "S3cr" not in str(caught.value)


def test_a_blueprint_secret_too_short_to_hide_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bp.yaml"
    path.write_text("secrets: {pw: {env: HS_TEST_PW}}\nnodes: {a: {}}\n")
    monkeypatch.setenv("HS_TEST_PW", "abc")
    with pytest.raises(ConfigError) as caught:
        read_secrets(load_blueprint(path))
    assert str(caught.value).startswith(
        "secret 'pw' (environment variable HS_TEST_PW) has 3 character(s); hotsite needs at least 8"
    )
    assert "abc" not in str(caught.value).replace("'ab' in 'grab'", "")
    monkeypatch.setenv("HS_TEST_PW", "abcdefgh")
    assert read_secrets(load_blueprint(path)) == {"pw": "abcdefgh"}


def test_server_errors_show_the_key_not_the_row_values() -> None:
    import pymysql

    from hotsite.db import explain
    from hotsite.dburl import DatabaseURL

    url = DatabaseURL.parse("mysql://hs:pw-Secret-1@db.example/app")
    cases = {
        "Duplicate entry 'ann@example.org' for key 'email'": "Duplicate entry '…' for key 'email'",
        # The server does not escape quotes in the value.
        "Duplicate entry 'o'brien' for key 'x' for key 'name'": "Duplicate entry '…' for key 'name'",
        "Incorrect string value: '\\xF0\\x9F' for column `app`.`t`.`c` at row 1": (
            "Incorrect string value: '…' for column `app`.`t`.`c` at row 1"
        ),
        "Truncated incorrect DOUBLE value: '4111 1111'": "Truncated incorrect DOUBLE value: '…'",
    }
    for message, shown in cases.items():
        error = explain(pymysql.err.IntegrityError(1062, message), url, "dr")
        assert str(error) == f"site 'dr' database mysql://hs:***@db.example:3306/app: {shown}"
