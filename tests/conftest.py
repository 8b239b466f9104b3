"""Shared fixtures: private MariaDB servers, started per test and removed after."""

from __future__ import annotations

import compileall
import fcntl
import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import hotsite
from hotsite.testing.alone import machine_share
from hotsite.testing.mariadb import PrivateMariaDB


def pytest_configure(config: pytest.Config) -> None:
    """Byte-compile hotsite once, before any test runs it: the suite starts hundreds of
    ``hotsite`` processes (and their capture processes), and where the environment sets
    PYTHONDONTWRITEBYTECODE each of them would otherwise compile every module again."""
    if not hasattr(config, "workerinput"):  # the xdist controller, or a plain run
        compileall.compile_dir(Path(hotsite.__file__).parent, quiet=2)


def _worker_index() -> int:
    """0 without pytest-xdist, else the number of this worker (``gw3`` -> 3)."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(name[2:]) if name[2:].isdigit() else 0


# Server ids distinct across parallel workers too, so no two servers on the machine that
# one test suite started ever share one (nothing needs it today: it keeps logs unambiguous).
_server_ids = itertools.count(100 + 10_000 * _worker_index())


@pytest.fixture
def mariadb_factory() -> Iterator[Callable[..., PrivateMariaDB]]:
    """Start as many private servers as a test wants; all are stopped after it."""
    servers: list[PrivateMariaDB] = []

    def start(**settings: str) -> PrivateMariaDB:
        server = PrivateMariaDB(server_id=next(_server_ids), extra_settings=settings)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def source_and_target(
    mariadb_factory: Callable[..., PrivateMariaDB],
) -> tuple[PrivateMariaDB, PrivateMariaDB]:
    """Two servers, each with an empty ``app`` database."""
    source, target = mariadb_factory(), mariadb_factory()
    for server in (source, target):
        server.execute("CREATE DATABASE app")
    return source, target


@pytest.fixture(scope="session")
def petclinic_wheelhouse() -> None:
    """The sample blueprint names its wheelhouse, which make-wheelhouse builds (untracked):
    tests that load the blueprint build it first, whatever order they run in. Each
    parallel worker runs this fixture: the lock (on the wheelhouse directory) makes the
    first build it and the others wait for it, never use a wheel half-written."""
    import runpy

    example = Path(__file__).resolve().parent.parent / "examples" / "petclinic"
    wheelhouse = example / "wheelhouse"
    wheelhouse.mkdir(exist_ok=True)
    fd = os.open(wheelhouse, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        runpy.run_path(str(example / "make-wheelhouse"))["build"](wheelhouse)
    finally:
        os.close(fd)


# ---- running in parallel (pytest-xdist: scripts/test runs ``-n``) -------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` first: workers take tests in this order, so no long test
    starts last and keeps one worker busy while the others are done."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _alone_or_shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """A test marked ``alone`` runs while no other test of this session runs (its
    servers, fixtures and tear-down included); the others share the machine."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    # Every worker of one session has its basetemp under the same directory.
    directory = tmp_path_factory.getbasetemp().parent
    with machine_share(directory, request.node.get_closest_marker("alone") is not None):
        yield
