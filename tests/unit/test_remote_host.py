"""remote works for anything that says where it is: a plain Host, no driver's Node."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hotsite.nodes import Node
from hotsite.remote import Host, RemoteSession, history
from hotsite.state import StateStore


def test_a_session_runs_on_plain_hosts_and_hands_them_back(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    here = Host("here", "127.0.0.1", site="dr", local=True)

    async def go() -> list[object]:
        async with RemoteSession[Host](store) as session:
            return list(await session.run_all([here], "echo $((6 * 7))"))

    [outcome] = asyncio.run(go())
    assert outcome.node is here  # type: ignore[attr-defined]
    assert outcome.ok and outcome.result.stdout == "42\n"  # type: ignore[attr-defined]
    [entry] = history.query(store, node="here")
    assert (entry.site, entry.exit_status) == ("dr", 0)
    store.close()


def test_a_node_gives_its_address_and_credentials() -> None:
    node = Node(
        name="db-1",
        driver="byon",
        driver_id="rack1/db-1",
        address="10.1.2.3",
        ssh_port=2222,
        ssh_user="ops",
        ssh_key="~/.ssh/rack1",
        ssh_jump="bastion:22",
        site="primary",
    )
    assert node.host == Host(
        "db-1", "10.1.2.3", 2222, "ops", "~/.ssh/rack1", "bastion:22", "primary", local=False
    )
    assert Node(name="me", driver="local", driver_id="local", address="127.0.0.1").host.local
