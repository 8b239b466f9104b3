"""The control token: from a 0600 file or the environment, never shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hotsite.config_dr import DRConfig
from hotsite.dr.token import load_token
from hotsite.errors import ConfigError

SECRET = "0123456789abcdef0123"


def dr(token_file: Path | None = None) -> DRConfig:
    controller = {"token_file": str(token_file)} if token_file else {}
    return DRConfig.model_validate({"primary": "a", "controller": controller})


def test_token_from_a_private_file_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(SECRET + "\n")
    os.chmod(path, 0o600)
    token = load_token(dr(path), environ={})
    assert token.matches(f"Bearer {SECRET}") and not token.matches(f"Bearer {SECRET}x")
    assert not token.matches(None)
    assert SECRET not in repr(token) and SECRET not in str(token) and SECRET not in f"{token}"
    assert load_token(dr(), environ={"HOTSITE_CONTROL_TOKEN": SECRET}).matches(f"Bearer {SECRET}")


@pytest.mark.parametrize(
    ("mode", "content", "env", "expected"),
    [
        (0o644, SECRET, None, "may be read by other users (mode 0644) — chmod 600"),
        (0o600, "short", None, "too short or holds spaces"),
        (None, None, {}, "no control token: set HOTSITE_CONTROL_TOKEN"),
        (None, None, {"HOTSITE_CONTROL_TOKEN": "a b c d e f g h i j"}, "too short or holds"),
    ],
)
def test_bad_tokens_are_refused_in_one_line_without_showing_them(
    tmp_path: Path, mode: int | None, content: str | None, env: dict[str, str] | None,
    expected: str,
) -> None:  # fmt: skip
    path = None
    if content is not None and mode is not None:
        path = tmp_path / "token"
        path.write_text(content)
        os.chmod(path, mode)
    with pytest.raises(ConfigError) as caught:
        load_token(dr(path), environ=env or {})
    message = str(caught.value)
    assert expected in message and "\n" not in message
    assert SECRET not in message
