"""How a command with environment, directory and sudo becomes one shell invocation.

A plain command is sent as it is: the node's login shell runs it with no wrapper, so
``true`` costs one process on the node, not four (this matters for fan-out to many
nodes). Wrapped commands are run by the login shell too (``$SHELL``), so a command
behaves the same with or without env/cwd/timeout. It is assumed to be POSIX (sh, bash,
dash, zsh).

Environment values are often secrets (passwords, tokens). They are *not* put on the
command line, where ``ps`` on the node would show them, nor in SSH ``env`` requests,
which sshd refuses unless ``AcceptEnv`` lists them: they are sent on standard input as
``export`` lines, which a small wrapper ``eval``s before running the command. The
command itself then gets an empty standard input.
"""

from __future__ import annotations

import shlex

from hotsite.shellsafe import SHELL_NAME

# ``$(cat)`` reads the export lines up to EOF; then the command runs in a fresh shell
# (the login shell, as a plain command does) so its own syntax errors are its own.
# The input ends with a marker: if the client dies while sending it, sshd still closes
# stdin (EOF), and without the check the command would run without its environment
# (a service started with no DB_HOST...) after the client is gone.
_END = "#hotsite-input-end"
_WRAPPER = (
    f'i=$(cat); case "$i" in *"{_END}") ;; *) echo "hotsite: input cut short,'
    ' command not run" >&2; exit 255;; esac; eval "$i" && exec "${SHELL:-/bin/sh}" -c "$0"'
)


def wrap(
    command: str, *, env: dict[str, str] | None, cwd: str | None, sudo: bool
) -> tuple[str, str | None]:
    """Return (command line to execute, text for its standard input or None)."""
    if env:
        lines = []
        for key, value in env.items():
            if not SHELL_NAME.match(key):
                raise ValueError(f"invalid environment variable name {key!r}")
            lines.append(f"export {key}={shlex.quote(value)}")
        if cwd:
            lines.append(f"cd {shlex.quote(cwd)}")
        line = f"sh -c {shlex.quote(_WRAPPER)} {shlex.quote(command)}"
        script: str | None = "\n".join([*lines, _END]) + "\n"
    else:
        # A newline, not ``&&``: ``cd X && a; b`` would run ``b`` where ``cd`` failed.
        line = f"cd {shlex.quote(cwd)} || exit 1\n{command}" if cwd else command
        script = None
    if sudo:
        line = f"sudo -n -- sh -c {shlex.quote(line)}"
    return line, script
