"""Test hosts: a network namespace each, running a real ``sshd``.

``SSHHostFactory(base_dir).create(n)`` makes ``n`` hosts on this machine:

- one bridge per factory in the root namespace, holding the gateway address (the
  client's side) of a private /24 picked at random in 10.213.0.0/16 and checked free
  under a machine-wide lock, so parallel test sessions never collide;
- per host a namespace ``hs<id>-<n>`` with a veth pair to the bridge; the host's
  address lives inside its namespace only;
- per host a real ``/usr/sbin/sshd -D`` with its own config, ed25519 host key, pid
  file and authorized key (the factory's client key), and ``SetEnv SHLVL=1`` so root's
  ``.bashrc`` does not run ``pyenv init`` on every command;
- optionally private directories (``private_dirs=["/opt"]``): the host's sshd runs in
  its own mount namespace where each path is a bind mount of a per-host directory, so
  what one host installs under ``/opt`` the others do not see.

Everything is set up in a few batched ``ip`` calls and sshd processes started in
parallel, so 50 hosts take about a second. ``stop()`` kills every process in the
namespaces by PID and deletes namespaces, veths and bridge; a factory whose process
died (kill -9 of pytest) is swept by the next factory through its state file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
REGISTRY = Path("/run/hotsite-sshhosts")  # one JSON file per live factory
_LOCK = Path("/run/hotsite-sshhosts.lock")

SSHD_CONFIG = """\
Port {port}
ListenAddress {address}
HostKey {dir}/ssh_host_ed25519_key
PidFile {dir}/sshd.pid
AuthorizedKeysFile {dir}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
SetEnv SHLVL=1
MaxStartups 200:30:400
MaxSessions 100
LogLevel ERROR
Subsystem sftp internal-sftp
"""


@dataclass
class SSHHost:
    name: str
    netns: str
    address: str
    port: int
    dir: Path
    host_key: str  # the public host key line, as ``ssh-ed25519 AAAA...``
    private_dirs: dict[str, Path] = field(default_factory=dict)  # mount point -> backing dir
    pid: int | None = None

    def exec(self, *argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        """Run a command inside the host's network namespace (not through SSH)."""
        return subprocess.run(
            ["ip", "netns", "exec", self.netns, *argv],
            capture_output=True,
            text=True,
            check=False,
            **kwargs,  # type: ignore[call-overload]
        )

    def processes(self) -> dict[int, str]:
        """PID → command line (arguments joined by spaces) of every process in the
        host's network namespace, sshd's own included."""
        pids = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True)
        found = {}
        for pid in pids.stdout.split():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
            except OSError:
                continue  # ended meanwhile
            found[int(pid)] = b" ".join(argv).decode(errors="replace")
        return found

    def stop_sshd(self) -> None:
        """Stop this host's sshd only (to test an unreachable host)."""
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            _wait_dead(self.pid)


