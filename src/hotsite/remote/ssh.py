"""The SSH transport (asyncssh): one connection per node, a channel per command, SFTP
for files, host keys checked against the state store.

Every way a connection can fail becomes one clear error naming the node and its
address: unreachable (refused, no route, timed out), authentication refused, unknown
host key (not accepted) or changed host key.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shlex
import time
from pathlib import Path

import asyncssh

from hotsite.errors import (
    AuthenticationError,
    HostKeyError,
    NodeError,
    RemoteError,
    UnreachableError,
)
from hotsite.remote import hostkeys
from hotsite.remote._shell import wrap
from hotsite.remote.base import CommandResult, Transport
from hotsite.remote.host import Host, Reachable, SSHSettings
from hotsite.state import StateStore

# AES-GCM first: one AES-NI call per packet on both ends, where ChaCha20-Poly1305
# (asyncssh's first choice) costs two; it shows in uploads to many nodes at once.
CIPHERS = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
]


class _HostKeyCheck(asyncssh.SSHClient):
    """Decides on a host key asyncssh could not match against the recorded one."""

    def __init__(self, recorded: asyncssh.SSHKey | None, accept_new: bool) -> None:
        self.recorded = recorded
        self.accept_new = accept_new
        self.offered: asyncssh.SSHKey | None = None

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.offered = key
        # A recorded key that matched never gets here: asyncssh accepted it itself.
        return self.recorded is None and self.accept_new


class SSHTransport(Transport):
    def __init__(
        self,
        host: Host,
        conn: asyncssh.SSHClientConnection,
        user: str,
        jump: asyncssh.SSHClientConnection | None = None,
    ) -> None:
        self.node = host.name
        self.where = host.where
        self._conn = conn
        self._jump = jump
        self._user = user
        self._sftp: asyncssh.SFTPClient | None = None
        self._sftp_lock = asyncio.Lock()

    @classmethod
    async def connect(
        cls,
        target: Reachable,
        store: StateStore,
        ssh: SSHSettings,
        *,
        accept_new: bool = False,
        jump: asyncssh.SSHClientConnection | None = None,
    ) -> SSHTransport:
        """Connect to the host (through ``jump``, a shared bastion connection the caller
        owns, or else through its own connection to ``host.jump``)."""
        host = target.host
        key_path = Path(host.key).expanduser() if host.key else ssh.key
        if key_path is not None:
            _private_key(key_path, host.name)  # a missing or unreadable key: one clear line
        if ssh.agent and not ssh.agent_socket:
            raise NodeError(
                "nodes.ssh.agent is set but SSH_AUTH_SOCK is not",
                "start ssh-agent and ssh-add the key, or set nodes.ssh.key instead",
            )
        user = host.user or ssh.user
        owned_jump = None
        if host.jump and jump is None:
            jump = owned_jump = await open_jump(host, store, ssh, accept_new=accept_new)
        try:
            conn = await _open(
                f"{host.name} ({host.where})",
                host.address,
                host.port,
                user,
                key_path,
                store,
                ssh,
                accept_new,
                label=host.name,
                tunnel=jump,
            )
        except BaseException:
            if owned_jump is not None:
                owned_jump.close()
            raise
        return cls(host, conn, user, owned_jump)

    async def run(
        self,
        command: str,
        *,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        sudo: bool = False,
    ) -> CommandResult:
        line, script = wrap(command, env=env, cwd=cwd, sudo=sudo and self._user != "root")
        if timeout is not None:
            # sshd ignores "signal" requests for commands without a terminal, and closing
            # the channel leaves the command running: so the command tells us its process
            # group (sshd made it a session leader), to kill the whole group on timeout.
            line = f'echo "{_PID_MARK}$$" >&2; exec "${{SHELL:-/bin/sh}}" -c {shlex.quote(line)}'
        started = time.monotonic()
        try:
            stdin = asyncssh.DEVNULL if script is None else asyncssh.PIPE
            async with self._conn.create_process(line, stdin=stdin) as process:
                if script is not None:  # the export lines, then EOF, which ``$(cat)`` waits for
                    process.stdin.write(script)
                    process.stdin.write_eof()
                try:
                    result = await process.wait(check=False, timeout=timeout)
                except asyncssh.TimeoutError as exc:
                    await self._kill_group(_text(exc.stderr))
                    raise RemoteError(
                        f"{command!r} timed out after {timeout:g}s on {self.node}",
                        "raise the timeout or look at what the command waits for",
                    ) from None
        except (asyncssh.Error, OSError) as exc:
            raise UnreachableError(
                f"lost the SSH connection to {self.node} ({self.where}): {exc}"
            ) from None
        status = result.exit_status
        if status is None or status < 0:
            status = 128 + (_signal_number(result.exit_signal) if result.exit_signal else 127)
        return CommandResult(
            node=self.node,
            command=command,
            exit_status=status,
            stdout=_text(result.stdout),
            stderr=_strip_pid(_text(result.stderr))
            if timeout is not None
            else _text(result.stderr),
            duration=time.monotonic() - started,
        )

    async def _kill_group(self, stderr: str) -> None:
        """Best effort: kill the timed-out command's process group on the node."""
        first = stderr.split("\n", 1)[0]
        if not first.startswith(_PID_MARK) or not first[len(_PID_MARK) :].isdigit():
            return
        kill = f"kill -KILL -- -{first[len(_PID_MARK) :]}"
        try:
            await asyncio.wait_for(self._conn.run(kill, stdin=asyncssh.DEVNULL), 5)
        except (asyncssh.Error, OSError, TimeoutError):
            pass

    @property
    def is_open(self) -> bool:
        return not self._conn.is_closed()

    async def _sftp_client(self) -> asyncssh.SFTPClient:
        async with self._sftp_lock:
            if self._sftp is None:
                self._sftp = await self._conn.start_sftp_client()
            return self._sftp

    async def put(self, local: Path, remote: str) -> None:
        """``remote`` is the destination path; a directory's contents merge into it."""
        try:
            sftp = await self._sftp_client()
            if local.is_dir():
                await sftp.makedirs(remote, exist_ok=True)
                children = sorted(local.iterdir())
                if children:
                    await sftp.put(children, remote, recurse=True, preserve=True)
            else:
                parent = str(Path(remote).parent)
                if parent not in ("", "/", "."):
                    await sftp.makedirs(parent, exist_ok=True)
                await sftp.put(local, remote, preserve=True)
        except (asyncssh.Error, OSError) as exc:
            raise RemoteError(f"upload of {local} to {self.node}:{remote} failed: {exc}") from None

    async def get(self, remote: str, local: Path) -> None:
        try:
            sftp = await self._sftp_client()
            if await sftp.isdir(remote):
                local.mkdir(parents=True, exist_ok=True)
                names = [n for n in await sftp.listdir(remote) if n not in (".", "..")]
                if names:
                    paths = [f"{remote.rstrip('/')}/{n}" for n in sorted(names)]
                    await sftp.get(paths, local, recurse=True, preserve=True)
            else:
                local.parent.mkdir(parents=True, exist_ok=True)
                await sftp.get(remote, local, preserve=True)
        except (asyncssh.Error, OSError) as exc:
            raise RemoteError(
                f"download of {self.node}:{remote} to {local} failed: {exc}"
            ) from None

    async def close(self) -> None:
        if self._sftp is not None:
            self._sftp.exit()
        self._conn.close()
        await self._conn.wait_closed()
        if self._jump is not None:
            self._jump.close()
            await self._jump.wait_closed()


