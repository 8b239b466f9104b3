"""Helpers for the dr tests: the controller as a real process, waiting for a state."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.helpers import HOTSITE

TOKEN = "s3cret-token-0123456789abcdef"


class Controller:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.process: subprocess.Popen[str] | None = None
        self.stderr = config.parent / "controller.err"

    def start(self) -> Controller:
        env = {**os.environ, "HOTSITE_CONTROL_TOKEN": TOKEN}
        self.process = subprocess.Popen(
            [*HOTSITE, "--config", str(self.config), "controller"],
            stdout=subprocess.PIPE,
            stderr=self.stderr.open("a"),
            text=True,
            env=env,
            cwd=self.config.parent,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert "controller listening on" in line, line + self.stderr.read_text()
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)
        self.process = None


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
