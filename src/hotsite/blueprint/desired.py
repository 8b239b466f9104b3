"""The desired state of a site: its nodes, and every service's steps rendered per node.

Each rendered step carries a fingerprint (sha256 of what would run: the command, its
non-secret environment, the uploaded files' content). ``plan`` compares fingerprints
with the recorded ones; a changed step re-runs, and so do the steps after it.
Secrets take part in the fingerprint only by name: their values never leave memory.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotsite.blueprint.agent_service import AgentParts, agent_parts
from hotsite.blueprint.model import DOWN_STEPS, UP_STEPS, Blueprint, Service
from hotsite.blueprint.render import NodeView, RenderError, Values, render, render_value
from hotsite.nodes.base import NodeSpec
from hotsite.shellsafe import removable_dir
from hotsite.traffic.haproxy import Backend, HAProxySite, lifecycle, render_config

PENDING = "(known after up)"


@dataclass(frozen=True)
class DesiredNode:
    name: str
    group: str
    index: int
    driver: str
    spec: NodeSpec


@dataclass
class RenderedStep:
    name: str
    command: str | None = None  # shell text; None for the upload step
    uploads: list[tuple[Path, str]] = field(default_factory=list)
    files: list[tuple[str, str, str]] = field(default_factory=list)  # dest, content, mode
    timeout: float = 600
    fingerprint: str = ""


@dataclass
class RenderedCheck:
    kind: str  # command, tcp, http
    target: str
    status: int
    timeout: float
    interval: float


@dataclass
class Placement:
    """One service on one node."""

    service: str
    node: str
    group: str
    steps: dict[str, RenderedStep]
    env: dict[str, str]  # with secret values: only ever passed to the transport
    env_shown: dict[str, str]  # secrets replaced by markers: fingerprints and records
    check: RenderedCheck | None
    depends_on: list[str]
    has_reload: bool
    lb: HAProxySite | None = None  # the load balancer this placement runs, if any
    agent: bool = False  # the built-in site agent (agent_service.py)

    def teardown(self) -> dict[str, Any]:
        """What `down` needs later, without any secret value."""
        return {step: self.steps[step].command for step in DOWN_STEPS if step in self.steps} | {
            "env": self.env_shown
        }


@dataclass
class Desired:
    site: str
    blueprint: Blueprint
    values: Values
    nodes: dict[str, DesiredNode]
    placements: dict[tuple[str, str], Placement]
    outputs: dict[str, Any]


def node_name(site: str, group: str, index: int) -> str:
    return f"{site}-{group}-{index}"


def group_size(blueprint: Blueprint, group: str, values: Values) -> int:
    """The blueprint's count for the group (``hotsite scale`` may have set another)."""
    spec = blueprint.nodes[group]
    where = blueprint.where("nodes", group, "count")
    text = render(str(spec.count), {"inputs": values.inputs, "site": values.site}, where)
    try:
        size = int(text)
    except ValueError:
        raise RenderError(f"{where}: expected a whole number of nodes, got {text!r}") from None
    if not spec.min <= size <= spec.max:
        raise RenderError(f"{where}: expected {spec.min} to {spec.max} nodes, got {size}")
    return size


def replacement_name(name: str) -> str:
    """The name of the node that replaces ``name`` in its slot: primary-web-1 →
    primary-web-1r1 → primary-web-1r2 (the slot's index, and so its values, stay)."""
    base, sep, generation = name.rpartition("r")
    if sep and generation.isdigit() and base[-1:].isdigit():
        return f"{base}r{int(generation) + 1}"
    return f"{name}r1"


def desired_nodes(
    blueprint: Blueprint,
    site: str,
    default_driver: str,
    values: Values,
    counts: dict[str, int] | None = None,
    slots: dict[tuple[str, int], str] | None = None,
) -> dict[str, DesiredNode]:
    """``counts``: group sizes set by ``scale``; ``slots``: replacement nodes by slot."""
    nodes: dict[str, DesiredNode] = {}
    for group, spec in blueprint.nodes.items():
        size = (counts or {}).get(group)
        if size is None:
            size = group_size(blueprint, group, values)
        for index in range(size):
            name = (slots or {}).get((group, index)) or node_name(site, group, index)
            nodes[name] = DesiredNode(
                name=name,
                group=group,
                index=index,
                driver=spec.driver or default_driver,
                spec=NodeSpec(
                    name=name,
                    size=spec.size,
                    image=spec.image,
                    location=spec.location,
                    # Tags select hosts (a BYON pool matches them all), so only the
                    # blueprint's; the site and group travel in their own fields.
                    tags=dict(spec.tags),
                    site=site,
                    group=group,
                ),
            )
    return nodes


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def tree_digest(path: Path) -> str:
    """Content of a file or directory tree (names, modes, bytes). Cached by the files'
    sizes and times: every node of a group uploads the same tree, and one command
    renders the site several times."""
    paths = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    signature = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    return _content_digest(path, signature)


