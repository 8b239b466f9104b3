"""One local site of the sample application (examples/petclinic): a private MariaDB
server, the PetClinic app, and the site's own HAProxy in front of it — the three parts
the blueprint builds on a real site, here as processes of this machine.

The app connects as its own database user (``petclinic``, without ``READ_ONLY ADMIN``),
so a fenced site really refuses its writes (docs/dr.md#fencing); hotsite itself uses
``root``. The two sites draw their AUTO_INCREMENT keys from disjoint sequences (odd on
one, even on the other), so rows written on both sides of a failover never collide.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from hotsite.demo.processes import Processes
from hotsite.errors import HotsiteError
from hotsite.testing.mariadb import PrivateMariaDB
from hotsite.traffic import Backend, HAProxySite, render_config

DATABASE = "petclinic"
APP_USER = "petclinic"
HAPROXY = "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else "haproxy"


def petclinic_dir() -> Path:
    """The sample application, beside the package in a checkout of hotsite."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "examples" / "petclinic"
        if (candidate / "app" / "petclinic.py").exists():
            return candidate
    raise HotsiteError(
        "the sample application examples/petclinic is not found beside hotsite",
        "run the demo from a checkout of hotsite (scripts/demo)",
    )


@dataclass
class SitePorts:
    db: int
    app: int
    lb: int


@dataclass
class LocalSite:
    name: str
    index: int  # 1, 2, …: the server id and the AUTO_INCREMENT offset
    directory: Path
    ports: SitePorts
    app_password: str
    processes: Processes
    db: PrivateMariaDB = field(init=False)

    def __post_init__(self) -> None:
        (self.directory / "db").mkdir(parents=True, exist_ok=True)
        self.db = PrivateMariaDB(
            server_id=self.index, port=self.ports.db, base_dir=self.directory / "db"
        )

    @property
    def database_url(self) -> str:
        return self.db.url(DATABASE)

    @property
    def lb_address(self) -> str:
        return f"127.0.0.1:{self.ports.lb}"

    # -- the database -------------------------------------------------------------------

    def start_db(self) -> None:
        self.db.start()
        assert self.db.process is not None
        self.processes.adopt(f"{self.name} mariadbd", self.db.process.pid)
        # Per site, as the blueprint's db-configure.sh sets them in my.cnf: a GTID domain
        # of its own (hotsite tells the sites' transactions apart by it), and its own
        # AUTO_INCREMENT sequence. Set before anything writes, after every start.
        self.db.execute(
            f"SET GLOBAL gtid_domain_id = {self.index}",
            "SET GLOBAL auto_increment_increment = 2",
            f"SET GLOBAL auto_increment_offset = {self.index}",
        )

    def create_schema(self, with_tables: bool) -> None:
        """The database and the app's user; the tables only where ``with_tables`` (the
        other site gets them, and the rows, from its replication link's snapshot)."""
        # The user is per server (mysql.* is never replicated): made on both, unlogged.
        self.db.execute(
            "SET SESSION sql_log_bin = 0",
            f"CREATE DATABASE IF NOT EXISTS {DATABASE}",
            f"CREATE USER IF NOT EXISTS '{APP_USER}'@'127.0.0.1'"
            f" IDENTIFIED BY '{self.app_password}'",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {DATABASE}.* TO '{APP_USER}'@'127.0.0.1'",
        )
        if with_tables:
            sql = (petclinic_dir() / "db" / "schema.sql").read_text()
            statements = [
                s.strip()
                for s in "\n".join(
                    line for line in sql.splitlines() if not line.lstrip().startswith("--")
                ).split(";")
                if s.strip()
            ]
            self.db.execute(*statements, database=DATABASE)

    def kill_db(self) -> None:
        self.db.kill()  # kill -9 through its own handle, which reaps it
        self.processes.stop(f"{self.name} mariadbd")  # only forgets it: it is gone

    # -- the app and the site's load balancer ---------------------------------------------

    def start_app(self) -> None:
        app = petclinic_dir() / "app" / "petclinic.py"
        env = {
            **os.environ,
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(self.ports.db),
            "DB_USER": APP_USER,
            "DB_PASSWORD": self.app_password,
            "DB_NAME": DATABASE,
            "APP_PORT": str(self.ports.app),
            "NODE_NAME": f"{self.name}-web1",
        }
        self.processes.spawn(
            f"{self.name} app", [sys.executable, str(app)], self.directory / "app.log", env
        )

    def start_lb(self) -> None:
        lb_dir = self.directory / "lb"
        lb_dir.mkdir(exist_ok=True)
        site = HAProxySite(
            str(lb_dir), self.ports.lb, (Backend(f"{self.name}-web1", "127.0.0.1", self.ports.app),),
            name=self.name,
        )  # fmt: skip
        Path(site.config_path).write_text(render_config(site))
        # In the foreground (-db): its PID is the one recorded, no pid file to trust.
        self.processes.spawn(
            f"{self.name} lb", [HAPROXY, "-db", "-f", site.config_path], lb_dir / "haproxy.log"
        )

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until the site's load balancer answers /health with 200 (app and database up)."""
        deadline = time.monotonic() + timeout
        url = f"http://{self.lb_address}/health"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise HotsiteError(
                    f"site {self.name} did not become healthy at {url} in {timeout:g} s",
                    f"see {self.directory}/app.log and {self.directory}/lb/haproxy.log",
                )
            time.sleep(0.1)

    def start(self, with_tables: bool) -> None:
        self.start_db()
        self.create_schema(with_tables)

    def start_web(self) -> None:
        self.start_app()
        self.start_lb()

    def kill(self) -> None:
        """The whole site dies at once (kill -9): its web node, load balancer, database."""
        for part in ("lb", "app"):
            self.processes.kill(f"{self.name} {part}")
        self.kill_db()
