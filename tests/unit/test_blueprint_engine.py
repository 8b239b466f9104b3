"""The engine on stand-in nodes (directories): order, idempotence, changes, failures, down."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from hotsite.blueprint.apply import Deployment, Event
from hotsite.blueprint.model import load_blueprint
from hotsite.state import StateStore
from hotsite.testing.blueprints import DirectoryNodes

BLUEPRINT = """
name: demo
inputs:
  greeting: hello
secrets:
  token: {env: DEMO_TOKEN}
nodes:
  db: {count: 1}
  web: {count: COUNT}
services:
  db:
    group: db
    files:
      - {dest: conf/db.conf, content: "port=1"}
    install: echo install >> trace
    start: echo start >> trace
    stop: echo stop >> trace
    uninstall: rm -rf conf trace
    check: {command: "test -f trace"}
  app:
    group: web
    depends_on: [db]
    env: {DB: "{{ nodes.db[0].name }}", TOKEN: "{{ secrets.token }}"}
    configure: |
      echo "greet={{ inputs.greeting }} db=$DB" > app.conf
      test -n "$TOKEN"
    start: START
    stop: echo stop >> trace
    uninstall: rm -f app.conf trace
outputs:
  url: "http://{{ nodes.web[0].name }}:8080/"
  all: "{{ nodes.web[*].name | join(',') }}"