def _wait_dead(pid: int, timeout: float = 5) -> None:
    """Until the process is gone or a zombie (its sockets are closed by then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return
        time.sleep(0.01)


class SSHHostFactory:
    def __init__(self, base_dir: Path | None = None, port: int = 22) -> None:
        self.id = secrets.token_hex(3)  # 6 hex chars: veth names must fit in 15 bytes
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix=f"hotsite-sshhosts-{self.id}-"))
        self.port = port
        self.bridge = f"hsbr{self.id}"
        self.subnet: int | None = None  # the third octet of 10.213.X.0/24
        self.hosts: list[SSHHost] = []
        self._processes: list[subprocess.Popen[bytes]] = []
        self.client_key_path = self.base_dir / "client_ed25519"
        _sweep_dead_factories()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if not self.client_key_path.exists():
            key = asyncssh.generate_private_key("ssh-ed25519")
            key.write_private_key(str(self.client_key_path))
            key.write_public_key(str(self.client_key_path) + ".pub")
            self.client_key_path.chmod(0o600)

    @property
    def client_public_key(self) -> str:
        return Path(str(self.client_key_path) + ".pub").read_text().strip()

    def create(self, count: int, private_dirs: Sequence[str] = ()) -> list[SSHHost]:
        """Make ``count`` more hosts and return them once every sshd accepts TCP."""
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privsep directory
        first = len(self.hosts) + 2  # .1 is the bridge
        if first + count > 255:
            raise ValueError("one factory holds at most 253 hosts")
        new = [self._host(first + i, private_dirs) for i in range(count)]
        self.hosts.extend(new)
        self._write_registry()
        self._network(new)
        for host in new:
            self._start_sshd(host)
        _wait_listening(new, timeout=20)
        return new

    def restart(self, host: SSHHost, *, new_host_key: bool = False) -> str:
        """ "Reboot" a host: kill every process in its namespace (so open connections
        drop), optionally give it a new host key (a reinstall), start sshd again.
        Returns the host key line now offered."""
        pids = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True)
        for pid in pids.stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
                _wait_dead(int(pid))
        if new_host_key:
            key = asyncssh.generate_private_key("ssh-ed25519")
            key.write_private_key(str(host.dir / "ssh_host_ed25519_key"))
            host.host_key = key.export_public_key().decode().strip()
        self._start_sshd(host)
        _wait_listening([host], timeout=20)
        return host.host_key

    def route_out(self) -> None:
        """Let this factory's hosts reach other factories' subnets (a site each) through
        the root namespace: a default route via the bridge, and forwarding of what
        arrives on this bridge only (``conf.<bridge>.forwarding``; the machine's
        ``ip_forward`` is left alone). Undone with the bridge by ``stop()``."""
        assert self.subnet is not None, "create() the hosts first"
        gateway = f"10.213.{self.subnet}.1"
        for host in self.hosts:
            _run(["ip", "-n", host.netns, "route", "replace", "default", "via", gateway])
        _run(["sysctl", "-q", "-w", f"net.ipv4.conf.{self.bridge}.forwarding=1"])

    # -- set-up -------------------------------------------------------------------

    def _host(self, index: int, private_dirs: Sequence[str]) -> SSHHost:
        name = f"hs{self.id}-{index}"
        directory = self.base_dir / name
        directory.mkdir(parents=True, exist_ok=True)
        key = asyncssh.generate_private_key("ssh-ed25519")
        key.write_private_key(str(directory / "ssh_host_ed25519_key"))
        (directory / "ssh_host_ed25519_key").chmod(0o600)
        (directory / "authorized_keys").write_text(self.client_public_key + "\n")
        host = SSHHost(
            name=name,
            netns=name,
            address="",  # set in _network once the subnet is known
            port=self.port,
            dir=directory,
            host_key=key.export_public_key().decode().strip(),
        )
        for mount_point in private_dirs:
            backing = directory / "private" / mount_point.strip("/").replace("/", "_")
            backing.mkdir(parents=True, exist_ok=True)
            host.private_dirs[mount_point] = backing
        return host

    def _network(self, hosts: list[SSHHost]) -> None:
        lines: list[str] = []
        with machine_lock():
            if self.subnet is None:
                self.subnet = _free_subnet()
                lines += [
                    f"link add {self.bridge} type bridge",
                    f"link set {self.bridge} up",
                    f"addr add 10.213.{self.subnet}.1/24 dev {self.bridge}",
                ]
            for host in hosts:
                index = host.name.rsplit("-", 1)[1]
                host.address = f"10.213.{self.subnet}.{index}"
                veth = f"hs{self.id}v{index}"
                lines += [
                    f"netns add {host.netns}",
                    f"link add {veth} type veth peer name eth0 netns {host.netns}",
                    f"link set {veth} master {self.bridge} up",
                ]
            _ip_batch(lines)
        # ``-n`` is not allowed inside a batch: one small batch per namespace, in parallel.
        inside = [
            subprocess.Popen(
                ["ip", "-n", host.netns, "-b", "-"],
                stdin=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for host in hosts
        ]
        for host, process in zip(hosts, inside, strict=True):
            script = f"addr add {host.address}/24 dev eth0\nlink set eth0 up\nlink set lo up\n"
            _, err = process.communicate(script.encode())
            if process.returncode != 0:
                raise RuntimeError(f"configuring {host.netns} failed: {err.decode().strip()}")

    def _start_sshd(self, host: SSHHost) -> None:
        config = host.dir / "sshd_config"
        config.write_text(SSHD_CONFIG.format(port=host.port, address=host.address, dir=host.dir))
        sshd = f"exec {SSHD} -D -e -f {config}"
        if host.private_dirs:
            mounts = " && ".join(
                f"mkdir -p {point} && mount --bind {backing} {point}"
                for point, backing in host.private_dirs.items()
            )
            argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", f"{mounts} && {sshd}"]
        else:
            argv = ["sh", "-c", sshd]
        log = open(host.dir / "sshd.log", "wb")  # noqa: SIM115  (kept by the child)
        process = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        host.pid = process.pid  # every step above execs, so this is sshd's own PID
        self._processes.append(process)

    def _write_registry(self) -> None:
        REGISTRY.mkdir(parents=True, exist_ok=True)
        state = {
            "pid": os.getpid(),
            "bridge": self.bridge,
            "netns": [h.netns for h in self.hosts],
            "dir": str(self.base_dir),
        }
        (REGISTRY / f"{self.id}.json").write_text(json.dumps(state))

    # -- tear-down ----------------------------------------------------------------

    def stop(self) -> None:
        """Kill every process in the hosts' namespaces, delete namespaces and bridge."""
        _teardown([h.netns for h in self.hosts], self.bridge)
        for process in self._processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        (REGISTRY / f"{self.id}.json").unlink(missing_ok=True)
        shutil.rmtree(self.base_dir, ignore_errors=True)
        self.hosts = []

    def __enter__(self) -> SSHHostFactory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_in_process = threading.RLock()
