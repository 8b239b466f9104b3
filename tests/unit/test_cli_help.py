"""`hotsite --help` reads well: a flag shows no `<bool>` type, and a docstring wrapped at
100 columns in the code is one paragraph in the help, not sentences cut mid-way."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers import HOTSITE


def help_text(*args: str) -> str:
    env = {**os.environ, "COLUMNS": "220", "TERM": "dumb"}
    done = subprocess.run(
        [*HOTSITE, *args, "--help"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("command", [(), ("up",), ("status",), ("nodes", "list")])
def test_flags_show_no_bool_type(command: tuple[str, ...]) -> None:
    text = help_text(*command)
    assert "--help" in text and "<bool>" not in text


def test_hard_wrapped_docstrings_are_whole_sentences() -> None:
    text = help_text()
    assert (
        "What `up` would do now: nodes to create or release, steps to run. Exit 0 = nothing to"
        " do, 2 = changes, 1 = error." in text
    )
    assert "the steps that are not done yet, restart what fails its check" in text
    status = help_text("status")
    assert (
        "Exit status: 0 every link is healthy, 1 a link has an error (a server unreachable,"
        in status
    )
