"""The deployed agent's wheelhouse and lifecycle commands, run for real by the node's shell (dash), here:
start is idempotent, a killed agent is started again by its supervisor, the check
follows the status file, stop leaves no process of the agent's session — even when the
supervisor itself was killed first. The agent is a stand-in script that writes its
status file as the real one does (the real one runs in test_blueprint_agent.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hotsite.blueprint.agent_service import (
    AgentFiles,
    check_command,
    lifecycle,
    supervisor_script,
)
from hotsite.blueprint.wheelhouse import Wheelhouse
from hotsite.faults import FAULT_EXIT_STATUS
from tests.dr_helpers import wait_for

FAKE_AGENT = """#!/bin/sh
# stands in for `hotsite agent`: rewrites its status file every 0.2 s, as the agent does
mkdir -p state/status
while :; do touch state/status/agent-dr.json; sleep 0.2; done
"""


def sh(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60)


def group(directory: Path) -> set[int]:
    """Processes of the agent's session (its pgid is the supervisor's pid)."""
    pgid = int((directory / "agent.pid").read_text())
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[2]) == pgid and stat[0] != "Z":
                found.add(int(entry.name))
    return found


def agent_pid(directory: Path) -> int | None:
    supervisor = int((directory / "agent.pid").read_text())
    for pid in group(directory) - {supervisor}:
        try:
            if b"venv/bin/hotsite" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


def test_start_check_restart_and_stop(tmp_path: Path) -> None:
    directory = tmp_path / "agent"
    (directory / "venv" / "bin").mkdir(parents=True)
    fake = directory / "venv" / "bin" / "hotsite"
    fake.write_text(FAKE_AGENT)
    fake.chmod(0o755)
    files = AgentFiles(str(directory), "dr")
    (directory / "supervise.sh").write_text(supervisor_script(files))
    steps = lifecycle(files, Wheelhouse("key", (), tmp_path), "python3")
    check = check_command(files)
    assert sh(check).returncode != 0  # nothing runs yet

    assert sh(steps["start"]).returncode == 0
    wait_for(lambda: sh(check).returncode == 0, "the check", 10)
    supervisor = int((directory / "agent.pid").read_text())
    assert sh(steps["start"]).returncode == 0  # again: the running one is kept
    time.sleep(0.3)
    assert int((directory / "agent.pid").read_text()) == supervisor
    assert len([p for p in group(directory) if p != supervisor]) >= 1

    # kill -9 of the agent: the supervisor starts another within about a second.
    first = agent_pid(directory)
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: agent_pid(directory) not in (None, first), "a new agent", 10)
    assert "starting it again" in (directory / "agent.log").read_text()

    # The supervisor killed: stop still ends the agent it left behind.
    os.kill(supervisor, signal.SIGKILL)
    left = group(directory)
    assert left
    stopped = sh(steps["stop"])
    assert stopped.returncode == 0, stopped.stderr
    assert not any(Path(f"/proc/{p}").exists() and _alive(p) for p in left)
    assert not (directory / "agent.pid").exists()
    time.sleep(6)  # the status file ages past the check's 5 s
    failed = sh(check)
    assert failed.returncode != 0
    assert sh(steps["stop"]).returncode == 0  # again: nothing to stop
    assert sh(steps["uninstall"]).returncode == 0 and not directory.exists()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_wheelhouse_build_killed_midway_is_never_taken_for_a_built_one(tmp_path: Path) -> None:
    """kill -9 (a fault point) after the wheels are in, before the rename: no wheelhouse
    looks built; the next build clears what was left and completes."""
    build = (
        "from hotsite.blueprint.wheelhouse import wheelhouse; w = wheelhouse(); "
        "print(w.build()); assert w.ready"
    )
    env = {**os.environ, "HOTSITE_CACHE": str(tmp_path)}
    argv = [sys.executable, "-c", build]
    crashed = subprocess.run(
        argv, env={**env, "HOTSITE_FAULT": "wheelhouse.before_rename"}, capture_output=True,
        text=True, timeout=900,
    )  # fmt: skip
    assert crashed.returncode == FAULT_EXIT_STATUS, crashed.stderr
    root = tmp_path / "wheelhouse"
    left = [p for p in root.iterdir() if p.name.startswith(".hotsite-")]
    assert left and list(left[0].glob("*.whl"))  # wheels were in
    assert not [p for p in root.iterdir() if p.name.startswith("hotsite-")]
    built = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stderr
    path = Path(built.stdout.strip())
    assert (path / "requirements.txt").is_file()
    assert list(path.glob("hotsite-*.whl")) and list(path.glob("pydantic-*.whl"))
    assert not [p for p in root.iterdir() if p.name.startswith(".hotsite-")]
