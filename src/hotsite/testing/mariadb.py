"""Private MariaDB servers: own datadir, port and socket each, binlog ready for capture.

Used by the test suite, the demo and the benchmarks. Each server is a real ``mariadbd``
whose datadir is a copy of one ``mariadb-install-db`` run per process and settings
(``datadirs.py``), started with ``mariadbd --defaults-file``; it is stopped by its PID
and its directory removed by ``stop()``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

from hotsite.testing.datadirs import INSTALL_DB, install_datadir
from hotsite.testing.ports import free_port

__all__ = ["INSTALL_DB", "MARIADBD", "PrivateMariaDB", "free_port"]

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
# What mariadbd's error log says when another process took the port first.
_PORT_TAKEN = ("Bind on TCP/IP port", "Address already in use")
# Settings that name this server's own files or port: not part of what install-db makes.
_PER_SERVER = {"datadir", "socket", "port", "pid-file", "log-error", "tmpdir", "server-id"}


@dataclass
class PrivateMariaDB:
    """One private ``mariadbd``. ``start()`` returns once it accepts connections."""

    server_id: int
    port: int = 0
    base_dir: Path | None = None
    extra_settings: dict[str, str] = field(default_factory=dict)
    # A server inside a network namespace (a test host's, hotsite.testing.sshhosts)
    # listens on that host's address; the test itself reaches it through its Unix
    # socket (not namespaced), so it sees the server whatever the network does.
    netns: str | None = None
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None
    _owns_dir: bool = False

    @property
    def datadir(self) -> Path:
        assert self.base_dir
        return self.base_dir / "data"

    @property
    def socket_path(self) -> Path:
        assert self.base_dir
        return self.base_dir / "mysqld.sock"

    @property
    def defaults_file(self) -> Path:
        assert self.base_dir
        return self.base_dir / "my.cnf"

    def url(self, database: str = "app") -> str:
        return f"mysql://root@{self.host}:{self.port}/{database}"

    def settings(self) -> dict[str, str]:
        assert self.base_dir
        values = {
            "datadir": str(self.datadir),
            "socket": str(self.socket_path),
            "port": str(self.port),
            "bind-address": self.host,
            "pid-file": str(self.base_dir / "mysqld.pid"),
            "log-error": str(self.base_dir / "error.log"),
            # Not the shared /tmp: every mariadbd deletes the #sql* files in its tmpdir
            # when it starts, so a server starting beside this one would remove its
            # temporary tables (mariadb-install-db then fails: "Unknown table ...").
            "tmpdir": str(self.base_dir),
            "server-id": str(self.server_id),
            "log-bin": "binlog",
            "binlog-format": "ROW",
            "binlog-row-image": "FULL",
            "binlog-row-metadata": "FULL",
            "gtid-domain-id": "0",
            "skip-name-resolve": "1",
            "innodb-buffer-pool-size": "128M",
            "innodb-log-file-size": "64M",
            "max-connections": "200",
            "character-set-server": "utf8mb4",
            "collation-server": "utf8mb4_general_ci",
        }
        values.update(self.extra_settings)
        return values

    def write_defaults(self) -> None:
        lines = ["[mariadbd]"]
        for key, value in self.settings().items():
            lines.append(f"{key}={value}" if value != "" else key)
        lines += ["[client]", f"socket={self.socket_path}", f"port={self.port}", "user=root"]
        self.defaults_file.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 30.0) -> PrivateMariaDB:
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix=f"hotsite-mariadb-{self.server_id}-"))
            self._owns_dir = True
        chosen_port = not self.port
        if chosen_port:
            self.port = free_port()
        self.write_defaults()
        if not (self.datadir / "mysql").exists():
            install_settings = {k: v for k, v in self.settings().items() if k not in _PER_SERVER}
            install_datadir(self.datadir, install_settings)
        # A port found free can still be taken by another process before mariadbd binds
        # it (parallel test workers): a port we chose is chosen again, a given one is not.
        for _ in range(5):
            log = self.base_dir / "error.log"
            log_start = log.stat().st_size if log.exists() else 0
            if self._launch(timeout, log, log_start):
                return self
            if not chosen_port:
                break
            self.port = free_port()
            self.write_defaults()
        tail = log.read_text(errors="replace")[log_start:][-2000:] if log.exists() else ""
        raise RuntimeError(f"mariadbd on port {self.port} did not start:\n{tail}")

    def _launch(self, timeout: float, log: Path, log_start: int) -> bool:
        """Start mariadbd; True once it accepts connections, False when it lost its port
        to another process; raises when it failed otherwise."""
        inside = ["ip", "netns", "exec", self.netns] if self.netns else []  # execs mariadbd
        self.process = subprocess.Popen(
            [*inside, MARIADBD, f"--defaults-file={self.defaults_file}", "--user=root"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.process.poll() is None and self._answers():
                    return True
            except pymysql.err.OperationalError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self._terminate(signal.SIGKILL, wait=10)
                tail = log.read_text(errors="replace")[log_start:] if log.exists() else ""
                if any(sign in tail for sign in _PORT_TAKEN):
                    return False
                raise RuntimeError(f"mariadbd on port {self.port} did not start:\n{tail[-2000:]}")
            time.sleep(0.02)

    def _answers(self) -> bool:
        """This server answers on its port: not merely something (another test's server
        that took the port first) answering there."""
        conn = self.connect(read_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT @@datadir")
                row = cur.fetchone()
        finally:
            conn.close()
        return row is not None and Path(str(row[0])).resolve() == self.datadir.resolve()

    def connect(
        self, database: str | None = None, **kwargs: object
    ) -> pymysql.connections.Connection:
        # A server bound to another address (a namespace's, a bridge's) is not on the
        # loopback: its socket reaches it from here whatever the network does.
        where: dict[str, object] = (
            {"unix_socket": str(self.socket_path)}
            if self.netns or self.host != "127.0.0.1"
            else {"host": "127.0.0.1", "port": self.port}
        )
        return pymysql.connect(
            **where,  # type: ignore[arg-type]
            user="root",
            password="",
            database=database,
            autocommit=True,
            connect_timeout=2,
            **kwargs,
        )

    def execute(self, *statements: str, database: str | None = None) -> list[tuple[object, ...]]:
        """Run statements; return the rows of the last one."""
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                rows: list[tuple[object, ...]] = []
                for statement in statements:
                    cur.execute(statement)
                    rows = list(cur.fetchall())
                return rows
        finally:
            conn.close()

    def stop(self, remove: bool = True) -> None:
        discard = bool(
            remove
            and self._owns_dir
            and self.base_dir
            and not os.environ.get("HOTSITE_KEEP_DATADIRS")
        )
        # A datadir about to be removed needs no clean shutdown (flushing the buffer pool
        # of a server that took a write load costs seconds): kill -9, then remove.
        self._terminate(signal.SIGKILL if discard else signal.SIGTERM, wait=60)
        if discard and self.base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def kill(self) -> None:
        """``kill -9``: the crash case."""
        self._terminate(signal.SIGKILL, wait=10)

    def restart(self) -> None:
        self._terminate(signal.SIGTERM, wait=60)
        self.start()

    def _terminate(self, sig: signal.Signals, wait: float) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def __enter__(self) -> PrivateMariaDB:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
