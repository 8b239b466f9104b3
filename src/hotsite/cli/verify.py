"""``hotsite verify``: compare the sites of a replication link; ``--repair`` fixes rows."""

from __future__ import annotations

import json
import math
import sys

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from hotsite.cli.app import app, console, err_console, project
from hotsite.config import LinkConfig, ProjectConfig
from hotsite.errors import ConfigError
from hotsite.replication import (
    IDENTICAL,
    TableResult,
    VerifyOptions,
    VerifyProgress,
    VerifyReport,
    key_text,
    verify_link,
)


@app.command()
def verify(
    ctx: typer.Context,
    link_name: str | None = typer.Option(
        None, "--link", help="The link by name, e.g. primary-to-dr (default: the only one)."
    ),
    source: str | None = typer.Option(
        None, "--from", help="The site whose rows are right (default: the link's source)."
    ),
    target: str | None = typer.Option(None, "--to", help="The other site of the link."),
    tables: list[str] = typer.Option(
        [],
        "--tables",
        "-t",
        help="Only these tables: 'app.*', 'app.orders' (repeat or comma-separate).",
    ),
    repair: bool = typer.Option(
        False,
        "--repair",
        help="Fix the differing rows: copy them from the --from site to the other.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    wait_timeout: float = typer.Option(
        30.0, "--wait-timeout", help="Seconds to wait for the target to reach a source position."
    ),
    chunk_time: float = typer.Option(
        0.25, "--chunk-time", help="Target duration of one chunk query, in seconds."
    ),
    max_rows: int = typer.Option(
        1000, "--max-rows", help="Differing rows listed per table (all are counted)."
    ),
) -> None:
    """Prove both sites of a link hold the same rows; list (and --repair) those that differ.

    Exit status: 0 identical, 1 differences found, 2 errors or rows that could not be
    compared at a common replication position.
    """
    _check_numbers(wait_timeout, chunk_time, max_rows)
    config = project(ctx)
    link, authority = _pick_link(config, link_name, source, target)
    options = VerifyOptions(
        tables=[p.strip() for item in tables for p in item.split(",") if p.strip()],
        repair=repair,
        authority=authority,
        wait_timeout=wait_timeout,
        chunk_seconds=chunk_time,
        detail_limit=max_rows,
    )
    show = not quiet and err_console.is_terminal
    with _Bar(show) as bar:
        report = verify_link(config, link, options, bar)
    if as_json:
        sys.stdout.write(json.dumps(report.as_json(), default=str) + "\n")
    else:
        _print_report(report)
    raise typer.Exit(report.exit_code)


def _check_numbers(wait_timeout: float, chunk_time: float, max_rows: int) -> None:
    """One line for a value that cannot work, before any server is contacted."""
    if not math.isfinite(wait_timeout) or wait_timeout < 0:
        raise ConfigError(
            f"--wait-timeout {wait_timeout:g} must be 0 or more seconds",
            "0 compares only if the target is already at the source's position",
        )
    if not math.isfinite(chunk_time) or chunk_time <= 0:
        raise ConfigError(
            f"--chunk-time {chunk_time:g} must be more than 0 seconds", "the default is 0.25"
        )
    if max_rows < 1:
        raise ConfigError(
            f"--max-rows {max_rows} must be 1 or more", "it bounds the rows listed; all are counted"
        )


def _pick_link(
    config: ProjectConfig, name: str | None, source: str | None, target: str | None
) -> tuple[LinkConfig, str | None]:
    """The link between the sites; ``--from`` may name either end (it picks the authority)."""
    if name is not None:
        named = [link for link in config.replication if link.name == name]
        if not named:
            known = ", ".join(link.name for link in config.replication) or "none"
            raise ConfigError(f"no replication link named {name!r}", f"links: {known}")
        return named[0], source
    # Links in both directions: the one from the authority, as named, comes first.
    for link in config.replication:
        if source and link.source == source and target in (None, link.target):
            return link, source
    for link in config.replication:
        if source and link.target == source and target in (None, link.source):
            return link, source  # the link runs the other way: --from names the authority
    link = config.link(source, target)
    return link, source


