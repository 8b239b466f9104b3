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
        # typer >= 0.16 vendors click as typer._click: its exceptions are not click's.
        names = {cls.__name__ for cls in type(exc).__mro__}
        if "ClickException" in names:
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        if "Abort" in names:
            sys.exit(130)
        raise
