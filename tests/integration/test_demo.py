"""`hotsite demo`: the whole DR story runs to its end on this machine, with real
numbers; the sites it leaves (with --keep) are identical in their own databases; the
report parses and renders its plot in a real browser; Ctrl-C at any moment leaves
nothing running; a taken port is refused in one line."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pymysql
import pytest
import yaml

from hotsite.testing.ports import free_port
from tests.helpers import HOTSITE

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TABLES = ("owners", "pets", "visits", "vets", "specialties", "vet_specialties")
MARK = "demo-w"

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
pytestmark = pytest.mark.skipif(
    not os.path.exists(HAPROXY), reason="haproxy is not installed (scripts/bootstrap)"
)


def _demo(directory: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*HOTSITE, "demo", "--dir", str(directory), "--entry-port", str(port), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=directory.parent,
    )  # fmt: skip


def _databases(directory: Path) -> dict[str, int]:
    config = yaml.safe_load((directory / "hotsite.yaml").read_text())
    return {
        site: int(body["database"].rsplit(":", 1)[1].split("/")[0])
        for site, body in config["sites"].items()
    }


def _ports(directory: Path) -> list[int]:
    """Every port the demo listens on: the databases, the apps and load balancers (in
    its logs and config), the controller and the entry point."""
    config = yaml.safe_load((directory / "hotsite.yaml").read_text())
    ports = list(_databases(directory).values())
    ports.append(int(config["dr"]["controller"]["listen"].rsplit(":", 1)[1]))
    ports.append(int(config["dr"]["entry"]["listen"].rsplit(":", 1)[1]))
    ports += [int(a.rsplit(":", 1)[1]) for a in config["dr"]["entry"]["servers"].values()]
    return ports


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _processes_under(directory: Path) -> list[str]:
    """Processes whose command line or working directory is the demo's (servers,
    agents and their children…)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        # By its command line, or its working directory (an agent's capture processes,
        # which would outlive a kill -9 of their agent alone).
        mine = str(directory) in cmdline or cwd.startswith(str(directory))
        if mine and state != "Z" and "pytest" not in cmdline:
            found.append(f"{proc.name}: {cmdline[:160]}")
    return found


