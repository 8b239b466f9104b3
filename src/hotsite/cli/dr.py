"""Commands of the control plane: the controller, fencing and promoting a site."""

from __future__ import annotations

import asyncio
import json
import time

import typer

from hotsite.cli.app import app, console, print_warning, project
from hotsite.dr.controller import ControllerState, serve, server_context
from hotsite.dr.project import (
    control_tls,
    controller_listen,
    controller_url,
    dr_section,
    open_records,
    site_fence,
)
from hotsite.dr.token import load_token
from hotsite.errors import ConfigError, listed


@app.command()
def controller(ctx: typer.Context) -> None:
    """Run the controller: the record of which site is primary, and the primary's lease.

    Agents reach it over HTTP (TLS with control_tls) with the project token. It makes
    the record from dr.primary the first time it starts. Stops on Ctrl-C or SIGTERM.
    """
    config = project(ctx)
    dr = dr_section(config)
    token = load_token(dr)
    records = open_records(config)
    record = records.initialise(dr.primary)
    host, port = controller_listen(config)
    state = ControllerState(records, token, dr.lease, frozenset(config.sites))

    def ready() -> None:
        move = f", move {record.move.id} in flight" if record.move else ""
        console.print(
            f"controller listening on {controller_url(config)}: primary {record.primary},"
            f" epoch {record.epoch}{move}",
            highlight=False,
        )

    asyncio.run(serve(state, host, port, server_context(control_tls(config)), ready))


@app.command()
def fence(
    ctx: typer.Context,
    site: str = typer.Argument(..., help="The site whose database to fence."),
) -> None:
    """Make a site's database read-only and kill its writer sessions, persistently.

    The fence outlives restarts of the server (the site's agent sets it again) until
    'hotsite promote SITE --force' or a failback.
    """
    config = project(ctx)
    config.site(site)
    state = site_fence(config, site).fence("manual", None, "hotsite fence")
    _warn_bypass(site, state.bypass)
    console.print(f"site {site}: fenced (read-only, {state.killed} sessions killed)")


@app.command()
def promote(
    ctx: typer.Context,
    site: str = typer.Argument(..., help="The site whose database to make writable."),
    force: bool = typer.Option(False, "--force", help="Lift the fence (required)."),
    as_json: bool = typer.Option(False, "--json", help="Print the fence state as JSON."),
) -> None:
    """Lift a site's fence: its database writable again. Only with --force: nothing checks
    that the other site is not writable too (failback does)."""
    config = project(ctx)
    config.site(site)
    if not force:
        raise ConfigError(
            f"promote would make site {site!r} writable without checking the other sites",
            f"run 'hotsite promote {site} --force' if you are sure no other site is primary",
        )
    dr = config.dr
    if dr is not None:
        record = open_records(config).read()
        if record is not None and record.primary != site:
            print_warning(
                f"the record names {record.primary} as primary (epoch {record.epoch});"
                f" {site} is now writable too"
            )
    state = site_fence(config, site).unfence()
    if as_json:
        console.print_json(json.dumps(state.as_dict()))
    else:
        console.print(f"site {site}: writable (fence lifted at {time.strftime('%H:%M:%S')})")


def _warn_bypass(site: str, accounts: tuple[str, ...]) -> None:
    if accounts == ("?",):
        print_warning(
            f"site {site}: cannot list the accounts that write through read_only"
            " (no SELECT on mysql.user); see docs/dr.md#fencing"
        )
    elif accounts:
        print_warning(
            f"site {site}: accounts {listed(list(accounts))} can still write (READ_ONLY ADMIN or ALL"
            " PRIVILEGES); keep the application off them (docs/dr.md#fencing)"
        )
