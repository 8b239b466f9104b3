"""Node commands: nodes list/create/destroy/pool/forget-host-key, run, logs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer
from rich.table import Table

from hotsite.cli.app import app, console, err_console, project, providers_of
from hotsite.errors import ConfigError, DriverError, NodeError
from hotsite.nodes import NodeSpec, Providers, open_store, records
from hotsite.remote import Outcome, RemoteSession, history

T = TypeVar("T")

nodes_app = typer.Typer(help="Nodes: machines of the sites, from clouds, BYON pools or local.")
app.add_typer(nodes_app, name="nodes")

ACCEPT_NEW = typer.Option(
    False,
    "--accept-new-host-keys",
    help="Trust and record the host key of a node seen for the first time.",
)
JSON = typer.Option(False, "--json", help="Machine-readable output.")


def _providers(ctx: typer.Context, accept_new: bool = False) -> Providers:
    return providers_of(project(ctx), accept_new_host_keys=accept_new)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _tags(values: list[str]) -> dict[str, str]:
    tags = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise ConfigError(f"--tag {value!r} must look like key=value")
        tags[key] = val
    return tags


@nodes_app.command("list")
def list_nodes(
    ctx: typer.Context,
    site: str | None = typer.Option(None, "--site", help="Only this site's nodes."),
    as_json: bool = JSON,
) -> None:
    """The nodes hotsite holds, from the state store."""
    nodes = _providers(ctx).nodes(site=site)
    if as_json:
        rows = [
            {k: v for k, v in vars(node).items() if k != "ssh_key"} | {"ssh_key": node.ssh_key}
            for node in nodes
        ]
        console.print_json(json.dumps(rows))
        return
    table = Table("name", "site", "group", "provider", "driver id", "address", "state", "tags")
    for node in nodes:
        port = f":{node.ssh_port}" if node.ssh_port != 22 and not node.is_local else ""
        table.add_row(
            node.name,
            node.site or "",
            node.group or "",
            node.provider,
            node.driver_id,
            f"{node.address}{port}",
            node.state,
            ",".join(f"{k}={v}" for k, v in sorted(node.tags.items())),
        )
    console.print(table)


@nodes_app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Node name (a prefix when --count > 1)."),
    provider: str | None = typer.Option(
        None, "--provider", "-p", help="A nodes.providers entry (default: the only one, or local)."
    ),
    count: int = typer.Option(1, "--count", "-n", min=1),
    site: str | None = typer.Option(None, "--site"),
    group: str | None = typer.Option(None, "--group"),
    tag: list[str] = typer.Option([], "--tag", "-t", help="key=value (BYON: hosts must match)."),
    size: str | None = typer.Option(None, "--size"),
    image: str | None = typer.Option(None, "--image"),
    location: str | None = typer.Option(None, "--location"),
    wait: float = typer.Option(300, "--wait", help="Seconds to wait for SSH; 0: don't wait."),
    accept_new: bool = ACCEPT_NEW,
) -> None:
    """Create (cloud) or lease (BYON) nodes, recorded before they are used."""
    providers = _providers(ctx, accept_new)
    configured = list(providers.config.providers)
    driver = providers.driver(provider or (configured[0] if len(configured) == 1 else "local"))
    specs = NodeSpec.many(
        name,
        count,
        site=site,
        group=group,
        tags=_tags(tag),
        size=size,
        image=image,
        location=location,
    )

    async def go() -> None:
        nodes = await driver.create(specs)
        if wait:
            await driver.wait_reachable(nodes, wait)
        for node in nodes:
            where = node.address if node.is_local else f"{node.address}:{node.ssh_port}"
            console.print(f"{node.name}\t{where}\t{node.driver_id}", highlight=False)

    _run(go())


@nodes_app.command("destroy")
def destroy(
    ctx: typer.Context,
    names: list[str] = typer.Argument(..., help="Node names, site names or groups."),
    forget: bool = typer.Option(
        False,
        "--forget",
        help="Only drop the records (the machine is gone, or you will clean it yourself).",
    ),
) -> None:
    """Destroy cloud nodes / release BYON hosts (after their scrub command)."""
    providers = _providers(ctx)
    nodes = [node for name in names for node in _resolve(providers, name)]
    if forget:
        records.delete(providers.store, [node.name for node in nodes])
        for node in nodes:
            console.print(f"{node.name}\tforgotten (not destroyed)")
        return

    async def go() -> None:
        by_provider: dict[str, list[Any]] = {}
        for node in nodes:
            by_provider.setdefault(node.provider, []).append(node)
        for provider, group in by_provider.items():
            try:
                driver = providers.driver(provider)
            except DriverError as exc:
                raise DriverError(
                    exc.message,
                    f"{exc.hint}; or drop the records only with 'hotsite nodes destroy --forget'",
                ) from None
            await driver.destroy(group)
            for node in group:
                console.print(f"{node.name}\tdestroyed")

    _run(go())


def _resolve(providers: Providers, target: str) -> list[Any]:
    nodes = providers.resolve(target)
    if not nodes:
        raise NodeError(
            f"no node, site or group named {target!r} holds nodes",
            "see 'hotsite nodes list'",
        )
    return nodes


@app.command()
def run(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="A site, a group (GROUP or SITE/GROUP) or a node."),
    command: list[str] = typer.Argument(..., help="The command (after --)."),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds per node."),
    concurrency: int | None = typer.Option(
        None, "--concurrency", min=1, help="Nodes at once (default nodes.ssh.concurrency)."
    ),
    sudo: bool = typer.Option(False, "--sudo", help="Run as root through sudo -n."),
    accept_new: bool = ACCEPT_NEW,
    as_json: bool = JSON,
) -> None:
    """Run an ad-hoc command on every node of TARGET concurrently; a line per node."""
    providers = _providers(ctx, accept_new)
    nodes = [node for node in _resolve(providers, target) if node.state == "running"]
    if not nodes:
        raise NodeError(f"no running node in {target!r}", "see 'hotsite nodes list'")
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise ConfigError("no command given", "write it after --: hotsite run SITE -- uptime")
    text = " ".join(command)

    def line(o: Outcome) -> None:
        if as_json:
            return
        if o.error is not None:
            err_console.print(f"{o.node.name}\tERROR\t{o.error}", highlight=False, soft_wrap=True)
            return
        assert o.result is not None
        status = "ok" if o.result.ok else f"exit {o.result.exit_status}"
        output = (o.result.stdout.strip() or o.result.stderr.strip()).splitlines()
        shown = output[-1][:200] if output else ""
        console.print(
            f"{o.node.name}\t{status}\t{o.result.duration:.2f}s\t{shown}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )

    ssh = providers.ssh
    if concurrency is not None:
        ssh = dataclasses.replace(ssh, concurrency=concurrency)

    async def go() -> list[Outcome]:
        async with RemoteSession(
            providers.store, ssh, accept_new_host_keys=providers.accept_new_host_keys
        ) as session:
            return await session.run_all(nodes, text, timeout=timeout, sudo=sudo, on_done=line)

    started = time.monotonic()
    outcomes = _run(go())
    failed = [o for o in outcomes if not o.ok]
    if as_json:
        rows = [
            {
                "node": o.node.name,
                "exit_status": o.result.exit_status if o.result else None,
                "error": str(o.error) if o.error else None,
                "stdout": o.result.stdout if o.result else "",
                "stderr": o.result.stderr if o.result else "",
            }
            for o in outcomes
        ]
        console.print_json(json.dumps(rows))
    else:
        console.print(
            f"{len(outcomes) - len(failed)}/{len(outcomes)} nodes ok"
            f" in {time.monotonic() - started:.2f}s",
            highlight=False,
        )
    if failed:
        raise SystemExit(1)  # typer.Exit's code is dropped in standalone_mode=False


@app.command()
def logs(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A node name or a site name."),
    node: str | None = typer.Option(None, "--node", help="Only this node (within a site)."),
    step: str | None = typer.Option(None, "--step", help="Only this blueprint step."),
    limit: int = typer.Option(50, "--limit", "-n", min=1),
    as_json: bool = JSON,
) -> None:
    """Commands run on a node or a site: status, duration and output tail."""
    store = open_store(project(ctx).home)
    entries = history.query(store, node=name, step=step, limit=limit)
    if not entries or node:
        entries = history.query(store, site=name, node=node, step=step, limit=limit) or entries
    if as_json:
        console.print_json(json.dumps([e.as_dict() for e in entries]))
        return
    if not entries:
        raise NodeError(f"no commands logged for {name!r}", "names are node or site names")
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.started_at))
        status = f"exit {e.exit_status}" if e.exit_status is not None else f"error: {e.error}"
        label = f" [{e.step}]" if e.step else ""
        console.print(
            f"{when} {e.node}{label} {status} {e.duration:.2f}s $ {e.command}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        for stream in (e.stdout_tail, e.stderr_tail):
            for out in stream.rstrip("\n").splitlines()[-10:] if stream.strip() else []:
                console.print(f"    {out}", highlight=False, markup=False, soft_wrap=True)


@nodes_app.command("pool")
def pool(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="One pool (default: all BYON pools)."),
    check: bool = typer.Option(
        False,
        "--check",
        help="Log in to every host (free ones too) and report; exit 1 if any fails.",
    ),
    as_json: bool = JSON,
) -> None:
    """BYON pools: every host, its tags, and who holds it."""
    providers = _providers(ctx)
    pools = providers.config.pools()
    if name is not None:
        providers.config.provider(name)  # unknown name: one clear error
        pools = {k: v for k, v in pools.items() if k == name}
    checks: dict[str, dict[str, Any]] = {}
    if check:

        async def check_all() -> None:
            for pool_name in pools:
                driver = providers.driver(pool_name)
                checks[pool_name] = await driver.check_hosts()  # type: ignore[attr-defined]

        _run(check_all())
    rows: list[dict[str, Any]] = []
    for pool_name, settings in sorted(pools.items()):
        leases = {
            node.driver_id: node for node in records.select(providers.store, provider=pool_name)
        }
        for host in settings.hosts:
            lease = leases.get(host.host_name)
            row: dict[str, Any] = {
                "pool": pool_name,
                "host": host.host_name,
                "address": f"{host.address}:{host.port}",
                "tags": host.tags,
                "node": lease.name if lease else None,
                "site": lease.site if lease else None,
                "state": lease.state if lease else "free",
            }
            if check:
                error = checks[pool_name][host.host_name]
                row["check"] = "ok" if error is None else str(error.message)
            rows.append(row)
    if as_json:
        console.print_json(json.dumps(rows))
    else:
        columns = ["pool", "host", "address", "tags", "state", "node", "site"]
        table = Table(*columns, *(["check"] if check else []))
        for row in rows:
            tags = ",".join(f"{k}={v}" for k, v in sorted(row["tags"].items()))
            cells = [str(row["pool"]), str(row["host"]), str(row["address"]), tags]
            cells += [str(row["state"]), str(row["node"] or ""), str(row["site"] or "")]
            table.add_row(*cells, *([str(row["check"])] if check else []))
        console.print(table)
    if check and any(row["check"] != "ok" for row in rows):
        raise SystemExit(1)


@nodes_app.command("host-keys")
def host_keys(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Host keys hotsite trusts (recorded the first time each host was accepted)."""
    from hotsite.remote import hostkeys  # asyncssh only for these commands

    rows = hostkeys.listing(_providers(ctx).store)
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table("address", "port", "fingerprint", "first seen as")
    for row in rows:
        table.add_row(
            str(row["address"]), str(row["port"]), str(row["fingerprint"]), str(row["node"])
        )
    console.print(table)


@nodes_app.command("forget-host-key")
def forget_host_key(
    ctx: typer.Context,
    address: str = typer.Argument(..., help="The host's address (as in 'nodes host-keys')."),
    port: int | None = typer.Option(None, "--port", help="Only this port."),
) -> None:
    """Forget a recorded host key (after a host was reinstalled), so it can be accepted anew."""
    from hotsite.remote import hostkeys  # asyncssh only for these commands

    removed = hostkeys.forget(_providers(ctx).store, address, port)
    if not removed:
        raise NodeError(f"no host key recorded for {address}", "see 'hotsite nodes host-keys'")
    console.print(f"forgot {removed} host key(s) of {address}")
