"""The nodes: section of the project file, and how commands are wrapped for the shell."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hotsite.config import load
from hotsite.errors import ConfigError
from hotsite.nodes.config import ByonProvider, LibcloudProvider, OtherProvider
from hotsite.remote._shell import wrap

HEAD = "sites:\n  primary: {database: 'mysql://root@127.0.0.1:1/app'}\nnodes:\n"


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "hotsite.yaml"
    path.write_text(HEAD + body)
    return path


def test_providers_are_validated_by_driver_with_file_and_line(tmp_path: Path) -> None:
    config = load(
        write(
            tmp_path,
            "  ssh: {key: ~/.ssh/hs, concurrency: 8}\n"
            "  providers:\n"
            "    rack: {driver: byon, scrub: 'rm -rf /opt/app', hosts: [{address: 10.0.0.5, tags: {zone: a}}]}\n"
            "    aws: {driver: libcloud, provider: ec2, key: '${AWS_KEY}'}\n"
            "    mine: {driver: acme, anything: 1}\n",
        )
    )
    providers = config.nodes.providers
    assert isinstance(providers["rack"], ByonProvider)
    assert providers["rack"].hosts[0].host_name == "10.0.0.5"
    assert isinstance(providers["aws"], LibcloudProvider)
    assert isinstance(providers["mine"], OtherProvider)
    assert config.nodes.ssh.key == Path("~/.ssh/hs").expanduser()
    assert config.nodes.provider("local").driver == "local"

    bad = "  providers:\n    rack:\n      driver: byon\n      hosts:\n        - {address: a, prot: 22}\n"
    with pytest.raises(
        ConfigError, match=r"hotsite.yaml:8: nodes\.providers\.rack\.hosts\.0\.prot: unknown key"
    ):
        load(write(tmp_path, bad))
    dup = "  providers:\n    rack: {driver: byon, hosts: [{address: a}, {address: a}]}\n"
    with pytest.raises(ConfigError, match="host 'a' is listed twice"):
        load(write(tmp_path, dup))
    missing = "  providers:\n    aws:\n      driver: libcloud\n"
    with pytest.raises(
        ConfigError, match=r"nodes\.providers\.aws\.provider: required key is missing"
    ):
        load(write(tmp_path, missing))


def sh(line: str, script: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", line], input=script or "", capture_output=True, text=True)


def test_wrapped_commands_keep_secrets_off_the_command_line(tmp_path: Path) -> None:
    line, script = wrap("true", env=None, cwd=None, sudo=False)
    assert (line, script) == ("true", None)  # plain commands go as they are
    line, script = wrap(
        'printf %s "$A"; pwd', env={"A": "x'y z$HOME"}, cwd=str(tmp_path), sudo=False
    )
    assert "x'y" not in line and script is not None
    assert sh(line, script).stdout == f"x'y z$HOME{tmp_path}\n"
    line, _ = wrap("echo ran", env=None, cwd=str(tmp_path / "missing"), sudo=False)
    result = sh(line, None)
    assert result.returncode == 1 and "ran" not in result.stdout
    assert wrap("id", env=None, cwd=None, sudo=True)[0] == "sudo -n -- sh -c id"
    with pytest.raises(ValueError, match="invalid environment variable name"):
        wrap("true", env={"A-B": "1"}, cwd=None, sudo=False)


def test_jump_host_specs() -> None:
    from hotsite.errors import NodeError
    from hotsite.remote.ssh import parse_jump

    assert parse_jump("bastion.example", "root") == ("root", "bastion.example", 22)
    assert parse_jump("ops@10.0.0.1:2222", "root") == ("ops", "10.0.0.1", 2222)
    with pytest.raises(NodeError, match=r"must look like \[user@\]host\[:port\]"):
        parse_jump("ops@host:ssh", "root")