@functools.lru_cache(maxsize=256)
def _content_digest(path: Path, signature: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _, _ in signature:
        item = Path(name)
        digest.update(str(item.relative_to(path) if item != path else item.name).encode())
        digest.update(oct(item.stat().st_mode & 0o777).encode())
        digest.update(item.read_bytes())
    return digest.hexdigest()[:16]


def _port(text: str, where: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise RenderError(f"{where}: expected a port number, got {text!r}")
    return int(text)


def _haproxy_site(
    service: Service, name: str, values: Values, ctx: dict[str, Any], where: str
) -> HAProxySite:
    spec = service.haproxy
    assert spec is not None
    backend_group = values.service_groups[spec.backends]
    port = _port(render(str(spec.backend_port), ctx, f"{where}.backend_port"), where)
    backends = tuple(
        Backend(name=view.name, address=view.address, port=port)
        for view in values.nodes.get(backend_group, [])
    )
    admin = spec.admin_port
    directory = render(spec.dir, ctx, f"{where}.dir")
    try:
        removable_dir(directory)  # `down` removes it with rm -rf
    except ValueError as exc:
        raise RenderError(f"{where}.dir: refused: {exc}") from None
    return HAProxySite(
        directory=directory,
        frontend_port=_port(render(str(spec.port), ctx, f"{where}.port"), where),
        backends=backends,
        health_path=spec.health,
        admin_port=_port(render(str(admin), ctx, f"{where}.admin_port"), where) if admin else None,
        name=spec.backends,
    )


def _agent(blueprint: Blueprint, name: str, service: Service, values: Values) -> AgentParts:
    """The built-in agent for its node, with the site's database as its node sees it."""
    spec, setup = service.agent, values.agent
    assert spec is not None and setup is not None
    where = blueprint.where("services", name)
    if len(values.nodes.get(service.group, [])) != 1:
        raise RenderError(
            f"{where}.group: the site's agent runs on one node, but group {service.group!r}"
            f" has {len(values.nodes.get(service.group, []))}; put it on a group of count 1"
        )
    try:
        removable_dir(spec.dir)  # `down` removes it with rm -rf
    except ValueError as exc:
        raise RenderError(f"{where}.agent.dir: refused: {exc}") from None
    # The output first: the file's value for a blueprint site may be the one recorded by
    # the last `up`, before a node was replaced.
    database = setup.config.sites[setup.site].database
    if "database" in blueprint.outputs:
        ctx = values.context(None, allow_secrets=False)
        where_output = blueprint.where("outputs", "database")
        database = str(render_value(blueprint.outputs["database"], ctx, where_output))
    elif database is None:
        raise RenderError(
            f"{where}: the agent needs its site's database: give the blueprint a"
            f" 'database' output, or sites.{setup.site}.database in the project file"
        )
    parts = agent_parts(setup, spec, None if PENDING in database else database)
    values.hidden |= parts.hidden
    return parts


def place(
    blueprint: Blueprint, name: str, service: Service, view: NodeView, values: Values
) -> Placement:
    """Render one service for one node."""
    ctx = values.context(view, allow_secrets=False)
    env_ctx = values.context(view, allow_secrets=True)
    marker_ctx = {**env_ctx, "secrets": {k: f"<secret:{k}>" for k in values.secrets}}
    where = blueprint.where("services", name)
    env = {k: render(v, env_ctx, f"{where}.env.{k}") for k, v in service.env.items()}
    env_shown = {k: render(v, marker_ctx, f"{where}.env.{k}") for k, v in service.env.items()}

    commands: dict[str, tuple[str, float]] = {}
    files = [
        (
            render(f.dest, ctx, f"{where}.files.dest"),
            render(f.content, ctx, f"{where}.files.content"),
            f.mode,
        )
        for f in service.files
    ]
    check = service.check
    rendered_check: RenderedCheck | None = None
    lb: HAProxySite | None = None
    digests: dict[Path, str] = {}
    if service.agent:
        agent = _agent(blueprint, name, service, values)
        files += agent.files
        commands = {step: (cmd, 900.0) for step, cmd in agent.commands.items()}
        rendered_check = RenderedCheck("command", agent.check, 0, 60, 0.5)
        env, env_shown, digests = agent.env, agent.env_shown, agent.digests
    if service.haproxy:
        lb = _haproxy_site(service, name, values, ctx, f"{where}.haproxy")
        files.append((lb.config_path, render_config(lb), "0644"))
        commands = {step: (cmd, 120.0) for step, cmd in lifecycle(lb).items()}
        rendered_check = RenderedCheck("tcp", str(lb.frontend_port), 0, 30, 0.2)
    for step_name in (*UP_STEPS, "reload", *DOWN_STEPS):
        step = service.step(step_name)
        if step is None:
            continue
        text = (blueprint.base_dir / step.script).read_text() if step.script else step.run
        assert text is not None
        commands[step_name] = (render(text, ctx, f"{where}.{step_name}"), step.timeout)

    steps: dict[str, RenderedStep] = {}
    uploads = [
        (blueprint.base_dir / u.src, render(u.dest, ctx, f"{where}.uploads.dest"))
        for u in service.uploads
    ] + (agent.uploads if service.agent else [])
    for index, (src, dest) in enumerate(uploads):
        if src.is_dir():  # the upload replaces the tree: `rm -rf DEST` first
            try:
                removable_dir(dest)
            except ValueError as exc:
                raise RenderError(f"{where}.uploads.{index}.dest: refused: {exc}") from None
    if uploads or files:
        steps["upload"] = RenderedStep(
            name="upload",
            uploads=uploads,
            files=files,
            fingerprint=_digest(
                [[digests.get(src) or tree_digest(src), dest] for src, dest in uploads]
                + [list(f) for f in files]
            ),
        )
    for step_name, (command, timeout) in commands.items():
        steps[step_name] = RenderedStep(
            name=step_name,
            command=command,
            timeout=timeout,
            fingerprint=_digest([command, env_shown]),
        )

    if check is not None:
        kind = next(k for k in ("command", "tcp", "http") if getattr(check, k) is not None)
        target = render(str(getattr(check, kind)), ctx, f"{where}.check.{kind}")
        rendered_check = RenderedCheck(kind, target, check.status, check.timeout, check.interval)
    return Placement(
        service=name,
        node=view.name,
        group=service.group,
        steps=steps,
        env=env,
        env_shown=env_shown,
        check=rendered_check,
        depends_on=list(service.depends_on),
        has_reload="reload" in steps,
        lb=lb if service.haproxy else None,
        agent=service.agent is not None,
    )


def build(
    blueprint: Blueprint,
    site: str,
    values: Values,
    nodes: dict[str, DesiredNode],
    addresses: dict[str, str],
) -> Desired:
    """Render everything; nodes without an address yet show as ``(known after up)``."""
    values.nodes = {group: [] for group in blueprint.nodes}
    for node in sorted(nodes.values(), key=lambda n: (n.group, n.index)):
        values.nodes[node.group].append(
            NodeView(node.name, node.group, node.index, addresses.get(node.name, PENDING))
        )
    values.service_groups = {name: s.group for name, s in blueprint.services.items()}
    placements: dict[tuple[str, str], Placement] = {}
    for name, service in blueprint.services.items():
        if service.agent and values.agent is None:
            continue  # the project gives this site's agent nothing to do: none is placed
        for view in values.nodes[service.group]:
            placements[(view.name, name)] = place(blueprint, name, service, view, values)
    ctx = values.context(None, allow_secrets=False)
    outputs = {
        key: render_value(value, ctx, blueprint.where("outputs", key))
        for key, value in blueprint.outputs.items()
    }
    return Desired(site, blueprint, values, nodes, placements, outputs)


def environment_secrets_marker(env: dict[str, str], secrets: dict[str, str]) -> dict[str, str]:
    """Fill ``<secret:name>`` markers of a recorded environment from the current secrets."""
    filled = {}
    for key, value in env.items():
        for name, secret in secrets.items():
            value = value.replace(f"<secret:{name}>", secret)
        filled[key] = value
    return filled
