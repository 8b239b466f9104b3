"""Two sites of the sample application and a witness, each in a network of its own, for
the end-to-end DR tests and the failover benchmark.

``DRLab(base_dir).start()`` makes three network-namespace hosts (hotsite.testing.sshhosts),
each on its own subnet and bridge, routed to each other through the root namespace:

- ``primary`` and ``dr``: a private MariaDB listening on the host's address, the
  PetClinic app (examples/petclinic/app) in front of it, and ``hotsite agent`` for the
  site (its links, fence, lease and health report) — all inside the site's namespace, so
  cutting the site's network cuts its agent too. Each agent has a project directory of
  its own (``agent_home``: its journals, status and logs), as a deployed agent has on its
  node: the moves know its journal only from its health report;
- ``witness``: ``hotsite controller`` (auto_failover on) and the entry point (HAProxy),
  outside both sites.

The test process (root namespace) reaches the entry point and every host; it reads the
databases through their Unix sockets, so it sees them whatever the network does.
``LoadGenerator`` writes pets through the entry point and records every acknowledged
write; ``WritableWatch`` samples which databases are writable every 50 ms.

Faults: ``kill_site`` (database and web processes, kill -9), ``cut_network`` (every
packet on the site's interface dropped, nftables in its namespace), ``cut_between``
(only the traffic between two sites' subnets), ``isolate`` (everything but the root
namespace: the site's own clients still reach it). Every table is named ``hsdre2e`` and
lives in the namespace, which ``stop()`` deletes.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
import yaml

from hotsite.testing.mariadb import PrivateMariaDB
from hotsite.testing.ports import free_port
from hotsite.testing.sshhosts import SSHHost, SSHHostFactory

TOKEN = "dre2e-token-0123456789abcdef0123"
PETCLINIC = Path(__file__).resolve().parents[3] / "examples" / "petclinic"
NFT_TABLE = "hsdre2e"
WEB_PORT = 8080  # inside each site's own namespace: no collision is possible


@dataclass
class Site:
    name: str
    factory: SSHHostFactory
    host: SSHHost
    db: PrivateMariaDB | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return self.host.address

    @property
    def subnet(self) -> str:
        return f"10.213.{self.factory.subnet}.0/24"

    @property
    def gateway(self) -> str:
        return f"10.213.{self.factory.subnet}.1"


class DRLab:
    def __init__(
        self,
        base_dir: Path,
        *,
        lease: float = 2.0,
        interval: float = 0.2,
        dead_after: float = 1.0,
        clock_margin: float = 0.3,
        auto_failover: bool = True,
    ) -> None:
        self.base_dir = base_dir
        self.timing = {
            "lease": lease, "clock_margin": clock_margin, "auto_failover": auto_failover,
            "detection": {"interval": interval, "dead_after": dead_after},
        }  # fmt: skip
        self.sites: dict[str, Site] = {}
        self.config = base_dir / "hotsite.yaml"
        self.controller_port = free_port()
        self.entry_port = free_port()
        self.env = {**os.environ, "HOTSITE_CONTROL_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
        src = str(Path(__file__).resolve().parents[2])
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (src, os.environ.get("PYTHONPATH")) if p
        )

    # -- bring-up ------------------------------------------------------------------

    def start(self) -> DRLab:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        for index, name in enumerate(("primary", "dr", "witness")):
            factory = SSHHostFactory(self.base_dir / f"net-{name}")
            (host,) = factory.create(1)
            factory.route_out()
            self.sites[name] = Site(name, factory, host)
            if name != "witness":
                self._database(self.sites[name], index + 1)
        self._schema(self.primary)
        self._write_config()
        self.start_controller()
        self._hotsite_in("witness", "entry", "up", check=True)
        for name in ("primary", "dr"):
            self.start_web(name)
            self.start_agent(name)
        return self

    def _database(self, site: Site, server_id: int) -> None:
        db = PrivateMariaDB(
            server_id=server_id,
            base_dir=Path(tempfile.mkdtemp(prefix=f"dre2e-{site.name}-")),  # short: a socket
            netns=site.host.netns,
            host=site.address,
            port=3306,
        )
        db._owns_dir = True  # stop() removes it
        db.start()
        db.execute(
            # hotsite's user reaches the server from other hosts (root@localhost does
            # not); the application's user has no READ_ONLY ADMIN, so a fence stops it.
            "CREATE USER IF NOT EXISTS root@'10.213.%'",
            "GRANT ALL PRIVILEGES ON *.* TO root@'10.213.%' WITH GRANT OPTION",
            "CREATE DATABASE IF NOT EXISTS petclinic",
            "CREATE USER IF NOT EXISTS petclinic@'%' IDENTIFIED BY 'pw'",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON petclinic.* TO petclinic@'%'",
        )
        if site.name != "primary":
            db.execute("SET GLOBAL read_only = ON")  # a standby, as its agent keeps it
        site.db = db

    def _schema(self, site: Site) -> None:
        assert site.db is not None
        text = (PETCLINIC / "db" / "schema.sql").read_text().splitlines()
        schema = "\n".join(line for line in text if not line.lstrip().startswith("--"))
        site.db.execute(*(s for s in schema.split(";") if s.strip()), database="petclinic")

    def _write_config(self) -> None:
        witness = self.sites["witness"].address
        data = {
            # Named: the agents' files are in directories of their own, and the name (the
            # directory's, by default) keys the applied positions.
            "project": "dre2e",
            "sites": {
                name: {"database": f"mysql://root@{self.sites[name].address}:3306/petclinic"}
                for name in ("primary", "dr")
            },
            "replication": [{"from": "primary", "to": "dr", "heartbeat_interval": 0.2}],
            "dr": {
                "primary": "primary",
                **self.timing,
                "controller": {"listen": f"{witness}:{self.controller_port}"},
                "entry": {
                    "listen": f"{witness}:{self.entry_port}",
                    "servers": {
                        name: f"{self.sites[name].address}:{WEB_PORT}" for name in ("primary", "dr")
                    },
                },
            },
        }
        self.config.write_text(yaml.safe_dump(data, sort_keys=False))
        for name in ("primary", "dr"):
            self.agent_home(name).mkdir(parents=True, exist_ok=True)
            (self.agent_home(name) / "hotsite.yaml").write_text(
                yaml.safe_dump(data, sort_keys=False)
            )

    def agent_home(self, name: str) -> Path:
        """The directory of site ``name``'s agent: its project file, and its .hotsite."""
        return self.base_dir / f"node-{name}"

    def _popen(self, where: str, argv: list[str], log: str, **env: str) -> subprocess.Popen[bytes]:
        output = (self.base_dir / log).open("ab")
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.sites[where].host.netns, *argv],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.base_dir,
            env={**self.env, **env},
            start_new_session=True,
        )
        output.close()
        return process

    def _hotsite_in(
        self, where: str, *args: str, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["ip", "netns", "exec", self.sites[where].host.netns, sys.executable, "-m", "hotsite",
             "--config", str(self.config), *args],
            capture_output=True, text=True, env=self.env, cwd=self.base_dir, timeout=120,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise RuntimeError(f"hotsite {' '.join(args)}: {result.stderr.strip()}")
        return result

    def hotsite(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A hotsite command where the operator runs it: beside the controller."""
        return self._hotsite_in("witness", *args)

    def start_controller(self) -> None:
        argv = [sys.executable, "-m", "hotsite", "--config", str(self.config), "controller"]
        self.sites["witness"].processes["controller"] = self._popen(
            "witness", argv, "controller.log"
        )
        wait_until(lambda: self._controller_answers(), "the controller", 60)

    def kill_controller(self) -> None:
        self._kill(self.sites["witness"], "controller")

    def start_agent(self, name: str) -> None:
        config = self.agent_home(name) / "hotsite.yaml"
        argv = [sys.executable, "-m", "hotsite", "--config", str(config), "agent",
                "--site", name, "--quiet"]  # fmt: skip
        self.sites[name].processes["agent"] = self._popen(name, argv, f"agent-{name}.log")

    def start_web(self, name: str) -> None:
        site = self.sites[name]
        argv = [sys.executable, str(PETCLINIC / "app" / "petclinic.py")]
        site.processes["web"] = self._popen(
            name, argv, f"web-{name}.log",
            DB_HOST=site.address, DB_PORT="3306", DB_USER="petclinic", DB_PASSWORD="pw",
            DB_NAME="petclinic", APP_PORT=str(WEB_PORT), NODE_NAME=name,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 120) -> None:
        """The primary holds its lease, the DR site has the schema, a write through the
        entry point lands at the primary."""
        wait_until(lambda: self.record().get("lease_holder") == "primary", "the lease", timeout)
        wait_until(lambda: _post(self.entry_address, "ready")[0] == 201, "the entry", timeout)
        wait_until(lambda: "ready" in self.names("dr"), "replication to dr", timeout)

    # -- views ---------------------------------------------------------------------

    @property
    def primary(self) -> Site:
        return self.sites["primary"]

    @property
    def entry_address(self) -> tuple[str, int]:
        return self.sites["witness"].address, self.entry_port

    def _call(self, path: str) -> Any:
        conn = http.client.HTTPConnection(
            self.sites["witness"].address, self.controller_port, timeout=2
        )
        try:
            conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def _controller_answers(self) -> bool:
        try:
            return "epoch" in self._call("/v1/record")
        except (OSError, ValueError, http.client.HTTPException):
            return False

    def controller_sites(self) -> dict[str, Any]:
        """The controller's ``GET /v1/sites``: each site's last report and its age."""
        answer = self._call("/v1/sites")
        return answer if isinstance(answer, dict) else {}

    def record(self) -> dict[str, Any]:
        try:
            answer = self._call("/v1/record")
            return answer if isinstance(answer, dict) else {}
        except (OSError, ValueError, http.client.HTTPException):
            return {}

    def watch(self) -> WritableWatch:
        """A started WritableWatch of both sites' databases."""
        return WritableWatch({name: self.db(name) for name in ("primary", "dr")}).start()

    def db(self, name: str) -> PrivateMariaDB:
        db = self.sites[name].db
        assert db is not None
        return db

    def names(self, name: str) -> set[str]:
        try:
            rows = self.db(name).execute("SELECT name FROM petclinic.pets")
        except pymysql.MySQLError:
            return set()  # not there (yet)
        return {str(row[0]) for row in rows}

    def count(self, name: str) -> int | None:
        try:
            rows = self.db(name).execute("SELECT COUNT(*) FROM petclinic.pets")
            return int(rows[0][0])  # type: ignore[call-overload]
        except pymysql.MySQLError:
            return None

    def writable(self, name: str) -> bool | None:
        try:
            return self.db(name).execute("SELECT @@GLOBAL.read_only") == [(0,)]
        except pymysql.MySQLError:
            return None

    # -- faults --------------------------------------------------------------------

    def kill_site(self, name: str) -> None:
        """kill -9 of the site's database and web processes (its agent lives on)."""
        self._kill(self.sites[name], "web")
        self.db(name).kill()

    def cut_network(self, name: str) -> None:
        """Every packet in and out of the site's interface dropped."""
        self._nft(name, 'iifname "eth0" drop', 'oifname "eth0" drop')

    def cut_between(self, name: str, other: str) -> None:
        """Only the traffic between two sites (each still reaches the witness)."""
        subnet = self.sites[other].subnet
        self._nft(name, f"ip saddr {subnet} drop", f"ip daddr {subnet} drop")

    def isolate(self, name: str) -> None:
        """Cut from the witness and every other site; the root namespace (the site's own
        clients, the test) still reaches it."""
        gateway = self.sites[name].gateway
        self._nft(
            name,
            f'iifname "eth0" ip saddr != {gateway} drop',
            f'oifname "eth0" ip daddr != {gateway} drop',
        )

    def mend(self, name: str) -> None:
        self.sites[name].host.exec("nft", "delete", "table", "inet", NFT_TABLE)

    def _nft(self, name: str, inbound: str, outbound: str) -> None:
        script = (
            f"table inet {NFT_TABLE} {{\n"
            f"  chain in {{ type filter hook input priority -10; {inbound}; }}\n"
            f"  chain out {{ type filter hook output priority -10; {outbound}; }}\n"
            "}\n"
        )
        result = self.sites[name].host.exec("nft", "-f", "-", input=script)
        if result.returncode != 0:
            raise RuntimeError(f"nft in {name}: {result.stderr.strip()}")

    # -- tear-down -----------------------------------------------------------------

    def _kill(self, site: Site, what: str) -> None:
        process = site.processes.pop(what, None)
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def stop(self) -> None:
        if "witness" in self.sites:
            with contextlib.suppress(Exception):
                self._hotsite_in("witness", "entry", "down")
        for site in self.sites.values():
            for what in list(site.processes):
                self._kill(site, what)
            if site.db is not None:
                site.db.stop()
            site.factory.stop()  # kills what is left in the namespace, deletes it

    def __enter__(self) -> DRLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Write:
    name: str
    sent: float
    acked: float
    site: str


class LoadGenerator:
    """Pets written through the entry point one after another, each with a name of its
    own; every acknowledged write (201) is kept with the time it was acknowledged and
    the site that served it."""

    def __init__(self, address: tuple[str, int], writers: int = 4, pause: float = 0.005) -> None:
        self.address = address
        self.pause = pause
        self.acked: list[Write] = []
        self.failed = 0
        self._stop = threading.Event()
        # Several writers, each waiting for its answer: one at a time would measure the
        # gap between two writes in units of a request's round trip.
        self._threads = [
            threading.Thread(target=self._run, args=(f"w{i}-",), daemon=True)
            for i in range(writers)
        ]

    def start(self) -> LoadGenerator:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, prefix: str) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            name = f"{prefix}{n}"
            sent = time.time()
            status, served = _post(self.address, name)
            if status == 201:
                self.acked.append(Write(name, sent, time.time(), served))  # atomic append
            else:
                self.failed += 1
            self._stop.wait(self.pause)

    def by(self, site: str) -> list[Write]:
        return [w for w in self.acked if w.site == site]

    def gap(self, after: float) -> tuple[float, float, float]:
        """Write to write around a failure at ``after``: (last ack before it, first ack
        after it, the seconds between)."""
        before = [w.acked for w in self.acked if w.acked <= after]
        later = [w.acked for w in self.acked if w.acked > after]
        last = max(before) if before else after
        first = min(later) if later else float("inf")
        return last, first, first - last


def _post(address: tuple[str, int], name: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection(*address, timeout=2)
    try:
        body = json.dumps({"name": name})
        conn.request("POST", "/api/pets", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("X-Served-By") or ""
    except (OSError, http.client.HTTPException):
        return 0, ""
    finally:
        conn.close()


class WritableWatch:
    """Every 50 ms: which databases accept writes (read_only off) — a namespaced one
    through its Unix socket — and the moments when more than one did."""

    def __init__(self, servers: dict[str, PrivateMariaDB]) -> None:
        self.servers = servers
        self.sites = tuple(servers)
        self.samples = 0
        self.both_writable: list[float] = []
        self.first_writable: dict[str, float] = {}
        self.last_writable: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> WritableWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        conns: dict[str, Any] = {}
        while not self._stop.wait(0.05):
            now = time.time()
            writable = [site for site in self.sites if self._writable(conns, site)]
            for site in writable:
                self.first_writable.setdefault(site, now)
                self.last_writable[site] = now
            self.samples += 1
            if len(writable) > 1:
                self.both_writable.append(now)
        for conn in conns.values():
            with contextlib.suppress(Exception):
                conn.close()

    def _writable(self, conns: dict[str, Any], site: str) -> bool:
        # One connection per database, kept: opening one per sample takes longer than
        # the 50 ms between samples on a loaded machine. A fence kills it: reopened.
        try:
            if site not in conns:
                conns[site] = self.servers[site].connect(read_timeout=2)
            with conns[site].cursor() as cur:
                cur.execute("SELECT @@GLOBAL.read_only")
                return bool(cur.fetchone()[0] == 0)
        except pymysql.MySQLError:
            conns.pop(site, None)
            return False  # down, or our session was killed: not writable by us now


def wait_until(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)
