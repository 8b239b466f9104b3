"""``hotsite agent --site NAME``: the long-running process of one site."""

from __future__ import annotations

import signal
import time
from typing import Any

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hotsite.agent import SiteAgent, site_duties
from hotsite.cli.app import app, console, project
from hotsite.duty import Duty
from hotsite.errors import ConfigError


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@app.command()
def agent(
    ctx: typer.Context,
    site: str = typer.Option(..., "--site", help="The site this agent runs at."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live view."),
) -> None:
    """Run SITE's duties: every replication link that ends there (and, with a dr: section,
    the fence and the primary's lease; for a site with a blueprint, healing; bursting
    policies watching the site), restarting a failed one with backoff.

    One process per site: each link captures from its source over the network, journals
    here and applies here. Ctrl-C or SIGTERM stop it cleanly; after kill -9 a restart
    goes on with nothing lost and nothing twice. 'hotsite status' shows what it does.
    """
    config = project(ctx)
    config.site(site)
    duties: list[Duty] = site_duties(config, site)
    if not duties:
        raise ConfigError(
            f"site {site!r} has nothing for an agent to do: no replication link ends there"
            " and the project has no dr: section",
            "add a link under replication: (from: SOURCE, to: " + site + ")",
        )
    site_agent = SiteAgent(config, site, duties)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if quiet or not console.is_terminal:
            last = [0.0]

            def log_line(a: SiteAgent) -> None:
                if not quiet and time.monotonic() - last[0] > 5:
                    for line in _lines(a.view()):
                        console.print(line, highlight=False)
                    last[0] = time.monotonic()

            site_agent.run(log_line)
        else:
            with Live(console=console, refresh_per_second=4) as live:
                site_agent.run(lambda a: live.update(_table(site, a.view())))
    except KeyboardInterrupt:
        console.print(f"agent of {site} stopped; the next 'hotsite agent' resumes every link")


def _summary(view: dict[str, Any]) -> tuple[str, str, str, str]:
    status = view["status"]
    apply = status.get("apply", {})
    lag = apply.get("lag_seconds")
    conflicts = sum((apply.get("conflicts") or {}).values())
    return (
        f"{apply.get('rate', 0):.0f} tx/s" if apply else "",
        "" if lag is None else f"{float(lag):.2f}s",
        str(conflicts) if "conflicts" in apply else "",
        str(apply.get("parked", "")),
    )


def _table(site: str, views: list[dict[str, Any]]) -> Table:
    table = Table("duty", "state", "apply", "lag", "conflicts", "parked", title=f"agent of {site}")
    for view in views:
        state = Text("running", style="green") if view["running"] else Text("waiting", "yellow")
        table.add_row(view["duty"], state, *_summary(view))
        if view["error"]:
            table.add_row("", Text(f"restart {view['restarts']}: {view['error']}", style="red"))
    return table


def _lines(views: list[dict[str, Any]]) -> list[str]:
    lines = []
    for view in views:
        state = "running" if view["running"] else f"waiting ({view['error']})"
        if "apply" not in view["status"]:  # healing, bursting: their own words
            shown = view["status"].get("state") or view["status"].get("burst") or ""
            lines.append(f"{view['duty']}: {state} {shown}".rstrip())
            continue
        rate, lag, conflicts, _parked = _summary(view)
        lines.append(f"{view['duty']}: {state} {rate} lag {lag or '?'} conflicts {conflicts or 0}")
    return lines
