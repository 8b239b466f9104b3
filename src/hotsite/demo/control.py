"""The control plane of the demo, as real processes started with the ``hotsite``
command itself — the same code paths as a deployment: ``hotsite controller``,
``hotsite agent --site S`` per site, ``hotsite entry up``, ``hotsite relocate``,
``hotsite verify``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hotsite.config import load
from hotsite.demo.processes import Processes
from hotsite.dr import History, controller_client
from hotsite.errors import HotsiteError
from hotsite.state import StateStore


class Control:
    def __init__(self, config: Path, processes: Processes) -> None:
        self.config = config
        self.directory = config.parent
        self.processes = processes
        self.hotsite = [sys.executable, "-m", "hotsite", "--config", str(config)]
        self._client: Any = None  # the controller's client, for the demo's main thread

    def log(self, name: str) -> Path:
        return self.directory / "logs" / f"{name}.log"

    def start_controller(self, timeout: float = 30.0) -> None:
        log = self.log("controller")
        self.processes.spawn("controller", [*self.hotsite, "controller"], log, cwd=self.directory)
        self._wait(lambda: "controller listening on" in _read(log), "the controller", log, timeout)

    def start_agent(self, site: str) -> None:
        self.processes.spawn(
            f"{site} agent", [*self.hotsite, "agent", "--site", site, "--quiet"],
            self.log(f"agent-{site}"), cwd=self.directory,
        )  # fmt: skip

    def agent_view(self, site: str) -> dict[str, Any]:
        try:
            view: dict[str, Any] = json.loads(
                (self.directory / ".hotsite" / "status" / f"agent-{site}.json").read_text()
            )
            return view
        except (OSError, ValueError):
            return {}

    def wait_agent(self, site: str, timeout: float = 60.0) -> None:
        def running() -> bool:
            view = self.agent_view(site)
            duties = view.get("duties") or []
            return bool(view.get("updated_at")) and all(d.get("running") for d in duties)

        self._wait(running, f"the agent of {site}", self.log(f"agent-{site}"), timeout)

    def stop_agent(self, site: str) -> None:
        self.processes.stop(f"{site} agent")

    def kill_agent(self, site: str) -> None:
        self.processes.kill(f"{site} agent")

    def record(self) -> dict[str, Any]:
        """The controller's record, from its API (primary, epoch, the move in flight)."""
        if self._client is None:
            self._client = controller_client(load(self.config))
        return self._client.record()

    def moves(self) -> list[dict[str, Any]]:
        """hotsite's own history of the moves (what 'hotsite history --json' prints),
        read from the state store here: a command per poll costs a second of CPU."""
        history = History(StateStore(self.directory / ".hotsite" / "state.db"))
        try:
            return [m.as_dict() for m in history.moves()]
        finally:
            history.store.close()

    def move(self, move_id: str) -> dict[str, Any]:
        history = History(StateStore(self.directory / ".hotsite" / "state.db"))
        try:
            found = history.get(move_id)
        finally:
            history.store.close()
        if found is None:
            raise HotsiteError(f"move {move_id} is not in the history")
        return found.as_dict()

    def entry_up(self) -> None:
        self.run("entry", "up")
        pid = self.directory / ".hotsite" / "entry" / "haproxy.pid"
        self.processes.adopt("entry point", int(pid.read_text().split()[0]))

    def run(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """One ``hotsite`` command to its end; its output goes to the demo's logs."""
        done = subprocess.run(
            [*self.hotsite, *args], capture_output=True, text=True, timeout=timeout,
            cwd=self.directory, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        with self.log("commands").open("a") as out:
            out.write(f"$ hotsite {' '.join(args)}  (exit {done.returncode})\n")
            out.write(done.stdout + done.stderr)
        return done

    def checked(self, *args: str, timeout: float = 120.0) -> str:
        done = self.run(*args, timeout=timeout)
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
            raise HotsiteError(
                f"'hotsite {' '.join(args)}' failed (exit {done.returncode}):"
                f" {last[0] if last else ''}",
                f"see {self.log('commands')}",
            )
        return done.stdout

    def _wait(self, done: Any, what: str, log: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                tail = _read(log)[-600:].strip()
                raise HotsiteError(f"{what} did not start in {timeout:g} s: {tail}", f"see {log}")
            time.sleep(0.05)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