class _Bar(VerifyProgress):
    """A live bar on stderr: rows of the current table, tables done, rows/s."""

    def __init__(self, show: bool) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "rows  {task.fields[rate]:>10}  chunks {task.fields[chunks]}"
                "  tables {task.fields[tables]}"
            ),
            TimeElapsedColumn(),
            console=err_console,
            disable=not show,
            transient=True,
        )
        self.task: TaskID | None = None
        self.done_tables = 0
        self.chunks = 0
        self.total_tables = 0
        self.estimates: dict[str, int] = {}

    def __enter__(self) -> _Bar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def start(self, tables: list[tuple[str, int]]) -> None:
        self.estimates = dict(tables)
        self.total_tables = len(tables)
        total = sum(self.estimates.values()) or None
        self.task = self.progress.add_task(
            "verify", total=total, rate="", chunks=0, tables=f"0/{self.total_tables}"
        )

    def rows(self, table: str, rows: int) -> None:
        if self.task is None:
            return
        self.progress.update(self.task, advance=rows, description=table)
        task = self.progress.tasks[0]
        speed = task.speed or 0.0
        self.chunks += 1
        self.progress.update(self.task, rate=f"{speed:,.0f}/s", chunks=self.chunks)

    def table_done(self, result: TableResult) -> None:
        self.done_tables += 1
        if self.task is not None:
            self.progress.update(self.task, tables=f"{self.done_tables}/{self.total_tables}")


def _print_report(report: VerifyReport) -> None:
    table = Table(title=f"verify {report.source} → {report.target}")
    # Table names are never cut: they are what the user greps for and repairs.
    table.add_column("table", no_wrap=True, overflow="fold")
    for name in ("status", "rows", "chunks", "missing", "extra", "different", "repaired", "time"):
        table.add_column(name, no_wrap=name != "status")
    for t in report.tables:
        style = "green" if t.status == IDENTICAL else "red"
        table.add_row(
            Text(t.table),
            Text(t.status + (f" ({t.unsettled} unsettled)" if t.unsettled else ""), style=style),
            f"{t.rows:,}",
            str(t.chunks),
            str(t.missing),
            str(t.extra),
            str(t.different),
            str(t.repaired) if report.repair else "-",
            f"{t.seconds:.2f}s",
        )
    # Off a terminal (cron, a pipe) rich would squeeze the table into 80 columns; print it
    # at its natural width instead (a console never prints wider than its own width).
    out = console
    if not console.is_terminal:
        natural = console.measure(table, options=console.options.update_width(10_000)).maximum
        out = Console(file=console.file, width=max(console.width, natural), color_system=None)
    out.print(table)
    for t in report.tables:
        for line in t.schema:
            _line(f"{t.table}: schema: {line}")
        for diff in sorted(t.diffs, key=lambda d: (d.kind, key_text(d.key))):
            columns = f" ({', '.join(diff.columns)})" if diff.columns else ""
            _line(f"{t.table}: {diff.kind} on target: {key_text(diff.key)}{columns}")
        shown = len(t.diffs)
        if t.differences > shown:
            _line(f"{t.table}: … and {t.differences - shown} more rows")
    _line(_summary(report))


def _summary(report: VerifyReport) -> str:
    """The verdict first, with what differs (rows that differ, not rows read), then the
    work done."""
    rate = report.rows / report.seconds if report.seconds else 0.0
    verdict = {0: "identical", 1: "differences found", 2: "incomplete"}[report.exit_code]
    done = (
        f"{report.rows:,} rows in {len(report.tables)} tables verified in"
        f" {report.seconds:.2f}s ({rate:,.0f} rows/s)"
    )
    found = ""
    if report.differing_tables:
        found = (
            f"{report.differing_rows:,} rows differ, in {report.differing_tables} of"
            f" {len(report.tables)} tables; "
        )
    repaired = sum(t.repaired for t in report.tables)
    return f"{verdict}: {found}{done}" + (f"; {repaired:,} rows repaired" if report.repair else "")


def _line(text: str) -> None:
    # One line each, whatever the width: these are data (keys may hold '[...]').
    console.print(text, highlight=False, markup=False, soft_wrap=True)
