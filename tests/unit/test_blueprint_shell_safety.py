"""Blueprint values on their way into shell commands: the quote filter, directories a
step removes (safe_dir, the load balancer's dir, replaced upload trees), env keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotsite.blueprint.apply import Deployment
from hotsite.blueprint.model import load_blueprint
from hotsite.blueprint.render import RenderError, render
from hotsite.errors import ConfigError
from hotsite.state import StateStore
from hotsite.testing.blueprints import DirectoryNodes
from hotsite.traffic.haproxy import HAProxySite, lifecycle

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "petclinic" / "blueprint.yaml"
CTX = {"inputs": {"dir": "/opt/a b; reboot", "hosts": ["h1", "it's"], "port": 8080}}


def test_quote_makes_one_shell_word_of_any_value() -> None:
    assert render("rm -rf {{ inputs.dir | quote }}", CTX, "x") == "rm -rf '/opt/a b; reboot'"
    assert render("for h in {{ inputs.hosts | quote }}", CTX, "x") == "for h in h1 'it'\"'\"'s'"
    assert render("{{ inputs.port | quote }}", CTX, "x") == "8080"
    with pytest.raises(RenderError, match="filter quote takes no argument"):
        render("{{ inputs.port | quote('x') }}", CTX, "x")
    with pytest.raises(RenderError, match=r"known: join, default, quote, safe_dir"):
        render("{{ inputs.port | shell }}", CTX, "x")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "it is empty"),
        ("/", "'/' is the root directory"),
        ("//.", "'//.' is the root directory"),
        ("opt/app", "'opt/app' is not an absolute path"),
        ("/opt/app/../..", "holds a '..'"),
    ],
)
def test_safe_dir_refuses_what_rm_rf_must_never_get(value: str, reason: str) -> None:
    with pytest.raises(RenderError) as caught:
        render("rm -rf {{ inputs.d | safe_dir | quote }}", {"inputs": {"d": value}}, "svc.stop")
    assert str(caught.value).startswith("svc.stop: refused as a directory to remove:")
    assert reason in str(caught.value)
    assert render("{{ inputs.d | safe_dir }}", {"inputs": {"d": "/opt/app"}}, "x") == "/opt/app"


def test_the_load_balancer_directory_is_never_empty_or_root() -> None:
    for directory in ("", "/", "relative"):
        with pytest.raises(ValueError, match="the HAProxy directory is refused"):
            HAProxySite(directory=directory, frontend_port=80, backends=())
    assert lifecycle(HAProxySite("/opt/lb", 80, ()))["uninstall"] == "rm -rf /opt/lb"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bp.yaml"
    path.write_text(text)
    return path


def test_env_keys_must_be_shell_variable_names(tmp_path: Path) -> None:
    text = "nodes: {web: {}}\nservices:\n  app:\n    group: web\n    env: {'A;rm -rf /': x}\n"
    with pytest.raises(ConfigError) as caught:
        load_blueprint(write(tmp_path, text))
    assert str(caught.value).startswith(
        f"{tmp_path / 'bp.yaml'}:5: services.app.env: 'A;rm -rf /' is not a shell variable name"
    )
    assert len(str(caught.value).splitlines()) == 1


def plan(tmp_path: Path, blueprint: Path, inputs: dict[str, object]) -> None:
    Deployment(
        site="primary",
        blueprint=load_blueprint(blueprint, "primary"),
        blueprint_path=blueprint,
        inputs=inputs,
        secrets={"db_password": "long-enough-1"},
        default_driver="dirs",
        store=StateStore(tmp_path / "state.db"),
        infra=DirectoryNodes(tmp_path / "nodes"),
        observer=lambda event: None,
    ).plan()


@pytest.mark.usefixtures("petclinic_wheelhouse")
def test_an_empty_directory_input_stops_the_sample_site_at_plan(tmp_path: Path) -> None:
    bp = load_blueprint(EXAMPLE, "primary")
    inputs = {name: spec.default for name, spec in bp.inputs.items()}
    plan(tmp_path / "ok", EXAMPLE, inputs)
    for key in ("db_dir", "app_dir", "lb_dir"):
        with pytest.raises(RenderError, match="refused"):
            plan(tmp_path / key, EXAMPLE, {**inputs, key: ""})


def test_a_replaced_upload_tree_must_be_removable(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    text = (
        "nodes: {web: {}}\nservices:\n  app:\n    group: web\n"
        "    uploads: [{src: tree, dest: '/'}]\n"
    )
    with pytest.raises(RenderError, match=r"services.app.uploads.0.dest: refused: '/' is the root"):
        plan(tmp_path, write(tmp_path, text), {})
