"""The local driver, the local transport and the command log, with no network."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from hotsite.errors import ConfigError, DriverError, RemoteError
from hotsite.nodes import NodeSpec, driver_class, register_driver
from hotsite.nodes.base import NodeDriver
from hotsite.nodes.config import NodesConfig
from hotsite.nodes.local import LocalDriver
from hotsite.nodes.providers import Providers
from hotsite.remote import LocalTransport, RemoteSession, history, secrets, step
from hotsite.state import StateStore


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state.db")


def test_local_transport_runs_with_env_cwd_and_exit_status(tmp_path: Path) -> None:
    async def go() -> None:
        transport = LocalTransport("here")
        result = await transport.run(
            'echo "$GREETING"; pwd; exit 3',
            env={"GREETING": 'it\'s "quoted"\nline2'},
            cwd=str(tmp_path),
        )
        assert result.exit_status == 3
        assert result.stdout.splitlines() == ['it\'s "quoted"', "line2", str(tmp_path)]
        with pytest.raises(RemoteError, match=r"timed out after 0\.2s on here"):
            await transport.run("sleep 5", timeout=0.2)
        missing = await transport.run("true", cwd=str(tmp_path / "nope"))
        assert not missing.ok

    asyncio.run(go())


def test_local_transport_copies_files_and_directories(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "data.bin").write_bytes(os.urandom(100_000))

    async def go() -> None:
        transport = LocalTransport()
        await transport.put(source, str(tmp_path / "dst"))
        await transport.get(str(tmp_path / "dst" / "sub" / "data.bin"), tmp_path / "back.bin")

    asyncio.run(go())
    digest = hashlib.sha256((source / "sub" / "data.bin").read_bytes()).hexdigest()
    assert hashlib.sha256((tmp_path / "back.bin").read_bytes()).hexdigest() == digest


def test_command_log_records_step_and_redacts_secrets(store: StateStore) -> None:
    providers = Providers(NodesConfig(), store)

    async def go() -> None:
        driver = providers.driver("local")
        nodes = await driver.create(NodeSpec.many("web", 2, site="primary", group="web"))
        assert [n.name for n in nodes] == ["web-1", "web-2"]
        async with RemoteSession(store) as session:
            with step("install"), secrets(["hunter2-extra"]):
                outcomes = await session.run_all(
                    nodes,
                    "echo token=$TOKEN hunter2-extra; echo oops >&2; exit 1",
                    env={"TOKEN": "s3cr3t-value"},
                )
            assert all(o.result and o.result.exit_status == 1 for o in outcomes)
            await session.run_all(nodes[:1], "true")

    asyncio.run(go())
    entries = history.query(store, site="primary")
    assert len(entries) == 3
    first = entries[0]
    assert first.step == "install" and first.exit_status == 1
    assert first.stdout_tail == "token=*** ***\n" and first.stderr_tail == "oops\n"
    assert history.query(store, node="web-1", limit=1)[0].command == "true"
    assert history.query(store, step="install", node="web-2")[0].duration >= 0
    dump = b"".join(p.read_bytes() for p in store.path.parent.glob("state.db*"))
    assert b"s3cr3t-value" not in dump and b"hunter2-extra" not in dump


def test_registry_is_lazy_and_open_to_third_parties(store: StateStore) -> None:
    with pytest.raises(DriverError, match="unknown node driver 'nope'"):
        driver_class("nope")
    register_driver("mine", "hotsite.nodes.local:LocalDriver")
    assert issubclass(driver_class("mine"), NodeDriver)
    register_driver("broken", "no.such.module:X")
    with pytest.raises(DriverError, match="cannot be loaded"):
        driver_class("broken")
    with pytest.raises(DriverError, match="unknown node provider 'aws'"):
        Providers(NodesConfig(), store).driver("aws")


def test_local_node_names_are_unique_across_providers(store: StateStore) -> None:
    config = NodesConfig.model_validate({"providers": {"other": {"driver": "local"}}})
    providers = Providers(config, store)

    async def go() -> None:
        await providers.driver("local").create([NodeSpec("a")])
        await providers.driver("local").create([NodeSpec("a")])  # idempotent
        with pytest.raises(DriverError, match="already exists"):
            await providers.driver("other").create([NodeSpec("a")])

    asyncio.run(go())
    assert [n.name for n in providers.nodes()] == ["a"]


class AcmeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    driver: str
    zone: str


class AcmeDriver(LocalDriver):
    name = "acme"
    settings_model = AcmeSettings


def test_third_party_driver_settings_are_validated_by_its_model(store: StateStore) -> None:
    register_driver("acme", AcmeDriver)
    good = NodesConfig.model_validate({"providers": {"a": {"driver": "acme", "zone": "z1"}}})
    driver = Providers(good, store).driver("a")
    assert isinstance(driver, AcmeDriver) and driver.settings.zone == "z1"
    bad = NodesConfig.model_validate({"providers": {"a": {"driver": "acme", "zoen": "z1"}}})
    with pytest.raises(ConfigError, match=r"nodes\.providers\.a\.zone: Field required"):
        Providers(bad, store).driver("a")
