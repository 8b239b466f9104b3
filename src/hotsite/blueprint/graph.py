"""Service dependency order: ``depends_on`` edges, checked for cycles.

``up`` does not run level by level (that would make a fast service wait for a slow,
unrelated one); it starts every service as soon as its own dependencies are done. The
levels are only for showing the order and for ``down``, which walks them backwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hotsite.errors import ConfigError


def levels(depends_on: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Services grouped so each one's dependencies are in earlier groups."""
    remaining = {name: set(deps) & set(depends_on) for name, deps in depends_on.items()}
    done: set[str] = set()
    result: list[list[str]] = []
    while remaining:
        ready = sorted(name for name, deps in remaining.items() if deps <= done)
        if not ready:
            raise ConfigError(
                f"services depend on each other in a cycle: {_cycle(remaining)}",
                "remove one of these depends_on entries",
            )
        result.append(ready)
        done.update(ready)
        for name in ready:
            del remaining[name]
    return result


def _cycle(remaining: Mapping[str, set[str]]) -> str:
    start = sorted(remaining)[0]
    path, node = [start], start
    while True:
        node = sorted(remaining[node] & set(remaining))[0]
        if node in path:
            return " -> ".join([*path[path.index(node) :], node])
        path.append(node)


def dependents(depends_on: Mapping[str, Sequence[str]], failed: str) -> set[str]:
    """Every service that needs ``failed``, directly or not."""
    found: set[str] = set()
    frontier = [failed]
    while frontier:
        current = frontier.pop()
        for name, deps in depends_on.items():
            if current in deps and name not in found:
                found.add(name)
                frontier.append(name)
    return found
