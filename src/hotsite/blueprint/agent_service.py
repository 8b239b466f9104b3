"""The built-in ``agent`` service: the site's agent, deployed onto a node of the site.

``services: {agent: {group: db, agent: {}}}`` in a blueprint puts ``hotsite agent --site
SITE`` on the group's node, installed from a wheelhouse the controller builds
(wheelhouse.py) and uploads — the node reaches no package index:

- upload: the wheelhouse to ``DIR/wheelhouse`` and the supervisor script;
- install: ``python3 -m venv DIR/venv`` and ``pip install --no-index --find-links``;
- configure: the agent's project file (agent_project.py), the project token and the TLS
  files it names (``DIR/tls``), all 0600, written from the transport's hidden
  environment (never on a command line, never in the command log, never in the state
  store: their fingerprint masks them);
- start: the supervisor, a shell loop that starts the agent again a second after it
  exits (a crash, kill -9), in a session of its own (setsid), its PID in
  ``DIR/agent.pid``; stop: SIGTERM to that session (the agent stops its duties
  cleanly), SIGKILL after 15 s;
- check: the agent's status file was written in the last 5 s (it writes it every
  second while it runs).

Fingerprints follow what would change the agent: the wheelhouse's key (hotsite's
version and source, the pinned dependencies), the masked project file, the commands.
The node's Python must be the controller's major.minor (the wheels are built for it):
``Deployment.up`` asks every agent node before any step runs (``python_probe``).
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from hotsite.blueprint.agent_project import agent_project, shown, tls_files
from hotsite.blueprint.model import Agent
from hotsite.blueprint.wheelhouse import Wheelhouse, python_version
from hotsite.config import ProjectConfig
from hotsite.errors import ConfigError
from hotsite.shellsafe import removable_dir

TOKEN_ENV = "HOTSITE_AGENT_TOKEN"
TLS_ENV = "HOTSITE_AGENT_TLS_"  # + a number: one TLS file's content each
PROJECT_ENV = "HOTSITE_AGENT_PROJECT"
CHECK_FRESH = 5  # seconds: the status file is rewritten every second while the agent runs
STOP_WAIT = 150  # tenths of a second before SIGKILL


@dataclass(frozen=True)
class AgentSetup:
    """What the project file gives the site's agent; made by ``open_deployment``."""

    config: ProjectConfig
    site: str
    token: str  # the project token (a stand-in where the command needs no secrets)
    wheelhouse: Wheelhouse


@dataclass
class AgentParts:
    """The agent rendered for its node: what ``desired.place`` makes a Placement of."""

    uploads: list[tuple[Path, str]]
    digests: dict[Path, str]  # the uploads' fingerprints (not their trees: 60 MB of wheels)
    files: list[tuple[str, str, str]]
    commands: dict[str, str]
    check: str
    env: dict[str, str]
    env_shown: dict[str, str]
    hidden: set[str]


def agent_parts(setup: AgentSetup, spec: Agent, own_database: str | None) -> AgentParts:
    """``own_database``: the site's database URL as its node sees it, None while the
    nodes are not known yet (a plan before the first ``up``)."""
    files = AgentFiles(spec.dir, setup.site)
    tls: dict[str, str] = {}  # node path → the file's content
    if own_database is None:
        text, digest = "", "pending"
    else:
        text = project_text(agent_project(setup.config, setup.site, own_database, spec.dir))
        digest = project_digest(text)
        tls = {node: _read_tls(local) for node, local in tls_files(setup.config, spec.dir).items()}
    tls_env = {f"{TLS_ENV}{i}": content for i, content in enumerate(tls.values())}
    wheels = setup.wheelhouse
    return AgentParts(
        uploads=[(wheels.path, files.path("wheelhouse"))],
        digests={wheels.path: wheels.key},
        files=[(files.path("supervise.sh"), supervisor_script(files), "0755")],
        commands=lifecycle(files, wheels, spec.python, list(zip(tls_env, tls, strict=True))),
        check=check_command(files),
        env={PROJECT_ENV: text, TOKEN_ENV: setup.token, **tls_env},
        env_shown={
            PROJECT_ENV: digest,
            TOKEN_ENV: "<secret:control_token>",
            # A new certificate changes the fingerprint, and so redeploys the agent.
            **{name: project_digest(content) for name, content in tls_env.items()},
        },
        hidden={v for v in (text, setup.token, *tls_env.values()) if v},
    )


def _read_tls(path: str) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the TLS file {path} for the deployed agent"
            f" ({getattr(exc, 'strerror', None) or exc})",
            "fix the path in the project file (sites.NAME.tls or control_tls.ca)",
        ) from None


@dataclass(frozen=True)
class AgentFiles:
    """Where the agent's things live on its node."""

    directory: str
    site: str

    def __post_init__(self) -> None:
        removable_dir(self.directory)  # uninstall is `rm -rf DIR` (ValueError if unsafe)

    def path(self, name: str) -> str:
        return f"{self.directory}/{name}"

    @property
    def status(self) -> str:
        return self.path(f"state/status/agent-{self.site}.json")


def supervisor_script(files: AgentFiles) -> str:
    """The loop that keeps the agent running; its exits go to the agent's log."""
    hotsite = shlex.quote(files.path("venv/bin/hotsite"))
    config = shlex.quote(files.path("hotsite.yaml"))
    return (
        "#!/bin/sh\n"
        "# written by hotsite: keeps this site's agent running (stopped by `hotsite down`)\n"
        f"cd {shlex.quote(files.directory)} || exit 1\n"
        "export PYTHONUNBUFFERED=1 PIP_CONFIG_FILE=/dev/null\n"
        "while :; do\n"
        f"  {hotsite} --config {config} agent --site {shlex.quote(files.site)} --quiet\n"
        '  echo "hotsite supervisor: the agent exited with status $?; starting it again in 1 s"\n'
        "  sleep 1\n"
        "done\n"
    )


