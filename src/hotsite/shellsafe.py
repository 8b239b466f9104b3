"""Values on their way into a shell command: which names may be variables, which
directories a command may remove.

Template values, node addresses and directories reach ``sh -c`` on the nodes; what
cannot be quoted (a variable's name) must be checked, and what ``rm -rf`` gets must
never be a directory whose removal takes the system with it. (Quoting a value is
``shlex.quote``; blueprints spell it ``{{ value | quote }}``.)
"""

from __future__ import annotations

import posixpath
import re

SHELL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def removable_dir(path: str) -> str:
    """``path`` if a command may ``rm -rf`` it; ValueError saying why not otherwise.

    Refused: an empty value (``rm -rf "$DIR"/lib`` is then ``rm -rf /lib``), ``/`` (also
    spelled ``//`` or ``/.``), a relative path (it depends on the directory the command
    runs in) and any ``..`` component (``/opt/app/../..`` is ``/``).
    """
    if not path.strip():
        raise ValueError("it is empty, and `rm -rf` would then remove from /")
    if not path.startswith("/"):
        raise ValueError(f"{path!r} is not an absolute path")
    if ".." in path.split("/"):
        raise ValueError(f"{path!r} holds a '..'")
    if posixpath.normpath(path) in ("/", "//"):
        raise ValueError(f"{path!r} is the root directory")
    return path
