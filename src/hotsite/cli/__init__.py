"""The ``hotsite`` command. Each module adds its commands to the one typer app."""

from __future__ import annotations

import sys

import pymysql
import typer

from hotsite.cli import agent as _agent  # noqa: F401  (registers commands)
from hotsite.cli import blueprint as _blueprint  # noqa: F401  (registers commands)
from hotsite.cli import conflicts as _conflicts  # noqa: F401  (registers commands)
from hotsite.cli import demo as _demo  # noqa: F401  (registers commands)
from hotsite.cli import dr as _dr  # noqa: F401  (registers commands)
from hotsite.cli import moves as _moves  # noqa: F401  (registers commands)
from hotsite.cli import nodes as _nodes  # noqa: F401  (registers commands)
from hotsite.cli import replication as _replication  # noqa: F401  (registers commands)
from hotsite.cli import verify as _verify  # noqa: F401
from hotsite.cli.app import command, print_error
from hotsite.db import error_reason
from hotsite.errors import HotsiteError

__all__ = ["main"]


def main() -> None:
    """Entry point: one line per error, no traceback, exit status from the error."""
    try:
        # Without standalone mode click returns a command's typer.Exit code instead of
        # exiting with it.
        code = command()(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except HotsiteError as exc:
        print_error(str(exc))
        sys.exit(exc.exit_code)
    except pymysql.MySQLError as exc:
        # A query failed where no site-specific explanation was added: still one line.
        print_error(
            f"a database query failed ({error_reason(exc)})"
            " — check that the sites' servers are running, then run the command again"
        )
        sys.exit(2)
    except OSError as exc:
        # A file hotsite needs (its state directory, a journal, a key) refused: name it.
        where = f"{exc.filename}: " if exc.filename else ""
        print_error(
            f"{where}{exc.strerror or exc}"
            " — check that it exists and that hotsite may write there"
            " (state_dir in the project file moves hotsite's own files)"
        )
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except typer.Abort:
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: typer shows them in click's words
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            print_error(str(exc))
        sys.exit(exc.exit_code)
