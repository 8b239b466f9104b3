"""The dr commands' refusals that need no server: one line on stderr, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import hotsite

SITES = (
    "sites:\n"
    "  primary: {database: 'mysql://root@127.0.0.1:1/app'}\n"
    "  dr: {database: 'mysql://root@127.0.0.1:2/app'}\n"
)


@pytest.mark.parametrize(
    ("section", "args", "words"),
    [
        ("", ("controller",), "has no dr: section"),
        (
            "dr: {primary: primary}\n",
            ("controller",),
            "no control token: set HOTSITE_CONTROL_TOKEN",
        ),
        ("dr: {primary: primary}\n", ("entry", "up"), "has no dr.entry section"),
        ("dr: {primary: primary}\n", ("failover", "--to", "nowhere"), "unknown site 'nowhere'"),
        ("dr: {primary: primary}\n", ("promote", "dr"), "run 'hotsite promote dr --force'"),
        (
            "dr: {primary: primary}\n",
            ("relocate", "--to", "dr"),
            "no record of which site is primary",
        ),
        ("dr: {primary: primary}\n", ("history", "show", "xyz"), "no move 'xyz'"),
    ],
)
def test_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, section: str, args: tuple[str, ...],
    words: str,
) -> None:  # fmt: skip
    config = tmp_path / "hotsite.yaml"
    config.write_text(SITES + section)
    monkeypatch.delenv("HOTSITE_CONTROL_TOKEN", raising=False)
    result = hotsite(config, *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and words in lines[0], result.stderr


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("0123456789abcdef0123\n")
    token.chmod(0o644)
    config = tmp_path / "hotsite.yaml"
    config.write_text(SITES + f"dr: {{primary: primary, controller: {{token_file: {token}}}}}\n")
    result = hotsite(config, "controller")
    assert result.returncode == 2 and "chmod 600" in result.stderr
    assert "0123456789abcdef" not in result.stderr + result.stdout