def python_probe(python: str) -> str:
    """Prints the node's ``major.minor``, or ``missing``."""
    code = "import sys; print('%d.%d' % sys.version_info[:2])"
    return (
        f"if command -v {shlex.quote(python)} >/dev/null 2>&1;"
        f" then {shlex.quote(python)} -c {shlex.quote(code)}; else echo missing; fi"
    )


def python_problem(node: str, python: str, answer: str) -> str | None:
    """Why the node cannot run the wheelhouse, or None."""
    found = answer.strip().splitlines()[-1].strip() if answer.strip() else "missing"
    if found == "missing":
        return (
            f"node {node} has no {python} for the site agent — install Debian's python3"
            f" {python_version()} (with python3-venv) there, or set agent.python to its path"
        )
    if found != python_version():
        return (
            f"node {node} runs Python {found} but the agent's wheelhouse is for"
            f" {python_version()} (the controller's) — give the node Python {python_version()}"
            " (agent.python names it) or run hotsite from a Python matching the nodes'"
        )
    return None


def lifecycle(
    files: AgentFiles,
    wheelhouse: Wheelhouse,
    python: str,
    tls: list[tuple[str, str]] | None = None,
) -> dict[str, str]:
    """Shell commands per step; each one safe to run twice. ``tls``: (environment
    variable, node path) of each TLS file configure writes."""
    q = {
        name: shlex.quote(files.path(name))
        for name in ("venv", "wheelhouse", "hotsite.yaml", "token", "agent.pid", "agent.log")
    }
    directory = shlex.quote(files.directory)
    # Not `kill -0`: a stopped process stays a zombie until its parent reaps it.
    alive = (
        "alive() { s=$(awk '{print $3}' \"/proc/$1/stat\" 2>/dev/null);"
        ' [ -n "$s" ] && [ "$s" != Z ]; }; '
    )
    running = f"[ -f {q['agent.pid']} ] && alive $(cat {q['agent.pid']})"
    pip = f"PIP_CONFIG_FILE=/dev/null {q['venv']}/bin/pip"
    # The key names the wheelhouse in the command, so a new one means a new install.
    install = (
        f"# wheelhouse {wheelhouse.key}\n"
        f"rm -rf {q['venv']}\n"
        f"{shlex.quote(python)} -m venv {q['venv']}\n"
        f"{pip} install -q --no-index --find-links {q['wheelhouse']}"
        f" -r {q['wheelhouse']}/requirements.txt hotsite\n"
        f"{q['venv']}/bin/hotsite --help >/dev/null"
    )
    configure = (
        f"umask 077; mkdir -p {directory}/state\n"
        f'printf "%s\\n" "${PROJECT_ENV}" > {q["hotsite.yaml"]}.new\n'
        f"mv {q['hotsite.yaml']}.new {q['hotsite.yaml']}\n"
        f'printf "%s\\n" "${TOKEN_ENV}" > {q["token"]}.new\n'
        f"mv {q['token']}.new {q['token']}"
    )
    if tls:
        configure += f"\nmkdir -p {directory}/tls"
        for variable, path in tls:
            node = shlex.quote(path)
            configure += f'\nprintf "%s" "${variable}" > {node}.new\nmv {node}.new {node}'
    start = (
        f"{alive}if {running}; then exit 0; fi; cd {directory} &&"
        f" setsid sh -c 'echo $$ > agent.pid; exec sh supervise.sh'"
        f" </dev/null >>{q['agent.log']} 2>&1 &"
    )
    stop = (
        # The whole session, even if the supervisor itself was killed: its agent is left.
        f"if [ -f {q['agent.pid']} ]; then pid=$(cat {q['agent.pid']}); kill -TERM -$pid 2>/dev/null;"
        f" for i in $(seq {STOP_WAIT}); do kill -0 -$pid 2>/dev/null || break; sleep 0.1; done;"
        f" kill -KILL -$pid 2>/dev/null; for i in $(seq 20); do kill -0 -$pid 2>/dev/null ||"
        f" break; sleep 0.1; done; if kill -0 -$pid 2>/dev/null; then echo \"the agent's"
        f' processes (group $pid) did not stop" >&2; exit 1; fi; fi; rm -f {q["agent.pid"]}'
    )
    return {
        "install": install,
        "configure": configure,
        "start": start,
        "stop": stop,
        "uninstall": f"rm -rf {directory}",
    }


def check_command(files: AgentFiles) -> str:
    """The status file is fresh: the agent runs (whatever its duties are doing). When
    not, the log's last lines go to stderr: a failed check then shows why."""
    status = shlex.quote(files.status)
    log = shlex.quote(files.path("agent.log"))
    fresh = f"[ -f {status} ] && [ $(( $(date +%s) - $(stat -c %Y {status}) )) -le {CHECK_FRESH} ]"
    return f"{{ {fresh}; }} || {{ tail -n 3 {log} >&2 2>/dev/null; false; }}"


def project_text(data: dict[str, object]) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def project_digest(text: str) -> str:
    """What the fingerprint keeps of the project file: a digest of it, passwords masked."""
    return "sha256:" + hashlib.sha256(shown(text).encode()).hexdigest()[:16]
