"""The ``hotsite`` command. Each module adds its commands to the one typer app."""

from __future__ import annotations

import sys

from hotsite.cli import blueprint as _blueprint  # noqa: F401  (registers commands)
from hotsite.cli import nodes as _nodes  # noqa: F401  (registers commands)
from hotsite.cli import replication as _replication  # noqa: F401  (registers commands)
from hotsite.cli.app import app, err_console
from hotsite.errors import HotsiteError


def main() -> None:
    """Entry point: one line per error, no traceback, exit status from the error."""
    try:
        app(standalone_mode=False)
    except HotsiteError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click's own usage errors
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise
