"""The asyncssh transport against real sshd hosts in network namespaces."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncssh
import pytest

from hotsite.errors import AuthenticationError, HostKeyError, RemoteError, UnreachableError
from hotsite.nodes import Node
from hotsite.remote import RemoteSession, SSHSettings, history, hostkeys
from hotsite.remote.ssh import SSHTransport
from hotsite.state import StateStore
from hotsite.testing.sshhosts import SSHHost, SSHHostFactory, machine_lock
from tests.sshhosts_fixtures import needs_commands, needs_ssh_hosts


def node_for(host: SSHHost, name: str | None = None, **fields: object) -> Node:
    return Node(
        name=name or host.name,
        driver="byon",
        driver_id=host.name,
        address=host.address,
        ssh_port=host.port,
        **fields,  # type: ignore[arg-type]
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state.db")


def test_commands_files_and_one_connection_per_node(
    ssh_hosts: SSHHostFactory, store: StateStore, tmp_path: Path
) -> None:
    (host,) = ssh_hosts.create(1, private_dirs=["/opt"])
    ssh = SSHSettings(key=ssh_hosts.client_key_path, accept_new_host_keys=True)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "big.bin").write_bytes(os.urandom(1_000_000))
    (tree / "sub" / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (tree / "sub" / "run.sh").chmod(0o755)

    async def go() -> None:
        node = node_for(host, site="primary")
        async with RemoteSession(store, ssh) as session:
            transport = await session.transport(node)
            assert await session.transport(node) is transport
            result = await transport.run(
                'echo "$PASSWORD" | wc -c; pwd; echo err >&2; exit 7',
                env={"PASSWORD": "pa ss'w\"rd"},
                cwd="/tmp",
            )
            assert (result.exit_status, result.stdout, result.stderr) == (7, "11\n/tmp\n", "err\n")
            await transport.put(tree, "/opt/app")
            assert (await transport.run("/opt/app/sub/run.sh")).stdout == "ran\n"
            for _ in range(5):
                await transport.run("true")
            established = host.exec(
                "ss", "-Htn", "state", "established", f"( sport = :{host.port} )"
            )
            assert len(established.stdout.splitlines()) == 1  # one connection, reused
            await transport.get("/opt/app", tmp_path / "back")
            with pytest.raises(RemoteError, match=r"timed out after 0\.3s"):
                await transport.run("sleep 17; echo never", timeout=0.3)
            await asyncio.sleep(0.2)
            # the timed-out command was killed on the node (looked for in the host's
            # namespace only: ps lists the machine's processes, a parallel test's too)
            assert _commands_in(host, "sleep 17") == []
            signalled = await transport.run("kill -9 $$")
            assert signalled.exit_status == 137

    asyncio.run(go())
    assert sha256(tmp_path / "back" / "big.bin") == sha256(tree / "big.bin")
    assert (host.private_dirs["/opt"] / "app" / "big.bin").exists()  # private /opt
    assert os.access(tmp_path / "back" / "sub" / "run.sh", os.X_OK)
    log = history.query(store, node=host.name, limit=100)
    assert log[0].exit_status == 7 and log[0].site == "primary" and log[0].stderr_tail == "err\n"
    assert any(e.command.startswith("upload ") for e in log)
    assert any(e.exit_status is None and "timed out" in (e.error or "") for e in log)
    dump = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    assert b"pa ss'w" not in dump


def _commands_in(host: SSHHost, command: str) -> list[int]:
    """PIDs of the processes in the host's network namespace whose command line is
    ``command`` (``sleep 17`` matches ``sleep 17`` and ``sleep 17 …``)."""
    return [pid for pid, line in host.processes().items() if line.startswith(command)]


def test_host_keys_unknown_accepted_then_changed(
    ssh_hosts: SSHHostFactory, store: StateStore
) -> None:
    (host,) = ssh_hosts.create(1)
    node = node_for(host)
    ssh = SSHSettings(key=ssh_hosts.client_key_path, connect_timeout=3)

    async def connect(accept_new: bool) -> None:
        transport = await SSHTransport.connect(node, store, ssh, accept_new=accept_new)
        await transport.close()

    with pytest.raises(HostKeyError, match=f"{host.address}:22.*unknown host key SHA256:"):
        asyncio.run(connect(False))
    assert hostkeys.known(store, host.address, 22) is None  # nothing half-recorded
    asyncio.run(connect(True))
    recorded = hostkeys.known(store, host.address, 22)
    assert recorded is not None
    assert recorded.export_public_key().decode().strip() == host.host_key
    asyncio.run(connect(False))  # known now: no flag needed

    # The host is "reinstalled": new host key, same address.
    ssh_hosts.restart(host, new_host_key=True)
    with pytest.raises(HostKeyError, match=f"host key of {host.name} .*changed: recorded SHA256"):
        asyncio.run(connect(True))  # accepting *new* keys never accepts a *changed* one
    assert hostkeys.known(store, host.address, 22) == recorded


def test_refused_key_and_unreachable_host_fail_fast(
    ssh_hosts: SSHHostFactory, store: StateStore, tmp_path: Path
) -> None:
    host, down = ssh_hosts.create(2)
    other_key = tmp_path / "other"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(other_key))
    wrong = SSHSettings(key=other_key, connect_timeout=3)
    with pytest.raises(AuthenticationError, match=f"{host.address}:22.*refused our SSH key"):
        asyncio.run(SSHTransport.connect(node_for(host), store, wrong, accept_new=True))
    assert hostkeys.known(store, host.address, 22) is None

    down.stop_sshd()
    ssh = SSHSettings(key=ssh_hosts.client_key_path, connect_timeout=2)
    with pytest.raises(UnreachableError, match="unreachable over SSH: Connection refused"):
        asyncio.run(SSHTransport.connect(node_for(down), store, ssh, accept_new=True))
    # An address in the test subnet where no host answers: the connect timeout applies.
    silent = Node("silent", "byon", "x", address=host.address.rsplit(".", 1)[0] + ".250")
    started = time.monotonic()
    with pytest.raises(UnreachableError, match=r"silent .*unreachable"):
        asyncio.run(SSHTransport.connect(silent, store, ssh, accept_new=True))
    # The 2 s connect timeout applies, not the kernel's (over two minutes of SYN
    # retries): a bound with room for a loaded machine still tells the two apart.
    assert time.monotonic() - started < 2 + 20


def test_fan_out_is_concurrent_and_bounded(ssh_hosts: SSHHostFactory, store: StateStore) -> None:
    hosts = ssh_hosts.create(8)
    ssh = SSHSettings(key=ssh_hosts.client_key_path, accept_new_host_keys=True, concurrency=4)
    nodes = [node_for(h) for h in hosts]
    hosts[3].stop_sshd()

    async def go() -> list[object]:
        async with RemoteSession(store, ssh) as session:
            return await session.run_all(nodes, "date +%s.%N; sleep 1; date +%s.%N")  # type: ignore[return-value]

    outcomes = asyncio.run(go())
    failed = [o for o in outcomes if not o.ok]  # type: ignore[attr-defined]
    assert [o.node.name for o in failed] == [hosts[3].name]  # type: ignore[attr-defined]
    assert isinstance(failed[0].error, UnreachableError)  # type: ignore[attr-defined]
    (entry,) = history.query(store, node=hosts[3].name)
    assert entry.command == f"connect {hosts[3].address}:22" and entry.exit_status is None
    assert "unreachable over SSH" in (entry.error or "")
    # Bounded and concurrent, from when each command ran on its host (all hosts share
    # this machine's clock), not from how long the whole took on a loaded machine: at
    # most 4 of the 7 commands at once, and more than one at a time.
    spans = [
        tuple(float(t) for t in o.result.stdout.split())  # type: ignore[attr-defined]
        for o in outcomes
        if o.ok  # type: ignore[attr-defined]
    ]
    most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert 2 <= most <= 4, spans


def test_session_reconnects_after_the_node_restarts(
    ssh_hosts: SSHHostFactory, store: StateStore
) -> None:
    (host,) = ssh_hosts.create(1)
    ssh = SSHSettings(key=ssh_hosts.client_key_path, accept_new_host_keys=True)
    node = node_for(host)

    async def go() -> None:
        async with RemoteSession(store, ssh) as session:
            first = await session.transport(node)
            assert (await first.run("true")).ok
            # The host "reboots": every process in its namespace dies, sshd comes back.
            ssh_hosts.restart(host)
            await asyncio.sleep(0.2)
            assert not first.is_open
            outcomes = await session.run_all([node], "echo back")
            assert outcomes[0].result is not None and outcomes[0].result.stdout == "back\n"
            assert await session.transport(node) is not first

    asyncio.run(go())


@needs_ssh_hosts
def test_namespaces_are_removed_after_stop(tmp_path: Path) -> None:
    factory = SSHHostFactory(tmp_path / "hosts")
    hosts = factory.create(3)
    names = [h.netns for h in hosts]
    pids = [h.pid for h in hosts]
    factory.stop()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(name in listed for name in names)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert factory.bridge not in links
    for pid in pids:
        assert pid is not None and not Path(f"/proc/{pid}").exists()


@needs_commands("nft")
def test_jump_host_reaches_nodes_the_controller_cannot(
    ssh_hosts: SSHHostFactory, store: StateStore
) -> None:
    bastion, *inner = ssh_hosts.create(3)
    gateway = bastion.address.rsplit(".", 1)[0] + ".1"  # the controller's side of the bridge
    rules = (
        "add table inet hs\n"
        "add chain inet hs input { type filter hook input priority 0; }\n"
        f"add rule inet hs input ip saddr {gateway} tcp dport 22 drop\n"
    )
    for host in inner:
        fenced = subprocess.run(
            ["ip", "netns", "exec", host.netns, "nft", "-f", "-"],
            input=rules,
            text=True,
            capture_output=True,
        )
        assert fenced.returncode == 0, fenced.stderr
    ssh = SSHSettings(key=ssh_hosts.client_key_path, connect_timeout=2, accept_new_host_keys=True)

    with pytest.raises(UnreachableError, match="timed out"):
        asyncio.run(SSHTransport.connect(node_for(inner[0]), store, ssh, accept_new=True))

    async def through_bastion() -> tuple[list[str], int]:
        nodes = [node_for(h, ssh_jump=f"root@{bastion.address}:22") for h in inner]
        async with RemoteSession(store, ssh) as session:
            outcomes = await session.run_all(nodes, "hostname -I")
            assert all(o.result is not None for o in outcomes), [o.error for o in outcomes]
            inbound = bastion.exec("ss", "-Htn", "state", "established", "( sport = :22 )")
            return [o.result.stdout.strip() for o in outcomes if o.result], len(
                inbound.stdout.splitlines()
            )

    addresses, bastion_connections = asyncio.run(through_bastion())
    assert addresses == [h.address for h in inner]
    assert bastion_connections == 1  # one connection to the bastion, shared by both nodes
    assert hostkeys.known(store, bastion.address, 22) is not None
    assert all(hostkeys.known(store, h.address, 22) is not None for h in inner)
    bastion.stop_sshd()
    with pytest.raises(UnreachableError, match=f"jump host {bastion.address}:22 of"):
        asyncio.run(SSHTransport.connect(node_for(inner[0], ssh_jump=bastion.address), store, ssh))


@needs_ssh_hosts
def test_hosts_of_a_killed_test_process_are_swept(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from hotsite.testing.sshhosts import SSHHostFactory\n"
        "f = SSHHostFactory(Path(sys.argv[1]))\n"
        "hosts = f.create(2)\n"
        "print(' '.join(h.netns for h in hosts), f.bridge, flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "orphan")], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    *netns, bridge = child.stdout.readline().split()
    # Held so that no factory of a parallel test process sweeps the leftovers before
    # this test has seen them.
    with machine_lock():
        child.kill()  # like kill -9 of pytest: no teardown ran
        child.wait()
        assert all(
            name in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
            for name in netns
        )
    SSHHostFactory(tmp_path / "next").stop()  # any new factory sweeps what dead ones left
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(name in listed for name in netns)
    assert bridge not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout


@needs_commands("ssh-agent", "ssh-add")
def test_keys_from_ssh_agent(
    ssh_hosts: SSHHostFactory, store: StateStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (host,) = ssh_hosts.create(1)
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not socket_path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        env = {**os.environ, "SSH_AUTH_SOCK": str(socket_path)}
        added = subprocess.run(
            ["ssh-add", str(ssh_hosts.client_key_path)], env=env, capture_output=True
        )
        assert added.returncode == 0, added.stderr
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_path))
        without = SSHSettings(key=None, connect_timeout=3)
        with pytest.raises(AuthenticationError, match=r"\(no key\)"):
            asyncio.run(SSHTransport.connect(node_for(host), store, without, accept_new=True))
        with_agent = SSHSettings(key=None, agent=True, connect_timeout=3)

        async def go() -> str:
            transport = await SSHTransport.connect(
                node_for(host), store, with_agent, accept_new=True
            )
            try:
                return (await transport.run("echo via-agent")).stdout
            finally:
                await transport.close()

        assert asyncio.run(go()) == "via-agent\n"
    finally:
        agent.kill()
        agent.wait()
