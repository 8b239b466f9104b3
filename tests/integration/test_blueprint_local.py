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


def test_outputs_only_after_a_successful_up(tmp_path: Path) -> None:
    config = make(tmp_path)
    good = (tmp_path / "bp.yaml").read_text()
    (tmp_path / "bp.yaml").write_text(good.replace("echo hi >", "false && echo hi >"))
    assert hotsite(config, "up", "primary", "-q").returncode == 1
    for args in ((), ("--json",)):
        out = hotsite(config, "outputs", "primary", *args)
        assert out.returncode == 2 and out.stdout == ""
        assert out.stderr.strip() == (
            "error: site 'primary' has no outputs (status: failed): only a successful `up`"
            " records them, and `down` clears them — run hotsite up primary"
        )
    (tmp_path / "bp.yaml").write_text(good)
    assert hotsite(config, "up", "primary", "-q").returncode == 0
    assert "where = 127.0.0.1:" in hotsite(config, "outputs", "primary").stdout
    # A later failed `up` keeps the outputs of the last good one, and says so.
    (tmp_path / "bp.yaml").write_text(good.replace("echo hi >", "false && echo hello >"))
    assert hotsite(config, "up", "primary", "-q").returncode == 1
    out = hotsite(config, "outputs", "primary")
    assert out.returncode == 0 and "where = 127.0.0.1:" in out.stdout
    assert "warning: the last `up` of site 'primary' did not finish (status: failed)" in out.stderr
    hotsite(config, "down", "primary", "-q")


def test_a_project_directory_others_may_write_to_gets_one_warning(tmp_path: Path) -> None:
    config = make(tmp_path)
    tmp_path.chmod(0o777)
    try:
        out = hotsite(config, "plan", "primary")
    finally:
        tmp_path.chmod(0o700)
    warnings = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: the project directory {tmp_path} is writable by other users (mode 0777);"
        f" they could change the project file and the scripts it runs: chmod go-w {tmp_path}"
    ]
