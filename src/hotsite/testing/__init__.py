"""Real components for tests, demos and benchmarks, and the fakes users need to test
their own code.

Modules (each loaded on first use: they start servers and import their drivers):
``mariadb`` (private ``mariadbd`` instances), ``sshhosts`` (sshd in network namespaces),
``sysbench`` (load), ``blueprints`` (``DirectoryNodes``: bring a blueprint up on
directories, no hosts needed; see docs/blueprints.md).
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["blueprints", "mariadb", "sshhosts", "sysbench"]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
