"""Shared fixtures: private MariaDB servers, started per test and removed after."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from hotsite.testing.mariadb import PrivateMariaDB

_server_ids = itertools.count(100)


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
    tests that load the blueprint build it first, whatever order they run in."""
    import runpy
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "examples" / "petclinic"
    runpy.run_path(str(example / "make-wheelhouse"))["build"]()