def _stacks(process: str) -> str:
    """Where a process left behind is stuck: py-spy's dump of its Python threads."""
    spy = Path(HOTSITE[0]).parent / "py-spy"
    dumped = subprocess.run(
        [str(spy), "dump", "--pid", process.split(":")[0]],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return dumped.stdout + dumped.stderr


def _nothing_left(directory: Path) -> None:
    deadline = time.monotonic() + 20
    while _processes_under(directory) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _processes_under(directory)
    assert left == [], "\n".join([*left, *map(_stacks, left)])
    for entry in json.loads((directory / "pids.json").read_text() or "[]"):
        assert not Path(f"/proc/{entry['pid']}").exists() or _zombie_or_other(entry)
    if (directory / "hotsite.yaml").exists():
        taken = [port for port in _ports(directory) if _listening(port)]
        assert taken == []


def _zombie_or_other(entry: dict[str, Any]) -> bool:
    try:
        fields = Path(f"/proc/{entry['pid']}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True
    return fields[0] == "Z" or int(fields[19]) != entry["started"]


def _checksums(port: int) -> dict[str, Any]:
    conn = pymysql.connect(host="127.0.0.1", port=port, user="root", database="petclinic")
    try:
        with conn.cursor() as cur:
            cur.execute("CHECKSUM TABLE " + ", ".join(TABLES) + " EXTENDED")
            sums = dict(cur.fetchall())
            cur.execute(f"SELECT description FROM visits WHERE description LIKE '{MARK}%'")
            marks = {str(row[0]) for row in cur.fetchall()}
        return {"sums": sums, "marks": marks}
    finally:
        conn.close()


@pytest.mark.slow
def test_the_demo_tells_the_whole_story_with_real_numbers(tmp_path: Path) -> None:
    directory = tmp_path / "demo-run"
    port = free_port()
    process = _demo(directory, port, "--keep")
    try:
        out, _ = process.communicate(timeout=600)
        assert process.returncode == 0, out
        assert "RTO" in out and "the demo took" in out and f"hotsite demo --stop {directory}" in out
        report = json.loads((directory / "report.json").read_text())
        assert report["finished"]
        moves = report["moves"]
        assert [m["kind"] for m in moves] == ["failover", "relocate"]
        failover, relocate = moves
        # The controller detected the death and moved by itself: its timeline says why.
        steps = [s["step"] for s in failover["steps"]]
        assert steps[:2] == ["failure detected", "decided"] and "traffic switched" in steps
        assert (failover["from"], failover["to"], relocate["to"]) == ("primary", "dr", "primary")
        # Real numbers from the client's writes, within issue 12's goals with room for a
        # loaded machine (the goals themselves: 3 s, 200 ms, and 0 for a relocate).
        for move in moves:
            client = move["client"]
            assert isinstance(client["rto_seconds"], float), client
            assert 0 < client["rto_seconds"] < 20, client
            assert client["first_ok_after"] > client["event_at"]
        assert failover["client"]["rpo_seconds"] < 2.0
        assert relocate["client"]["rpo_writes"] == 0
        assert report["writes"]["acknowledged"] > 20

        # "Identical", checked in the sites' own databases, which --keep left running.
        ports = _databases(directory)
        primary, dr = _checksums(ports["primary"]), _checksums(ports["dr"])
        assert primary["sums"] == dr["sums"]
        assert primary["marks"] == dr["marks"]
        assert len(primary["marks"]) >= report["writes"]["acknowledged"]
        assert report["verify"]["identical"] and report["verify"]["exit_status"] == 0

        # The report: one HTML file with the plot inline, nothing fetched; the JSON.
        page = (directory / "report.html").read_text()
        assert "<svg" in page and "acknowledged writes/s" in page
        for fetch in ("<script", "<link", 'src="http', "@import", "url(http"):
            assert fetch not in page
        assert len(page) < 400_000
        assert {v["ok"] for v in report["verdicts"] if "identical" in v["claim"]} == {True}
        _screenshot_shows_the_plot(page_path=directory / "report.html", tmp_path=tmp_path)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        stopped = subprocess.run(
            [*HOTSITE, "demo", "--stop", str(directory)], capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    _nothing_left(directory)


def _screenshot_shows_the_plot(page_path: Path, tmp_path: Path) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (scripts/bootstrap installs it)")
    from PIL import Image

    shot = tmp_path / "report.png"
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    done = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--window-size=1200,1400",
            f"--screenshot={shot}", page_path.as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shot.exists(), done.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    # The plot's own colours (matplotlib's green writes line, its axes' grey) are on the
    # page: the SVG rendered, not an empty box.
    pixels = [image.getpixel((x, y)) for y in range(0, image.height, 2) for x in range(image.width)]
    green = sum(1 for r, g, b in pixels if abs(r - 0x2C) < 40 and abs(g - 0xA0) < 40 and b < 90)
    non_white = sum(1 for p in pixels if p != (255, 255, 255))
    assert green > 100, f"no plotted line in the screenshot ({green} green pixels)"
    assert non_white > 0.02 * len(pixels)


@pytest.mark.slow
def test_ctrl_c_at_any_moment_leaves_nothing_behind(tmp_path: Path) -> None:
    directory = tmp_path / "demo-run"
    process = _demo(directory, free_port())
    moment = random.uniform(1.0, 45.0)
    try:
        deadline = time.monotonic() + moment
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode in (0, 1, 130), f"after {moment:.1f} s: {out}"
    if process.returncode == 130:
        assert "interrupted" in out and "Traceback" not in out, out
    _nothing_left(directory)
    # The demo makes no namespace (other sessions' tests may, under their own tags).
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "demo" not in namespaces


def test_a_taken_port_is_refused_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*HOTSITE, "demo", "--dir", str(tmp_path / "run"), "--entry-port", str(port)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and "--entry-port" in lines[0], (
        done.stderr
    )
    assert not (tmp_path / "run").exists()  # nothing half-written
