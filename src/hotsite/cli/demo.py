"""``hotsite demo``: the whole DR story on this machine, with a report."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from hotsite.cli.app import app, console
from hotsite.demo import DEFAULT_ENTRY_PORT, DemoOptions, run_demo, stop_demo, verify_details


@app.command()
def demo(
    directory: Path | None = typer.Option(
        None, "--dir", help="Where everything goes (default: ./demo/<date-time>; must be new)."
    ),
    keep: bool = typer.Option(
        False, "--keep", help="Leave the sites, controller, entry point and agents running."
    ),
    entry_port: int = typer.Option(
        DEFAULT_ENTRY_PORT, "--entry-port", help="The entry point's port on 127.0.0.1."
    ),
    stop: Path | None = typer.Option(
        None, "--stop", help="Stop what 'hotsite demo --keep' left running in this directory."
    ),
) -> None:
    """Two local sites of the sample application, the controller, the entry point and
    the site agents, a write load through the entry point; the primary site is killed,
    the controller fails over by itself, the old primary comes back, fails back and the
    service relocates home; both sites are verified identical.

    Prints each move's RTO and RPO as the client measured them, and writes a report
    (report.html, offline, and report.json) into the demo's directory. Everything it
    started is stopped at the end and on Ctrl-C, unless --keep.
    """
    if stop is not None:
        count = stop_demo(stop.resolve())
        console.print(f"stopped {count} processes of the demo in {stop}", highlight=False)
        return
    options = DemoOptions(directory, keep, entry_port)
    began = time.monotonic()
    try:
        result = run_demo(
            options, lambda line: console.print(line, highlight=False, soft_wrap=True),
            live=console.is_terminal,
        )  # fmt: skip
    except KeyboardInterrupt:
        console.print("demo interrupted: everything it started is stopped", highlight=False)
        raise typer.Exit(130) from None
    report = _summary(result.report)
    for line in report:
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"report: {result.report} (and report.json beside it)", highlight=False)
    if keep:
        console.print(
            f"still running (entry point http://127.0.0.1:{entry_port}/): try\n"
            f"  hotsite --config {result.directory / 'hotsite.yaml'} record\n"
            f"  hotsite --config {result.directory / 'hotsite.yaml'} relocate --to dr\n"
            f"stop it all with: hotsite demo --stop {result.directory}",
            highlight=False, soft_wrap=True,
        )  # fmt: skip
    console.print(f"the demo took {time.monotonic() - began:.1f} s", highlight=False)
    if not result.verdict:
        raise typer.Exit(1)


def _summary(report: Path) -> list[str]:
    import json

    data = json.loads(report.with_suffix(".json").read_text())
    lines = []
    for move in data["moves"]:
        client = move["client"]
        rto = client["rto_seconds"]
        lines.append(
            f"{move['kind']:9} {move['from']} -> {move['to']}: RTO"
            f" {'?' if rto is None else f'{rto:.2f} s'}, RPO {client['rpo_writes']} writes"
            f" ({client['rpo_seconds']:.3f} s)"
        )
        for step in move.get("steps", []):
            lines.append(f"    +{step['after']:6.3f} s  {step['step']}  {step['detail']}")
    for verdict in data["verdicts"]:
        lines.append(f"{'ok ' if verdict['ok'] else 'NO '} {verdict['claim']}")
    lines.extend(f"    {line}" for line in verify_details(data["verify"]))
    return lines