async def open_jump(
    target: Reachable, store: StateStore, ssh: SSHSettings, *, accept_new: bool = False
) -> asyncssh.SSHClientConnection:
    """A connection to the host's bastion, to tunnel host connections through."""
    host = target.host
    assert host.jump
    key_path = Path(host.key).expanduser() if host.key else ssh.key
    user, address, port = parse_jump(host.jump, host.user or ssh.user)
    return await _open(
        f"jump host {address}:{port} of {host.name}",
        address,
        port,
        user,
        key_path,
        store,
        ssh,
        accept_new,
        label=f"{host.name} (jump)",
    )


def parse_jump(spec: str, default_user: str) -> tuple[str, str, int]:
    """``[user@]host[:port]`` -> (user, host, port); IPv6 addresses are not supported."""
    user, _, rest = spec.rpartition("@")
    host, _, port = rest.partition(":")
    if not host or (port and not port.isdigit()):
        raise NodeError(f"jump host {spec!r} must look like [user@]host[:port]")
    return user or default_user, host, int(port) if port else 22


async def _open(
    where: str,
    address: str,
    port: int,
    user: str,
    key_path: Path | None,
    store: StateStore,
    ssh: SSHSettings,
    accept_new: bool,
    *,
    label: str,
    tunnel: asyncssh.SSHClientConnection | None = None,
) -> asyncssh.SSHClientConnection:
    """One authenticated connection with its host key checked (and recorded if new)."""
    recorded = hostkeys.known(store, address, port)
    check = _HostKeyCheck(recorded, accept_new)
    try:
        conn = await asyncio.wait_for(
            asyncssh.connect(
                address,
                port=port,
                tunnel=tunnel,
                username=user,
                # With nodes.ssh.agent, keys held by ssh-agent (passphrase-protected ones
                # included) are offered too; without it only the configured key.
                client_keys=[_private_key(key_path, label)] if key_path else _agent_only(ssh),
                known_hosts=([recorded] if recorded else [], [], []),
                client_factory=lambda: check,
                agent_path=ssh.agent_socket if ssh.agent else None,
                password=None,
                preferred_auth="publickey",
                config=[],
                connect_timeout=ssh.connect_timeout,
                encryption_algs=CIPHERS,
                keepalive_interval=15,
            ),
            ssh.connect_timeout,
        )
    except asyncssh.HostKeyNotVerifiable:
        raise _host_key_error(where, recorded, check.offered) from None
    except asyncssh.KeyExchangeFailed as exc:
        if recorded is not None:  # the host no longer offers the recorded key's type
            raise _host_key_error(where, recorded, None) from None
        raise RemoteError(f"SSH key exchange with {where} failed: {exc.reason}") from None
    except asyncssh.PermissionDenied:
        raise AuthenticationError(
            f"{where} refused our SSH key"
            f" ({key_path or ('ssh-agent keys' if ssh.agent else 'no key')}) for user {user}",
            "check the node's authorized_keys, the user and nodes.ssh.key",
        ) from None
    except (TimeoutError, OSError, asyncssh.ChannelOpenError) as exc:
        if isinstance(exc, TimeoutError):
            reason = "timed out"
        elif isinstance(exc, asyncssh.ChannelOpenError):
            reason = f"the jump host could not reach it ({exc.reason})"
        else:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise UnreachableError(
            f"{where} is unreachable over SSH: {reason}",
            f"check the address and that sshd listens (timeout {ssh.connect_timeout:g}s)",
        ) from None
    except asyncssh.Error as exc:
        raise RemoteError(f"SSH to {where} failed: {exc.reason}") from None
    offered = conn.get_server_host_key()
    if recorded is None and offered is not None:
        # Recorded only after the host proved it holds the key and let us in.
        hostkeys.remember(store, address, port, offered, label)
    return conn


