"""The typer application and what every command shares: the project file, the console."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from hotsite import config as config_module
from hotsite.config import ProjectConfig
from hotsite.nodes import Providers, open_store
from hotsite.private import sharing_warnings

app = typer.Typer(
    name="hotsite",
    help="Keep a hot standby copy of an application site, and move traffic to it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=False)
err_console = Console(stderr=True)


def print_error(message: str) -> None:
    """``error: ...`` on stderr, one line per line of ``message``.

    Messages are data, not markup: rich would swallow a '[mariadbd]' in them.
    """
    for line in message.splitlines() or [""]:
        err_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)


def print_warning(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


@dataclass
class Context:
    config_path: Path
    _config: ProjectConfig | None = None

    @property
    def config(self) -> ProjectConfig:
        if self._config is None:
            self._config = config_module.load(self.config_path)
            for warning in sharing_warnings(self._config.path.parent, self._config.home):
                print_warning(warning)
        return self._config


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Path = typer.Option(
        Path("hotsite.yaml"), "--config", "-c", help="The project file.", envvar="HOTSITE_CONFIG"
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress to stderr."),
) -> None:
    from hotsite.logs import configure_logging

    configure_logging(verbose)
    ctx.obj = Context(config_path=config)


def project(ctx: typer.Context) -> ProjectConfig:
    obj = ctx.find_object(Context)
    assert obj is not None
    return obj.config


def providers_of(config: ProjectConfig, *, accept_new_host_keys: bool = False) -> Providers:
    """The one way commands build the node providers from the project file, so every
    command tags and finds cloud nodes under the same project name
    (``ProjectConfig.project_name``, which databases use too)."""
    return Providers(
        config.nodes,
        open_store(config.home),
        project=config.project_name,
        accept_new_host_keys=accept_new_host_keys,
    )


def command() -> Any:
    """The click command behind ``app``, with its help made readable (see ``tidy_help``)."""
    built = typer.main.get_command(app)
    tidy_help(built)
    return built


def tidy_help(cmd: Any) -> None:
    """Two things typer's rich help gets wrong for this code base, fixed in place:

    - docstrings are hard-wrapped at 100 columns, and the rich help keeps their line
      breaks, so sentences broke mid-way at a fixed column; each paragraph is joined into
      one line here and rich wraps it to the terminal (a paragraph that starts with
      ``\\b`` keeps its lines, as in click);
    - a flag takes no value, yet its type column read ``<bool>``: flags show none.
    """
    if cmd.help:
        cmd.help = _joined(cmd.help)
    if cmd.short_help:
        cmd.short_help = _joined(cmd.short_help)
    # Duck-typed: typer vendors its own copy of click, whose classes are not click's.
    # --help is made (and then cached) on first use, from a context: make it now.
    help_option = cmd.get_help_option(cmd.context_class(cmd, info_name=cmd.name))
    for param in [*cmd.params, *([help_option] if help_option else [])]:
        if getattr(param, "is_flag", False) and not getattr(param, "count", False):
            param.metavar = ""
    for sub in getattr(cmd, "commands", {}).values():
        tidy_help(sub)


def _joined(text: str) -> str:
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(
        p if p.startswith("\b") else " ".join(line.strip() for line in p.splitlines())
        for p in paragraphs
    )
