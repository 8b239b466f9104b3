"""The libcloud driver against Libcloud's own dummy provider (no network)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh
import pytest

from hotsite.errors import DriverError
from hotsite.nodes import Capability, NodeSpec
from hotsite.nodes.config import NodesConfig
from hotsite.nodes.libcloud import LibcloudDriver
from hotsite.nodes.providers import Providers
from hotsite.state import StateStore


def providers(tmp_path: Path, **settings: object) -> Providers:
    config = NodesConfig.model_validate(
        {"providers": {"lab": {"driver": "libcloud", "provider": "dummy", **settings}}}
    )
    return Providers(config, StateStore(tmp_path / "state.db"), project="proj")


def test_create_list_destroy_with_the_dummy_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTSITE_LAB_KEY", "0")
    driver = providers(tmp_path).driver("lab")
    assert isinstance(driver, LibcloudDriver)
    assert Capability.CREATE in driver.capabilities

    async def go() -> None:
        nodes = await driver.create(NodeSpec.many("app", 3, site="dr", group="app"))
        assert [n.state for n in nodes] == ["running"] * 3
        assert all(n.address.startswith("127.0.0.") and n.driver_id for n in nodes)
        listed = await driver.list_nodes()
        assert {n.name for n in listed} == {"app-1", "app-2", "app-3"}
        cloud_ids = {str(n.id) for n in driver.api().list_nodes()}
        assert {n.driver_id for n in nodes} <= cloud_ids
        # Creating the same names again reuses them: no second set of machines.
        again = await driver.create(NodeSpec.many("app", 3, site="dr", group="app"))
        assert [n.driver_id for n in again] == [n.driver_id for n in nodes]
        from hotsite.remote import hostkeys

        key = asyncssh.generate_private_key("ssh-ed25519")
        hostkeys.remember(driver.context.store, nodes[0].address, 22, key, nodes[0].name)
        await driver.destroy(nodes)
        assert await driver.list_nodes() == []
        # The address may go to another machine: its host key is forgotten with the node.
        assert hostkeys.known(driver.context.store, nodes[0].address, 22) is None
        assert not {n.driver_id for n in nodes} & {str(n.id) for n in driver.api().list_nodes()}

    asyncio.run(go())


def test_bad_provider_names_and_missing_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOTSITE_LAB_KEY", raising=False)
    with pytest.raises(DriverError, match="missing credentials for provider 'lab': no key"):
        asyncio.run(providers(tmp_path).driver("lab").create([NodeSpec("x")]))
    with pytest.raises(DriverError, match="environment variable NOPE_KEY is not set"):
        asyncio.run(providers(tmp_path, key="${NOPE_KEY}").driver("lab").create([NodeSpec("x")]))
    with pytest.raises(DriverError, match="unknown Libcloud provider 'nocloud'"):
        asyncio.run(
            providers(tmp_path, key="0", provider="nocloud").driver("lab").create([NodeSpec("x")])
        )
    with pytest.raises(DriverError, match="has no size 'huge'"):
        asyncio.run(providers(tmp_path, key="0", size="huge").driver("lab").create([NodeSpec("x")]))
    store = StateStore(tmp_path / "state.db")
    assert store.connection().execute("SELECT count(*) FROM nodes").fetchone()[0] == 0
