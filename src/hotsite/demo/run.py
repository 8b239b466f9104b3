"""``hotsite demo``: set the two sites and the control plane up, tell the story, write
the report, stop everything (or leave it running with ``--keep``).

Everything it starts is recorded by PID in the demo's directory and stopped from
there — at the end, on Ctrl-C, or by ``hotsite demo --stop DIR`` after ``--keep``.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hotsite.demo import processes as pids
from hotsite.demo.control import Control
from hotsite.demo.live import LiveView
from hotsite.demo.load import WriteLoad
from hotsite.demo.processes import Processes
from hotsite.demo.project import LOADED, QUIET, DemoPorts, timings, write_project
from hotsite.demo.report import write_report
from hotsite.demo.sampler import Sampler
from hotsite.demo.sites import HAPROXY, LocalSite, SitePorts
from hotsite.demo.story import Steps, Story
from hotsite.errors import ConfigError, HotsiteError
from hotsite.testing.mariadb import MARIADBD
from hotsite.testing.ports import free_port

DEFAULT_ENTRY_PORT = 8480


@dataclass
class DemoOptions:
    directory: Path | None = None
    keep: bool = False
    entry_port: int = DEFAULT_ENTRY_PORT


@dataclass
class DemoResult:
    directory: Path
    report: Path
    seconds: float
    verdict: bool


def demo_directory(given: Path | None) -> Path:
    directory = given or Path("demo") / time.strftime("%Y%m%d-%H%M%S")
    directory = directory.resolve()
    if directory.exists() and any(directory.iterdir()):
        raise ConfigError(
            f"the demo directory {directory} exists and is not empty",
            "name a new one with --dir, or remove it",
        )
    return directory


def check_port(port: int, what: str, option: str) -> None:
    with socket.socket() as sock:
        # As HAProxy binds it: the last run's closed connections (TIME_WAIT) do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen(1)
        except OSError:
            raise ConfigError(
                f"port {port} ({what}) is taken by another process",
                f"stop it, or choose another port with {option}",
            ) from None


def check_tools() -> None:
    for tool, package in ((MARIADBD, "mariadb-server"), (HAPROXY, "haproxy")):
        if shutil.which(tool) is None:
            raise ConfigError(
                f"{tool} is not installed", f"run scripts/bootstrap (apt-get install {package})"
            )


def run_demo(options: DemoOptions, print_line: Callable[[str], None], live: bool) -> DemoResult:
    check_tools()
    check_port(options.entry_port, "the demo's entry point", "--entry-port")
    directory = demo_directory(options.directory)
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    began = time.time()
    processes = Processes(directory)
    steps = Steps()
    view = LiveView(print_line, steps, began, enabled=live)
    primary = LocalSite(
        "primary", 1, directory / "primary",
        SitePorts(free_port(), free_port(), free_port()), secrets.token_hex(12), processes,
    )  # fmt: skip
    dr = LocalSite(
        "dr", 2, directory / "dr",
        SitePorts(free_port(), free_port(), free_port()), secrets.token_hex(12), processes,
    )  # fmt: skip
    times, load_per_core = timings()
    config, _token = write_project(
        directory, primary, dr, DemoPorts(free_port(), options.entry_port), times
    )
    control = Control(config, processes)
    load = WriteLoad("127.0.0.1", options.entry_port)
    sampler = Sampler(load, control, (primary.name, dr.name))
    story = Story(primary, dr, control, load, steps, view.say)
    finished = False
    try:
        with view:
            view.sampler = sampler
            if times is LOADED:
                view.say(
                    f"this machine is busy (load {load_per_core:.1f} per core): a lease of"
                    f" {times.lease:g} s instead of {QUIET.lease:g} s, so a slow controller"
                    " does not cost the primary its lease (the failover's RTO grows with it)"
                )
            with steps.step("sites, controller, agents, entry point up"):
                set_up(primary, dr, control, options.entry_port, view.say)
            load.start()
            sampler.start()
            story.run()
            finished = True
    finally:
        # A second Ctrl-C must not cut the cleanup short: every process is stopped.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            load.stop()
            sampler.stop()
            seconds = time.time() - began
            report = write_report(directory, story, sampler, steps, began, seconds, finished)
        finally:
            if not options.keep or not finished:
                stop_everything(processes, (primary, dr), control)
            signal.signal(signal.SIGINT, previous)
    return DemoResult(directory, report, seconds, finished and story.correct())


def stop_everything(processes: Processes, sites: tuple[LocalSite, ...], control: Control) -> None:
    """Every process of the demo, by PID — also one started but not yet recorded when
    Ctrl-C came: a server still starting, an entry point whose command was cut off."""
    for site in sites:
        if site.db.process is not None and site.db.process.poll() is None:
            processes.adopt(f"{site.name} mariadbd", site.db.process.pid)
    entry_pid = control.directory / ".hotsite" / "entry" / "haproxy.pid"
    try:
        pid = int(entry_pid.read_text().split()[0])
        if str(control.directory).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            processes.adopt("entry point", pid)
    except (OSError, ValueError, IndexError):
        pass
    processes.stop_all()
    for site in sites:
        if site.db.process is not None:
            site.db.process.wait()  # reaped: no zombie left
            site.db.process = None
        shutil.rmtree(site.db.datadir, ignore_errors=True)  # 100s of MB; the report stays


def set_up(
    primary: LocalSite, dr: LocalSite, control: Control, entry_port: int,
    say: Callable[[str], None],
) -> None:  # fmt: skip
    primary.start(with_tables=True)
    dr.start(with_tables=False)
    say(f"two MariaDB servers: primary :{primary.ports.db}, dr :{dr.ports.db}")
    control.start_controller()
    # The standby starts fenced, as a real one is: its agent would fence a writable
    # standby at start, killing the sessions of the snapshot its link is loading.
    control.checked("fence", dr.name)
    # dr's agent first, until its link has loaded dr from primary: the link back, in
    # primary's agent, then starts right after that load. (Started together, it could
    # start from a load still in progress and send the load's own DDL back to primary.)
    for site in (dr, primary):
        control.start_agent(site.name)
        control.wait_agent(site.name)
    say("controller and both site agents running; dr loaded from primary by its link")
    for site in (primary, dr):
        site.start_web()
    for site in (primary, dr):
        site.wait_healthy()
    control.entry_up()
    say(f"entry point up on 127.0.0.1:{entry_port}: traffic to primary")


def stop_demo(directory: Path) -> int:
    """``--stop DIR``: stop what a ``--keep`` run left running; how many were running."""
    entries = pids.load(directory)
    if not (directory / pids.PIDS_FILE).exists():
        raise HotsiteError(
            f"{directory} is not a demo directory (no {pids.PIDS_FILE})",
            "give the directory the demo printed",
        )
    running = [e for e in entries if pids.alive(e)]
    processes = Processes(directory)
    for entry in entries:
        processes.entries[entry.name] = entry
    processes.stop_all()
    return len(running)