_held = 0  # how deep this process is inside machine_lock (flock is not reentrant)


@contextlib.contextmanager
def machine_lock() -> Iterator[None]:
    """Held while subnets are picked and while dead factories are swept, by every test
    process of the machine; reentrant within one process."""
    global _held
    with _in_process:
        if _held:
            _held += 1
            try:
                yield
            finally:
                _held -= 1
            return
        fd = os.open(_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _held = 1
            try:
                yield
            finally:
                _held = 0
        finally:
            os.close(fd)


def _free_subnet() -> int:
    used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    free = [n for n in range(256) if f" 10.213.{n}." not in used]
    if not free:
        raise RuntimeError("no free 10.213.X.0/24 subnet for test hosts")
    return random.choice(free)


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")


def _ip_batch(lines: list[str], force: bool = False) -> None:
    argv = ["ip", *(["-force"] if force else []), "-b", "-"]
    result = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True, text=True)
    if result.returncode != 0 and not force:
        raise RuntimeError(f"ip -b failed: {result.stderr.strip()}")


def _teardown(netns: list[str], bridge: str) -> None:
    existing = set(
        line.split()[0]
        for line in subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True
        ).stdout.splitlines()
        if line.strip()
    )
    for ns in netns:
        if ns not in existing:
            continue
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
        for pid in pids.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
    # Deleting a namespace deletes its end of each veth, and so the pair.
    _ip_batch([f"netns del {ns}" for ns in netns if ns in existing] + [f"link del {bridge}"], True)


def _sweep_dead_factories() -> None:
    if not REGISTRY.is_dir():
        return
    with machine_lock():  # so a test can hold off sweeps while it looks at leftovers
        _sweep_locked()


def _sweep_locked() -> None:
    for path in REGISTRY.glob("*.json"):
        try:
            state = json.loads(path.read_text())
            os.kill(int(state["pid"]), 0)
        except ProcessLookupError:
            _teardown(state["netns"], state["bridge"])
            shutil.rmtree(state["dir"], ignore_errors=True)
            path.unlink(missing_ok=True)
        except (OSError, ValueError, KeyError):
            continue


def _wait_listening(hosts: list[SSHHost], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(hosts)
    while waiting:
        still = []
        for host in waiting:
            try:
                with socket.create_connection((host.address, host.port), timeout=0.5):
                    pass
            except OSError:
                still.append(host)
        waiting = still
        if waiting and time.monotonic() > deadline:
            logs = (waiting[0].dir / "sshd.log").read_text(errors="replace")[-500:]
            raise RuntimeError(f"sshd on {waiting[0].name} did not start: {logs}")
        if waiting:
            time.sleep(0.02)
