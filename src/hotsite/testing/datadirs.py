"""Fresh MariaDB datadirs by copy: ``mariadb-install-db`` runs once per process and set of
settings, every further server of those settings gets a copy of that template.

install-db takes 0.6-2 s on a loaded 2-core machine and the test suite starts hundreds of
servers; a copy takes a tenth of that. A copy is what install-db would have made: the
template is taken right after install-db, before any server ran on it (so no binary log,
no server id, no GTID state in it), and the settings that decide its contents are the
cache key. The redo log is made sparse in the template (it is 64 MB of mostly zeros), so
each copy writes only the few MB that hold data.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"

_templates: dict[tuple[tuple[str, str], ...], Path] = {}
_lock = threading.Lock()
_root: Path | None = None


def install_datadir(datadir: Path, settings: dict[str, str]) -> None:
    """Make ``datadir`` (which must not exist) a freshly installed datadir for a server
    with ``settings`` (without the per-server paths, port and server id)."""
    key = tuple(sorted(settings.items()))
    with _lock:
        template = _templates.get(key)
        if template is None:
            template = _install_template(settings)
            _templates[key] = template
    _copy(template, datadir)


def _install_template(settings: dict[str, str]) -> Path:
    global _root
    if _root is None:
        _root = Path(tempfile.mkdtemp(prefix="hotsite-mariadb-templates-"))
        atexit.register(shutil.rmtree, _root, True)
    base = Path(tempfile.mkdtemp(dir=_root))
    installed_dir = base / "installing"
    defaults = base / "my.cnf"
    lines = ["[mariadbd]"]
    values = {
        **settings,
        "datadir": str(installed_dir),
        "tmpdir": str(base),  # not the shared /tmp (see PrivateMariaDB.settings)
        "log-error": str(base / "install.log"),
        "socket": str(base / "install.sock"),
        "pid-file": str(base / "install.pid"),
    }
    for name, value in values.items():
        lines.append(f"{name}={value}" if value != "" else name)
    defaults.write_text("\n".join(lines) + "\n")
    installed = subprocess.run(
        [
            INSTALL_DB,
            f"--defaults-file={defaults}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--user=root",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if installed.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(
            f"mariadb-install-db failed for {installed_dir}:\n{installed.stdout[-2000:]}"
        )
    template = base / "data"
    subprocess.run(["cp", "-a", "--sparse=always", str(installed_dir), str(template)], check=True)
    shutil.rmtree(installed_dir, ignore_errors=True)
    return template


def _copy(template: Path, datadir: Path) -> None:
    # cp keeps the holes of the sparse template; shutil.copytree would write them out.
    datadir.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(template), str(datadir)], check=True)
