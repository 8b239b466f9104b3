"""One error hierarchy. Every user-facing error says what is wrong and how to fix it.

The CLI prints ``str(error)`` as one line (``ConfigErrors``: one line per problem) and
exits with ``error.exit_code``; nothing below the CLI prints or exits. ``recoverable`` errors (a server restarting, a link
down) are retried by long-running loops after ``retry_after`` seconds; the others stop
the command, because retrying cannot fix them.
"""

from __future__ import annotations


def listed(names: list[str], most: int = 5) -> str:
    """Names for a one-line message: the first ``most``, then how many more."""
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


class HotsiteError(Exception):
    """Base of every error hotsite reports to its user."""

    exit_code = 2
    recoverable = False

    def __init__(self, message: str, hint: str | None = None, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class ConfigError(HotsiteError):
    """The project file or a command-line value is invalid."""


class ConfigErrors(ConfigError):
    """Several problems in one file, reported at once: one line each, in file order.

    ``str()`` has one problem per line; the CLI prints each line as its own error.
    """

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = [message for _, message in sorted(problems, key=lambda p: p[0])]
        super().__init__("\n".join(self.problems))


class DatabaseError(HotsiteError):
    """A database refused us or could not be reached.

    ``code`` is the server's (or the client library's) error number where there was
    one: a caller that retries some of them (a session killed by a fencer) reads it."""

    code: int | None = None


class DatabaseUnavailable(DatabaseError):
    """The server is down or restarting: worth retrying."""

    recoverable = True


class SourceSettingsError(DatabaseError):
    """The source database is not set up for change capture."""


class StatementLoggedError(SourceSettingsError):
    """A replicated table was changed by a statement-logged event (no row images)."""


class UnsupportedEventError(HotsiteError):
    """A source event whose effect cannot be replicated exactly; the link stops at it."""


class DdlStoppedError(HotsiteError):
    """A DDL statement that cannot be replicated as it is; the link stops at it."""


class PositionPurgedError(DatabaseError):
    """The position to resume from is no longer in the source's binlog."""


class SchemaError(HotsiteError):
    """A table cannot be replicated as it is (no primary key, unknown type...)."""


class SnapshotRefused(HotsiteError):
    """A snapshot would overwrite data that did not come from its link."""


class ApplyError(HotsiteError):
    """The target refused a replicated change."""


class JournalError(HotsiteError):
    """The journal is missing, corrupt or belongs to another link."""


class StateError(HotsiteError):
    """hotsite's own files (the state directory, locks, status, journals) cannot be
    written: a read-only or full file system, missing permissions."""


class LockedError(HotsiteError):
    """Another hotsite process holds the lock this command needs."""


class NodeError(HotsiteError):
    """A node could not be created, allocated, reached or released."""


class DriverError(NodeError):
    """An unknown driver or provider, missing credentials, or a provider API refusal."""


class PoolExhaustedError(NodeError):
    """A BYON pool has no free host matching the requested tags."""


class RemoteError(NodeError):
    """A command or file transfer on a node failed to run (not a non-zero exit)."""


class UnreachableError(RemoteError):
    """The node did not answer in time: worth retrying."""

    recoverable = True


class AuthenticationError(RemoteError):
    """The node refused our key."""


class HostKeyError(RemoteError):
    """The node's host key is unknown (and not accepted) or changed."""


class NotCaughtUpError(HotsiteError):
    """The target did not reach the source position a comparison needs."""
