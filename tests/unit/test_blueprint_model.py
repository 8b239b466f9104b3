"""Blueprint validation, templates, per-site overrides and the HAProxy configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotsite.blueprint.graph import dependents, levels
from hotsite.blueprint.model import load_blueprint
from hotsite.blueprint.render import NodeView, Values, read_secrets, render
from hotsite.errors import ConfigError
from hotsite.traffic.haproxy import Backend, HAProxySite, render_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples/petclinic/blueprint.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bp.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "nodes: {web: {count: 1}}\nservices:\n  app: {group: wbe}\n",
            "bp.yaml:3: services.app.group: no node group 'wbe'",
        ),
        ("nodes:\n  web:\n    cuont: 2\n", "bp.yaml:3: nodes.web.cuont: unknown key"),
        (
            "nodes: {web: {}}\nservices:\n  app:\n    group: web\n    start: {}\n",
            "bp.yaml:5: services.app.start: give exactly one of 'run'",
        ),
        (
            "nodes: {web: {}}\nservices:\n  app:\n    group: web\n    check: {tcp: 1, http: x}\n",
            "exactly one of 'command', 'tcp' or 'http'",
        ),
        (
            "nodes: {web: {}}\nservices:\n  a: {group: web, depends_on: [zz]}\n",
            "depends on unknown service 'zz'",
        ),
        (
            "nodes: {web: {}}\nservices:\n  a: {group: web, install: {script: nope.sh}}\n",
            "bp.yaml:3: services.a.install.script: script nope.sh not found",
        ),
        ("services: {}\n", "bp.yaml:1: nodes: required key is missing"),
    ],
)
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_blueprint(write(tmp_path, text))
    assert expected in str(err.value)


def test_site_overrides_are_merged_and_checked(tmp_path: Path) -> None:
    text = "inputs: {port: 1}\nnodes: {web: {count: 2}}\nsites:\n  dr:\n    inputs: {port: 2}\n    nodes: {web: {count: 1}}\n"
    base = load_blueprint(write(tmp_path, text))
    dr = load_blueprint(write(tmp_path, text), "dr")
    assert (base.inputs["port"].default, base.nodes["web"].count) == (1, 2)
    assert (dr.inputs["port"].default, dr.nodes["web"].count) == (2, 1)
    bad = text + "    name: other\n"
    with pytest.raises(ConfigError, match=r"bp.yaml:7: sites.dr.name: cannot be overridden"):
        load_blueprint(write(tmp_path, bad), "dr")


def test_templates_resolve_nodes_inputs_and_filters() -> None:
    values = Values(site="primary", inputs={"port": 8080}, secrets={"pw": "hunter22"})
    values.nodes = {
        "db": [NodeView("primary-db-0", "db", 0, "10.0.0.5")],
        "web": [NodeView("w0", "web", 0, "10.0.0.6"), NodeView("w1", "web", 1, "10.0.0.7")],
    }
    ctx = values.context(None, allow_secrets=False)
    assert render("{{ nodes.db[0].address }}:{{ inputs.port }}", ctx, "x") == "10.0.0.5:8080"
    assert render("{{ nodes.web[*].address | join(',') }}", ctx, "x") == "10.0.0.6,10.0.0.7"
    assert render("{{ inputs.missing | default('d') }}", ctx, "x") == "d"
    with pytest.raises(
        ConfigError, match=r"no such node \(groups and their sizes: db\[1\], web\[2\]\)"
    ):
        render("{{ nodes.db[3].address }}", ctx, "x")
    with pytest.raises(ConfigError, match="secrets may only be used in 'env' values"):
        render("{{ secrets.pw }}", ctx, "services.app.start")
    env_ctx = values.context(None, allow_secrets=True)
    assert render("{{ secrets.pw }}", env_ctx, "x") == "hunter22"
    assert values.redact("login hunter22 ok") == "login *** ok"


def test_missing_secret_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    bp = load_blueprint(write(tmp_path, "secrets: {pw: {env: NOT_SET_ANYWHERE}}\nnodes: {a: {}}\n"))
    with pytest.raises(ConfigError, match="environment variable NOT_SET_ANYWHERE is not set"):
        read_secrets(bp)


def test_dependency_levels_and_cycles() -> None:
    deps = {"db": [], "schema": ["db"], "app": ["schema"], "lb": ["app"], "cache": []}
    assert levels(deps) == [["cache", "db"], ["schema"], ["app"], ["lb"]]
    assert dependents(deps, "schema") == {"app", "lb"}
    with pytest.raises(ConfigError, match="cycle: a -> b -> a"):
        levels({"a": ["b"], "b": ["a"]})


@pytest.mark.usefixtures("petclinic_wheelhouse")
def test_example_blueprint_is_valid() -> None:
    bp = load_blueprint(EXAMPLE, "dr")
    assert set(bp.services) == {"mariadb", "schema", "app", "lb"}
    assert bp.inputs["server_id"].default == 2


def test_haproxy_config_lists_backends_with_health_checks() -> None:
    site = HAProxySite(
        directory="/opt/lb",
        frontend_port=80,
        name="app",
        backends=(
            Backend("primary-web-0", "10.0.0.6", 8080),
            Backend("primary-web-1", "10.0.0.7", 8080),
        ),
    )
    text = render_config(site)
    assert "bind *:80" in text
    assert "server primary-web-0 10.0.0.6:8080 check" in text
    assert "option httpchk GET /health" in text
    assert "stats socket /opt/lb/admin.sock mode 600 level admin" in text
