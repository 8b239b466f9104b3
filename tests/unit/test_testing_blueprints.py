"""The supported fake of hotsite.testing.blueprints, used as docs/blueprints.md shows a
user testing their own blueprint: up, what the steps wrote, idempotence, down."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hotsite.blueprint import Deployment, load_blueprint
from hotsite.state import StateStore
from hotsite.testing.blueprints import DirectoryNodes

BLUEPRINT = """
name: shop
secrets:
  db_password: {env: SHOP_DB_PASSWORD}
nodes:
  web: {count: 2}
services:
  app:
    group: web
    env: {PASSWORD: "{{ secrets.db_password }}"}
    files:
      - {dest: conf/app.ini, content: "name={{ node.name }}"}
    install: echo "installed on $NODE" > app.conf
    configure: test -n "$PASSWORD" && test -f conf/app.ini
    start: echo started >> trace
    stop: echo stopped >> trace
"""


def _site(tmp_path: Path) -> tuple[Deployment, DirectoryNodes]:
    path = tmp_path / "blueprint.yaml"
    path.write_text(BLUEPRINT)
    nodes = DirectoryNodes(tmp_path / "nodes")
    site = Deployment(
        site="primary",
        blueprint=load_blueprint(path, "primary"),
        blueprint_path=path,
        inputs={},
        secrets={"db_password": "long-test-secret"},
        default_driver="dirs",
        store=StateStore(tmp_path / "state.db"),
        infra=nodes,
    )
    return site, nodes


def test_a_blueprint_comes_up_on_directories_and_goes_again(tmp_path: Path) -> None:
    site, nodes = _site(tmp_path)
    first = asyncio.run(site.up())
    assert first.ok and first.steps_run > 0
    assert sorted(nodes.dirs.created) == ["primary-web-0", "primary-web-1"]
    web0 = nodes.base / "primary-web-0"
    assert (web0 / "app.conf").read_text() == "installed on primary-web-0\n"
    assert (web0 / "conf" / "app.ini").read_text() == "name=primary-web-0"
    steps = [run.step for run in nodes.runs if run.node == "primary-web-0"]
    assert steps.index("app.install") < steps.index("app.configure") < steps.index("app.start")
    assert all("long-test-secret" not in run.command for run in nodes.runs)

    again = asyncio.run(site.up())
    assert again.ok and again.steps_run == 0

    assert asyncio.run(site.down()).ok
    assert sorted(nodes.dirs.destroyed) == ["primary-web-0", "primary-web-1"]
    assert not any(nodes.base.iterdir())


def test_a_failing_step_is_reported_with_its_node_and_output(tmp_path: Path) -> None:
    site, nodes = _site(tmp_path)
    (tmp_path / "blueprint.yaml").write_text(
        BLUEPRINT.replace("echo started >> trace", "echo no port >&2; exit 3")
    )
    site.blueprint = load_blueprint(tmp_path / "blueprint.yaml", "primary")
    outcome = asyncio.run(site.up())
    assert not outcome.ok
    failure = outcome.failures[0]
    assert (failure.service, failure.step) == ("app", "start")
    assert failure.node.startswith("primary-web-") and "no port" in failure.tail
    assert [run.exit_status for run in nodes.runs if run.step == "app.start"] == [3, 3]