"""


def deployment(
    tmp_path: Path, count: int = 2, start: str = "echo start >> trace", **kw
) -> tuple[Deployment, DirectoryNodes, list[Event]]:
    path = tmp_path / "blueprint.yaml"
    path.write_text(BLUEPRINT.replace("COUNT", str(count)).replace("START", start))
    events: list[Event] = []
    infra = DirectoryNodes(tmp_path / "nodes")
    dep = Deployment(
        site="primary",
        blueprint=load_blueprint(path, "primary"),
        blueprint_path=path,
        inputs={"greeting": kw.get("greeting", "hello")},
        secrets={"token": "s3cr3t-value"},
        default_driver="dirs",
        store=StateStore(tmp_path / "state.db"),
        infra=infra,
        observer=events.append,
    )
    return dep, infra, events


def test_up_runs_in_dependency_order_then_nothing_to_do(tmp_path: Path) -> None:
    dep, infra, events = deployment(tmp_path)
    plan, _, _ = dep.plan()
    assert sorted(plan.create) == ["primary-db-0", "primary-web-0", "primary-web-1"]
    outcome = asyncio.run(dep.up())
    assert outcome.ok, outcome.failures
    nodes = tmp_path / "nodes"
    assert (nodes / "primary-db-0/trace").read_text() == "install\nstart\n"
    assert (nodes / "primary-web-1/app.conf").read_text() == "greet=hello db=primary-db-0\n"
    assert outcome.outputs == {
        "url": "http://primary-web-0:8080/",
        "all": "primary-web-0,primary-web-1",
    }
    # db finished (check included) before app began anywhere
    order = [(e.service, e.status) for e in events if e.service in ("db", "app")]
    assert order.index(("db", "done")) < order.index(("app", "running"))
    # Second time: nothing to do, nothing run.
    plan, _, _ = dep.plan()
    assert plan.empty
    again = asyncio.run(dep.up())
    assert again.steps_run == 0 and infra.dirs.created == [
        "primary-db-0",
        "primary-web-0",
        "primary-web-1",
    ]


def test_changed_step_reruns_it_and_the_steps_after_with_a_restart(tmp_path: Path) -> None:
    dep, _, _ = deployment(tmp_path)
    assert asyncio.run(dep.up()).ok
    dep2, _, _ = deployment(tmp_path, greeting="bonjour")
    plan, _, _ = dep2.plan()
    runs = {(r.placement.node, r.placement.service): r.steps for r in plan.runs}
    assert runs == {
        ("primary-web-0", "app"): ["configure", "stop", "start"],
        ("primary-web-1", "app"): ["configure", "stop", "start"],
    }
    assert asyncio.run(dep2.up()).ok
    assert "bonjour" in (tmp_path / "nodes/primary-web-0/app.conf").read_text()
    assert (tmp_path / "nodes/primary-web-0/trace").read_text() == "start\nstop\nstart\n"
    assert dep2.plan()[0].empty


def test_scale_down_stops_and_releases_the_extra_node(tmp_path: Path) -> None:
    dep, _infra, _ = deployment(tmp_path, count=3)
    assert asyncio.run(dep.up()).ok
    dep2, infra2, _ = deployment(tmp_path, count=1)
    plan, _, _ = dep2.plan()
    assert plan.release == ["primary-web-1", "primary-web-2"]
    assert {(r.node, r.service) for r in plan.removals} == {
        ("primary-web-1", "app"),
        ("primary-web-2", "app"),
    }
    assert asyncio.run(dep2.up()).ok
    assert sorted(infra2.dirs.destroyed) == ["primary-web-1", "primary-web-2"]
    assert dep2.plan()[0].empty


def test_failed_step_is_reported_and_stops_only_its_dependents(tmp_path: Path) -> None:
    dep, _infra, _ = deployment(tmp_path, start="echo starting; echo boom >&2; exit 1")
    outcome = asyncio.run(dep.up())
    assert not outcome.ok
    failure = outcome.failures[0]
    assert (failure.service, failure.step) == ("app", "start")
    assert "boom" in failure.tail and failure.node.startswith("primary-web-")
    # db is fine and recorded; the failed start is not, so the next plan retries it.
    plan, _, _ = dep.plan()
    assert {r.placement.service for r in plan.runs} == {"app"}
    assert all(r.steps == ["start"] for r in plan.runs)


def test_dependents_of_a_failed_service_are_skipped(tmp_path: Path) -> None:
    dep, _, _ = deployment(tmp_path)
    dep.blueprint.services["db"].start.run = "exit 3"  # type: ignore[union-attr]
    outcome = asyncio.run(dep.up())
    assert [(f.service, f.step) for f in outcome.failures] == [("db", "start")]
    assert sorted(s[:2] for s in outcome.skipped) == [
        ("primary-web-0", "app"),
        ("primary-web-1", "app"),
    ]


def test_down_runs_teardown_in_reverse_order_and_releases_nodes(tmp_path: Path) -> None:
    dep, infra, events = deployment(tmp_path)
    assert asyncio.run(dep.up()).ok
    events.clear()
    outcome = asyncio.run(dep.down())
    assert outcome.ok, outcome.failures
    order = [(e.service, e.step) for e in events if e.status == "running" and e.service != "node"]
    assert order.index(("app", "uninstall")) < order.index(("db", "stop"))
    assert sorted(infra.dirs.destroyed) == ["primary-db-0", "primary-web-0", "primary-web-1"]
    assert not list((tmp_path / "nodes").iterdir())
    plan, _, _ = dep.plan()
    assert len(plan.create) == 3


def test_interrupted_creation_finds_nodes_instead_of_duplicating(tmp_path: Path) -> None:
    dep, infra, _ = deployment(tmp_path)
    # As if killed after the driver made the node but before it was recorded ready.
    dep.records.node_intended("primary", "primary-db-0", "db", 0, "dirs")
    asyncio.run(
        infra.dirs.create([dep.desired(dep.records.load("primary")).nodes["primary-db-0"].spec])
    )
    plan, _, _ = dep.plan()
    assert plan.resume == ["primary-db-0"]
    assert asyncio.run(dep.up()).ok
    assert infra.dirs.created.count("primary-db-0") == 1


def test_secret_is_never_logged_nor_recorded(tmp_path: Path) -> None:
    dep, infra, _ = deployment(tmp_path)
    assert asyncio.run(dep.up()).ok
    # The secret reached the step through its (hidden) environment, never the command text.
    configure = [run for run in infra.runs if run.step == "app.configure"]
    assert len(configure) == 2 and all(run.exit_status == 0 for run in configure)
    assert all("s3cr3t-value" not in run.command for run in infra.runs)
    assert "s3cr3t-value" not in _state_store_text(tmp_path / "state.db")


def _state_store_text(path: Path) -> str:
    """Everything the store holds, as SQL text, read through sqlite.

    The store runs in WAL mode: recent writes sit in ``state.db-wal`` until a checkpoint,
    so the bytes of ``state.db`` alone miss them. A fresh connection sees the WAL; the raw
    bytes of all three files are added too, for anything left outside the tables.
    """
    conn = sqlite3.connect(path)
    try:
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    raw = [
        file.read_bytes().decode(errors="replace")
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
        if file.exists()
    ]
    return "\n".join([dump, *raw])


def test_refresh_finds_a_dead_service_and_up_starts_it_again(tmp_path: Path) -> None:
    dep, _, _ = deployment(tmp_path)
    assert asyncio.run(dep.up()).ok
    assert asyncio.run(dep.refresh()) == set()
    (tmp_path / "nodes/primary-db-0/trace").unlink()  # its check: test -f trace
    unhealthy = asyncio.run(dep.refresh())
    assert unhealthy == {("primary-db-0", "db")}
    plan, _, _ = dep.plan(unhealthy)
    assert [(r.key, r.steps, r.reasons) for r in plan.runs] == [
        (("primary-db-0", "db"), ["start"], {"start": "check failed"})
    ]
    assert asyncio.run(dep.up(unhealthy)).ok
    assert asyncio.run(dep.refresh()) == set()


def test_down_keep_nodes_uninstalls_but_keeps_machines_for_the_next_up(tmp_path: Path) -> None:
    dep, infra, _ = deployment(tmp_path)
    assert asyncio.run(dep.up()).ok
    assert asyncio.run(dep.down(keep_nodes=True)).ok
    assert infra.dirs.destroyed == []
    assert not (tmp_path / "nodes/primary-web-0/app.conf").exists()  # uninstalled
    plan, _, _ = dep.plan()
    assert plan.create == [] and {r.placement.service for r in plan.runs} == {"db", "app"}
    assert asyncio.run(dep.up()).ok
    assert len(infra.dirs.created) == 3


def test_down_with_a_failing_teardown_keeps_nodes_unless_forced(tmp_path: Path) -> None:
    dep, infra, _ = deployment(tmp_path)
    assert asyncio.run(dep.up()).ok
    dep.records.teardown_known("primary", "primary-db-0", "db", {"stop": "exit 7", "env": {}}, [])
    outcome = asyncio.run(dep.down())
    assert [(f.service, f.step) for f in outcome.failures] == [("db", "stop")]
    assert infra.dirs.destroyed == []
    forced = asyncio.run(dep.down(force=True))
    assert forced.failures and len(infra.dirs.destroyed) == 3
    assert dep.records.load("primary").nodes == {}


def test_refresh_leaves_changed_services_to_the_plan(tmp_path: Path) -> None:
    dep, _, _ = deployment(tmp_path)
    assert asyncio.run(dep.up()).ok
    (tmp_path / "nodes/primary-db-0/trace").unlink()  # db is down...
    dep.blueprint.services["db"].start.run = "echo start2 >> trace"  # type: ignore[union-attr]
    assert asyncio.run(dep.refresh()) == set()  # ...but it changed: plan restarts it
    plan, _, _ = dep.plan()
    assert [r.steps for r in plan.runs if r.placement.service == "db"] == [["stop", "start"]]


def test_restart_stops_with_the_command_the_running_service_was_started_with(
    tmp_path: Path,
) -> None:
    dep, _, _ = deployment(tmp_path)
    assert asyncio.run(dep.up()).ok
    dep.blueprint.services["db"].stop.run = "echo newstop >> trace"  # type: ignore[union-attr]
    dep.blueprint.services["db"].start.run = "echo start2 >> trace"  # type: ignore[union-attr]
    assert asyncio.run(dep.up()).ok
    trace = (tmp_path / "nodes/primary-db-0/trace").read_text()
    assert trace.endswith("start\nstop\nstart2\n")  # old stop, then the new start
    assert dep.records.load("primary").teardown[("primary-db-0", "db")]["stop"] == (
        "echo newstop >> trace"
    )