def _host_key_error(
    where: str, recorded: asyncssh.SSHKey | None, offered: asyncssh.SSHKey | None
) -> HostKeyError:
    seen = offered.get_fingerprint() if offered else "a key of another type"
    if recorded is not None:
        return HostKeyError(
            f"host key of {where} changed: recorded {recorded.get_fingerprint()}, offered {seen}",
            "if the host was reinstalled, run 'hotsite nodes forget-host-key ADDRESS';"
            " otherwise someone may be intercepting the connection",
        )
    return HostKeyError(
        f"{where} has an unknown host key {seen}",
        "pass --accept-new-host-keys or set accept_new_host_keys: true for its provider",
    )


def _agent_only(ssh: SSHSettings) -> list[asyncssh.SSHKey] | None:
    # An empty list: no key files, but the agent's keys (None would disable keys).
    return [] if ssh.agent else None


@functools.lru_cache(maxsize=32)
def _read_key(path: Path, mtime: float) -> asyncssh.SSHKey:
    return asyncssh.read_private_key(str(path))


def _private_key(path: Path, node: str) -> asyncssh.SSHKey:
    """The key, parsed once per file version (fan-out to 50 nodes reads it once)."""
    try:
        return _read_key(path, path.stat().st_mtime)
    except FileNotFoundError:
        raise NodeError(
            f"SSH key {path} for node {node} does not exist",
            "set nodes.ssh.key (or the pool host's key) to a private key file",
        ) from None
    except (OSError, ValueError) as exc:  # KeyImportError is a ValueError
        raise NodeError(
            f"SSH key {path} for node {node} cannot be used: {exc}",
            "give an unencrypted OpenSSH private key (encrypted keys are not supported)",
        ) from None


_PID_MARK = "hotsite-pgid="


def _strip_pid(stderr: str) -> str:
    return stderr.split("\n", 1)[1] if stderr.startswith(_PID_MARK) else stderr


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _signal_number(name: tuple[str, bool, str, str] | str | None) -> int:
    import signal

    sig = name[0] if isinstance(name, tuple) else name
    try:
        return int(signal.Signals[f"SIG{sig}"])
    except (KeyError, TypeError):
        return 0
