"""Blueprint commands on the local driver: locking, exit codes, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from hotsite.blueprint.outcome import site_lock
from tests.helpers import hotsite

BLUEPRINT = """
inputs: {dir: /tmp/x}
nodes:
  box: {count: 1}
services:
  hello:
    group: box
    configure: mkdir -p {{ inputs.dir }} && echo hi > {{ inputs.dir }}/hello
    uninstall: rm -rf {{ inputs.dir }}
    check: {command: "test -f {{ inputs.dir }}/hello"}
outputs:
  where: "{{ nodes.box[0].address }}:{{ inputs.dir }}"
"""


def make(tmp_path: Path) -> Path:
    (tmp_path / "bp.yaml").write_text(BLUEPRINT)
    config = {
        "sites": {
            "primary": {"blueprint": "bp.yaml", "inputs": {"dir": str(tmp_path / "work")}},
        }
    }
    path = tmp_path / "hotsite.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_plan_up_outputs_down_exit_codes(tmp_path: Path) -> None:
    config = make(tmp_path)
    plan = hotsite(config, "plan", "primary")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "+ node primary-box-0" in plan.stdout
    as_json = json.loads(hotsite(config, "plan", "primary", "--json").stdout)
    assert as_json["create"] == ["primary-box-0"]
    assert as_json["runs"] == [
        {
            "node": "primary-box-0",
            "service": "hello",
            "steps": ["configure"],
            "reasons": {"configure": "new"},
        }
    ]
    up = hotsite(config, "up", "primary", "-q")
    assert up.returncode == 0, up.stdout + up.stderr
    assert (tmp_path / "work" / "hello").read_text() == "hi\n"
    assert hotsite(config, "plan", "primary").returncode == 0
    out = hotsite(config, "outputs", "primary")
    assert f"where = 127.0.0.1:{tmp_path / 'work'}" in out.stdout
    down = hotsite(config, "down", "primary", "-q")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not (tmp_path / "work").exists()
    assert hotsite(config, "plan", "primary").returncode == 2


def test_plan_error_exits_1_not_2(tmp_path: Path) -> None:
    config = make(tmp_path)
    (tmp_path / "bp.yaml").write_text(BLUEPRINT.replace("group: box", "group: bx"))
    plan = hotsite(config, "plan", "primary")
    assert plan.returncode == 1
    assert "bp.yaml:7: services.hello.group: no node group 'bx'" in plan.stderr


def test_second_concurrent_up_is_refused(tmp_path: Path) -> None:
    config = make(tmp_path)
    with site_lock(tmp_path / ".hotsite", "primary"):
        up = hotsite(config, "up", "primary", "-q")
        down = hotsite(config, "down", "primary", "-q")
    for result in (up, down):
        assert result.returncode == 2
        assert "site 'primary' (up/down) is in use by process" in result.stderr


def test_unknown_provider_is_an_error_at_plan_time(tmp_path: Path) -> None:
    config = make(tmp_path)
    (tmp_path / "bp.yaml").write_text(
        BLUEPRINT.replace("box: {count: 1}", "box: {count: 1, driver: rack9}")
    )
    plan = hotsite(config, "plan", "primary")
    assert plan.returncode == 1
    assert "bp.yaml:4: nodes.box: unknown node provider 'rack9'" in plan.stderr
