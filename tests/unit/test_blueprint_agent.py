"""The built-in agent service: what the blueprint may say, the project file its node gets,
what is refused (one line, before anything runs)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotsite.blueprint import load_blueprint
from hotsite.blueprint.agent_project import agent_project, controller_unreachable
from hotsite.blueprint.agent_service import AgentSetup, agent_parts, project_text
from hotsite.blueprint.model import Agent
from hotsite.blueprint.wheelhouse import Wheelhouse, pinned_requirements, wheelhouse
from hotsite.config import load
from hotsite.errors import ConfigError
from tests.helpers import hotsite, one_line_error

TOKEN = "agent-unit-token-0123456789"


def blueprint(tmp_path: Path, services: dict[str, Any]) -> Path:
    path = tmp_path / "site.yaml"
    data = {"nodes": {"db": {"count": 1}}, "services": services}
    data["outputs"] = {"database": "mysql://root@{{ nodes.db[0].address }}:3306/app"}
    path.write_text(yaml.safe_dump(data))
    return path


def project(tmp_path: Path, **extra: Any) -> Path:
    data: dict[str, Any] = {
        "sites": {
            "primary": {"database": "mysql://root:pw-primary@10.1.0.5:3306/app"},
            "dr": {"blueprint": "site.yaml"},
            "burst": {"blueprint": "site.yaml"},
        },
        "replication": [
            {"from": "primary", "to": "dr", "journal": "/controller/j.db"},
            {"from": "primary", "to": "burst"},
        ],
        "dr": {
            "primary": "primary",
            "controller": {"listen": "10.1.0.1:7400"},
            "entry": {"listen": "10.1.0.1:8080", "servers": {"primary": "10.1.0.5:80"}},
        },
        **extra,
    }
    path = tmp_path / "hotsite.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_agents_project_file_is_the_sites_cut_of_the_project(tmp_path: Path) -> None:
    blueprint(tmp_path, {"agent": {"group": "db", "agent": {}}})
    config = load(project(tmp_path))
    data = agent_project(config, "dr", "mysql://root@10.2.0.7:3306/app", "/opt/a")
    assert data["project"] == config.project_name == tmp_path.name
    # Sites whose database is known (burst is not up): the links between them only.
    assert data["sites"] == {
        "primary": {"database": "mysql://root:pw-primary@10.1.0.5:3306/app", "require_tls": False},
        "dr": {"database": "mysql://root@10.2.0.7:3306/app", "require_tls": False},
    }
    assert data["replication"] == [
        {"from": "primary", "to": "dr", "heartbeat_interval": 0.5, "batch_transactions": 2000,
         "batch_rows": 20000, "decoder": "fast", "tables": []}
    ]  # fmt: skip
    assert data["state_dir"] == "/opt/a/state"
    assert data["dr"]["controller"] == {
        "listen": "10.1.0.1:7400",
        "url": "http://10.1.0.1:7400",
        "token_file": "/opt/a/token",
    }
    assert "directory" not in data["dr"]["entry"]
    assert not {"nodes", "healing", "bursting"} & set(data)
    # What the node loads is a valid project file on its own (no blueprint, no store).
    node_file = tmp_path / "node" / "hotsite.yaml"
    node_file.parent.mkdir()
    node_file.write_text(project_text(data))
    node = load(node_file)
    assert node.site("dr").database == "mysql://root@10.2.0.7:3306/app"
    assert [link.name for link in node.links_into("dr")] == ["primary-to-dr"]


def test_the_token_and_passwords_travel_hidden_and_the_fingerprint_masks_them(
    tmp_path: Path,
) -> None:
    blueprint(tmp_path, {"agent": {"group": "db", "agent": {}}})
    config = load(project(tmp_path))
    setup = AgentSetup(config, "dr", TOKEN, Wheelhouse("hotsite-k", (), tmp_path))
    parts = agent_parts(setup, Agent(), "mysql://root@10.2.0.7:3306/app")
    shown = " ".join([*parts.env_shown.values(), *parts.commands.values()])
    assert TOKEN not in shown and "pw-primary" not in shown
    assert TOKEN in parts.hidden and any("pw-primary" in h for h in parts.hidden)
    assert parts.digests == {tmp_path / "hotsite-k": "hotsite-k"}
    assert "hotsite-k" in parts.commands["install"]  # a new wheelhouse: a new install
    # A changed project (another link setting) changes what the fingerprint sees.
    other = load(project(tmp_path, require_tls=False, conflicts={"policy": "source-wins"}))
    changed = agent_parts(
        AgentSetup(other, "dr", TOKEN, setup.wheelhouse), Agent(), "mysql://root@10.2.0.7:3306/app"
    )
    assert changed.env_shown != parts.env_shown


def test_tls_files_travel_hidden_to_the_node_and_the_project_names_them_there(
    tmp_path: Path,
) -> None:
    blueprint(tmp_path, {"agent": {"group": "db", "agent": {}}})
    pem = {name: tmp_path / f"{name}.pem" for name in ("db-ca", "client", "client-key", "ctl-ca")}
    for name, file in pem.items():
        file.write_text(f"-----BEGIN {name}-----\n")
    path = project(
        tmp_path,
        control_tls={
            "ca": str(pem["ctl-ca"]),
            "cert": "/controller/c.pem",
            "key": "/controller/k.pem",
        },
    )
    data = yaml.safe_load(path.read_text())
    data["sites"]["primary"]["tls"] = {
        "ca": str(pem["db-ca"]), "cert": str(pem["client"]), "key": str(pem["client-key"]),
    }  # fmt: skip
    path.write_text(yaml.safe_dump(data))
    config = load(path)
    project_file = agent_project(config, "dr", "mysql://root@10.2.0.7:3306/app", "/opt/a")
    assert project_file["sites"]["primary"]["tls"] == {
        "ca": "/opt/a/tls/site-primary-ca.pem",
        "cert": "/opt/a/tls/site-primary-cert.pem",
        "key": "/opt/a/tls/site-primary-key.pem",
    }
    # The agent verifies the controller; the controller's own key is not shipped.
    assert project_file["control_tls"] == {"ca": "/opt/a/tls/control-ca.pem"}
    assert project_file["dr"]["controller"]["url"] == "https://10.1.0.1:7400"
    parts = agent_parts(
        AgentSetup(config, "dr", TOKEN, Wheelhouse("hotsite-k", (), tmp_path)),
        Agent(dir="/opt/a"),
        "mysql://root@10.2.0.7:3306/app",
    )
    contents = {f"-----BEGIN {name}-----\n" for name in ("db-ca", "client", "client-key", "ctl-ca")}
    assert contents <= set(parts.env.values()) and contents <= parts.hidden
    shown = " ".join([*parts.env_shown.values(), *parts.commands.values()])
    assert "BEGIN" not in shown and "/controller/k.pem" not in shown
    assert "/opt/a/tls/site-primary-key.pem" in parts.commands["configure"]
    # The configure step, run as the node runs it: each file written whole, 0600.
    node = tmp_path / "node-dir"
    parts = agent_parts(
        AgentSetup(config, "dr", TOKEN, Wheelhouse("hotsite-k", (), tmp_path)),
        Agent(dir=str(node)),
        "mysql://root@10.2.0.7:3306/app",
    )
    subprocess.run(["sh", "-c", parts.commands["configure"]], env=parts.env, check=True)
    key = node / "tls" / "site-primary-key.pem"
    assert key.read_text() == "-----BEGIN client-key-----\n"
    assert key.stat().st_mode & 0o777 == 0o600
    assert (node / "tls" / "control-ca.pem").read_text() == "-----BEGIN ctl-ca-----\n"
    assert yaml.safe_load((node / "hotsite.yaml").read_text())["control_tls"] == {
        "ca": f"{node}/tls/control-ca.pem"
    }


def test_refusals_in_the_project(tmp_path: Path) -> None:
    blueprint(tmp_path, {"agent": {"group": "db", "agent": {}}})
    path = project(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["dr"]["primary"] = "burst"  # a blueprint site that is not up: no database
    data["dr"]["entry"]["servers"] = {"burst": "10.3.0.1:80"}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="primary site 'burst', which is not known yet"):
        agent_project(load(path), "dr", "mysql://root@10.2.0.7:3306/app", "/opt/a")
    data["dr"]["primary"] = "primary"
    data["dr"]["entry"]["servers"] = {"primary": "10.1.0.5:80"}
    data["sites"]["primary"]["tls"] = {"ca": str(tmp_path / "no-such-ca.pem")}
    path.write_text(yaml.safe_dump(data))
    setup = AgentSetup(load(path), "dr", TOKEN, Wheelhouse("hotsite-k", (), tmp_path))
    with pytest.raises(ConfigError, match=r"cannot read the TLS file .*no-such-ca\.pem"):
        agent_parts(setup, Agent(), "mysql://root@10.2.0.7:3306/app")
    data["sites"]["primary"].pop("tls")
    data["dr"]["controller"]["listen"] = "127.0.0.1:7400"
    path.write_text(yaml.safe_dump(data))
    assert "loopback" in (controller_unreachable(load(path)) or "")
    data["dr"]["controller"]["url"] = "http://10.1.0.1:7400"
    path.write_text(yaml.safe_dump(data))
    assert controller_unreachable(load(path)) is None


@pytest.mark.parametrize(
    ("services", "message"),
    [
        ({"agent": {"group": "nope", "agent": {}}}, "no node group 'nope'"),
        ({"agent": {"group": "db", "agent": {}, "start": "true"}}, "takes no start"),
        (
            {"a": {"group": "db", "agent": {}}, "b": {"group": "db", "agent": {}}},
            "a site has one agent, and 'a' is it already",
        ),
        ({"agent": {"group": "db", "agent": {"dirr": "/x"}}}, "dirr"),
    ],
)
def test_refusals_in_the_blueprint(tmp_path: Path, services: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_blueprint(blueprint(tmp_path, services))


def test_a_bad_agent_service_is_one_line_at_plan(tmp_path: Path) -> None:
    blueprint(tmp_path, {"agent": {"group": "dbs", "agent": {}}})
    result = hotsite(project(tmp_path), "up", "dr")
    one_line_error(result, "site.yaml", "no node group 'dbs'")


def test_the_wheelhouse_key_follows_pins_version_and_source() -> None:
    pins = pinned_requirements()
    names = {pin.split("==")[0] for pin in pins}
    # Every runtime dependency and theirs, pinned; not the dev extras.
    assert {"pydantic", "pydantic-core", "asyncssh", "cryptography", "pymysql"} <= names
    assert not {"pytest", "mypy", "ruff"} & names
    first, again = wheelhouse(), wheelhouse()
    assert first.key == again.key and first.key.startswith("hotsite-0.1.0-py3.")
    assert first.path.name == first.key
