"""How a command with environment, directory and sudo becomes one shell invocation.

Environment values are often secrets (passwords, tokens). They are *not* put on the
command line, where ``ps`` on the node would show them, nor in SSH ``env`` requests,
which sshd refuses unless ``AcceptEnv`` lists them: they are sent on standard input as
``export`` lines, which the wrapper ``eval``s before running the command. The command
itself therefore gets an empty standard input.
"""

from __future__ import annotations

import shlex

# ``$(cat)`` reads the export lines up to EOF; then the command runs in a fresh ``sh -c``
# so its own syntax errors are reported as its own, with ``$0`` as the command text.
# The input ends with a marker: if the client dies while sending it, sshd still closes
# stdin (EOF), and without the check the command would run without its environment
# (a service started with no DB_HOST...) after the client is gone.
_END = "#hotsite-input-end"
_WRAPPER = (
    f'i=$(cat); case "$i" in *"{_END}") ;; *) echo "hotsite: input cut short,'
    ' command not run" >&2; exit 255;; esac; eval "$i" && exec sh -c "$0"'
)


def wrap(
    command: str, *, env: dict[str, str] | None, cwd: str | None, sudo: bool
) -> tuple[str, str]:
    """Return (command line to execute, text to send on its standard input)."""
    lines = []
    for key, value in (env or {}).items():
        if not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise ValueError(f"invalid environment variable name {key!r}")
        lines.append(f"export {key}={shlex.quote(value)}")
    if cwd:
        lines.append(f"cd {shlex.quote(cwd)}")
    # Never empty: asyncssh sends no EOF for empty input, and ``$(cat)`` would wait.
    script = "\n".join([*lines, _END]) + "\n"
    line = f"sh -c {shlex.quote(_WRAPPER)} {shlex.quote(command)}"
    if sudo:
        line = f"sudo -n -- {line}"
    return line, script
