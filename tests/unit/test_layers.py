"""The import graph of src/hotsite, read from the source (lazy imports inside functions
and ``TYPE_CHECKING`` imports included): no cycle between modules nor between packages,
the floors of DESIGN.md respected, and the CLI reaching other packages through their
fronts only."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT = SRC / "hotsite"

# DESIGN.md: cli/api -> dr -> (blueprint, replication, traffic) -> (nodes, remote, state, config)
BOTTOM = ("nodes", "remote", "state", "config")
ABOVE_BOTTOM = ("blueprint", "replication", "traffic", "dr", "keep", "cli", "api", "agent")


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module an import name lands in (``hotsite.nodes.Node`` -> ``hotsite.nodes``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """(imported module, name taken from it or None, line) for every import statement."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found += [(base, a.name, node.lineno) for a in node.names]
    return [(m, n, line) for m, n, line in found if m == "hotsite" or m.startswith("hotsite.")]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        targets = set()
        for base, name, _ in _imports(module):
            full = f"{base}.{name}" if name else base
            target = full if full in MODULES else _resolve(base)
            if target and target != module:
                targets.add(target)
        graph[module] = targets
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_the_reader_sees_lazy_imports() -> None:
    # A function-level import is an edge: nodes/_probe.py imports the SSH transport lazily.
    assert "hotsite.remote.ssh" in _graph()["hotsite.nodes._probe"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_itself_back() -> None:
    assert _cycle(_graph()) is None


def test_no_package_imports_itself_back() -> None:
    packages: dict[str, set[str]] = {}
    for module, targets in _graph().items():
        mine = _package(module)
        packages.setdefault(mine, set()).update(_package(t) for t in targets if _package(t) != mine)
    assert _cycle(packages) is None


@pytest.mark.parametrize("floor", BOTTOM)
def test_the_bottom_floor_imports_nothing_above_it(floor: str) -> None:
    wrong = [
        f"{module} line {line} imports {base}"
        for module in MODULES
        if module == f"hotsite.{floor}" or module.startswith(f"hotsite.{floor}.")
        for base, name, line in _imports(module)
        if _package(_resolve(f"{base}.{name}" if name else base) or base).split(".")[-1]
        in ABOVE_BOTTOM
    ]
    assert wrong == []


def _front(module: str) -> bool:
    """A package's ``__init__`` or a module at the top of hotsite (its own front)."""
    return module.count(".") == 1


def test_the_cli_imports_fronts_only() -> None:
    wrong = []
    for module in MODULES:
        if not module.startswith("hotsite.cli"):
            continue
        for base, name, line in _imports(module):
            if base.startswith("hotsite.cli") or base == "hotsite":
                continue
            if not _front(base):
                wrong.append(f"{module} line {line}: {base}")
            elif name is not None and (ROOT / base.split(".")[1] / "__init__.py").exists():
                exported = importlib.import_module(base).__all__
                if name not in exported:
                    wrong.append(f"{module} line {line}: {base}.{name} is not in its __all__")
    assert wrong == []


@pytest.mark.parametrize(
    "package", sorted(m for m in MODULES if MODULES[m].name == "__init__.py" and _front(m))
)
def test_every_package_declares_its_front(package: str) -> None:
    front = importlib.import_module(package)
    assert front.__all__, f"{package} has no __all__"
    missing = [name for name in front.__all__ if not hasattr(front, name)]
    assert missing == []
