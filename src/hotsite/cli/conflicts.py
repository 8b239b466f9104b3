"""``hotsite conflicts``: the conflict log of each site, and settling parked ones."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from hotsite.cli.app import app, console, project
from hotsite.config import ProjectConfig
from hotsite.db import connect
from hotsite.errors import ConfigError
from hotsite.replication import (
    Conflict,
    conflicts_logged,
    get_conflict,
    list_conflicts,
    resolve_conflict,
)

conflicts_app = typer.Typer(help="Conflicts between sites that both take writes.")
app.add_typer(conflicts_app, name="conflicts")


def _sites(config: ProjectConfig, site: str | None) -> list[str]:
    if site is not None:
        config.site(site)
        return [site]
    return sorted(
        {link.target for link in config.replication if config.routes.two_way(link.target)}
    )


def _read(config: ProjectConfig, site: str, fn: Any, missing: Any) -> Any:
    """``fn(cursor)`` on the site's database; ``missing`` where it has no conflict log yet
    (a read changes nothing on the site)."""
    conn = connect(config.site(site).database_url, site)
    try:
        with conn.cursor() as cur:
            return fn(cur) if conflicts_logged(cur) else missing
    finally:
        conn.close()


def _parse_id(ref: str) -> tuple[str, int]:
    site, _, number = ref.rpartition(":")
    if not site or not number.isdigit():
        raise ConfigError(
            f"conflict id {ref!r} is not SITE:NUMBER", "copy it from 'hotsite conflicts list'"
        )
    return site, int(number)


@conflicts_app.command("list")
def list_command(
    ctx: typer.Context,
    site: str | None = typer.Option(None, "--site", help="Only this site's log."),
    table: str | None = typer.Option(None, "--table", help="Only this table (schema.table)."),
    parked: bool = typer.Option(False, "--parked", help="Only conflicts waiting for a decision."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Conflicts seen at each site: table, key, the policy's decision, and status."""
    config = project(ctx)
    found: list[Conflict] = []
    for name in _sites(config, site):
        found += _read(
            config,
            name,
            lambda cur: list_conflicts(
                cur, config.project_name, table, "parked" if parked else None
            ),
            [],
        )
    if as_json:
        console.print_json(json.dumps([c.as_dict() for c in found], default=str))
        return
    view = Table("id", "seen", "table", "key", "kind", "from", "policy", "decision", "status")
    for c in found:
        view.add_row(
            c.ref, _when(c.seen_at), c.table, Text(_key(c.key)), c.kind, c.origin, c.policy,
            c.decision, Text(c.status, style="yellow" if c.status == "parked" else ""),
        )  # fmt: skip
    console.print(view)


@conflicts_app.command("show")
def show_command(ctx: typer.Context, conflict_id: str = typer.Argument(..., metavar="ID")) -> None:
    """One conflict whole: both row images, the incoming change, the decision."""
    config = project(ctx)
    site, number = _parse_id(conflict_id)
    config.site(site)
    found = _read(config, site, lambda cur: get_conflict(cur, config.project_name, number), None)
    if found is None:
        raise ConfigError(f"no conflict {conflict_id}", "list them with 'hotsite conflicts list'")
    console.print_json(json.dumps(found.as_dict(), default=str))


@conflicts_app.command("resolve")
def resolve_command(
    ctx: typer.Context,
    conflict_id: str = typer.Argument(..., metavar="ID"),
    take: str = typer.Option(..., "--take", help="source (the incoming change) or target."),
) -> None:
    """Settle a parked conflict: the chosen row is written so that every site takes it."""
    if take not in ("source", "target"):
        raise ConfigError(f"--take {take!r}: expected source or target")
    config = project(ctx)
    site, number = _parse_id(conflict_id)
    config.site(site)
    conn = connect(config.site(site).database_url, site, autocommit=False)
    try:
        with conn.cursor() as cur:
            logged = conflicts_logged(cur)
        if not logged:
            raise ConfigError(
                f"no conflict {conflict_id}", "list them with 'hotsite conflicts list'"
            )
        conflict = resolve_conflict(conn, config.project_name, site, number, take)
    finally:
        conn.close()
    console.print(
        f"conflict {conflict.ref} on {conflict.table} {_key(conflict.key)}: took the {take}'s"
        " row; replication carries it to every site"
    )


def _key(key: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in key.items())


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")
