"""The local driver through the real CLI: nodes, run, logs, destroy (no SSH needed)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.helpers import hotsite


def test_local_nodes_run_and_logs(tmp_path: Path) -> None:
    config = tmp_path / "hotsite.yaml"
    config.write_text(
        yaml.safe_dump({"sites": {"primary": {"database": "mysql://root@127.0.0.1:1/app"}}})
    )
    created = hotsite(
        config, "nodes", "create", "app", "-n", "2", "--site", "primary", "--group", "app"
    )
    assert created.returncode == 0, created.stderr
    ran = hotsite(config, "run", "primary", "--", f"echo $$ >> {tmp_path}/ran; exit 0")
    assert ran.returncode == 0 and "2/2 nodes ok" in ran.stdout, ran.stdout + ran.stderr
    assert len((tmp_path / "ran").read_text().split()) == 2
    failed = hotsite(config, "run", "app-2", "--", "echo bad >&2; exit 3")
    assert failed.returncode == 1
    assert failed.stdout.splitlines()[0].split()[:2] == ["app-2", "exit"] and "bad" in failed.stdout
    entries = json.loads(hotsite(config, "logs", "primary", "--json").stdout)
    seen = [(e["node"], e["exit_status"]) for e in entries]
    assert sorted(seen[:2]) == [("app-1", 0), ("app-2", 0)] and seen[2] == ("app-2", 3)
    assert entries[-1]["stderr_tail"] == "bad\n"
    empty = hotsite(config, "run", "primary")
    assert (
        empty.returncode == 2
        and "Missing argument" in empty.stderr
        and "Traceback" not in empty.stderr
    )
    assert hotsite(config, "nodes", "destroy", "primary").returncode == 0
    assert json.loads(hotsite(config, "nodes", "list", "--json").stdout) == []
