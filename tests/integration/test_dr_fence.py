"""Fencing a real MariaDB: a writer's session is killed, nothing more can be written, the
fence outlives a restart (the fence duty sets it again), and unfencing makes it writable."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pymysql
import pytest

from hotsite.dr.fence import SiteFence, bypass_accounts, enforce, fence, read_state, unfence
from hotsite.dr.fence_duty import FenceDuty
from hotsite.testing.mariadb import PrivateMariaDB

READ_ONLY = 1290


def test_fence_kills_the_writer_blocks_writes_and_survives_a_restart(
    mariadb_factory: Callable[..., PrivateMariaDB],
) -> None:
    server = mariadb_factory()
    server.execute(
        "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)",
        "CREATE USER app@'%' IDENTIFIED BY 'pw'", "GRANT ALL ON app.* TO app@'%'",
    )  # fmt: skip
    writer = _app(server)
    writer.autocommit(False)
    with writer.cursor() as cur:
        cur.execute("INSERT INTO app.t VALUES (1)")  # open transaction, not committed
    admin = server.connect()
    try:
        state = fence(admin, "move", epoch=3, reason="failed over to dr")
        assert (state.read_only, state.fenced, state.kind, state.epoch) == (True, True, "move", 3)
        assert state.killed >= 1
        assert "'root'@'localhost'" in state.bypass  # ALL PRIVILEGES writes through read_only
        with pytest.raises(pymysql.err.OperationalError):  # its session is gone
            writer.commit()
        app = _app(server)
        with app.cursor() as cur, pytest.raises(pymysql.err.OperationalError) as refused:
            cur.execute("INSERT INTO app.t VALUES (2)")
        assert refused.value.args[0] == READ_ONLY
        app.close()
        assert server.execute("SELECT COUNT(*) FROM app.t") == [(0,)]
        # Not in the binlog: a fence must never replicate to the other site.
        events = server.execute("SHOW BINLOG EVENTS") if _has_binlog(server) else []
        assert not any("hotsite_fence" in str(e) for e in events), events
    finally:
        admin.close()

    server.restart()  # read_only is gone after a restart; the row is not
    assert read_state(server.connect()).read_only is False
    duty = FenceDuty("primary", lambda: server.connect())
    duty.start()
    status = duty.poll()
    assert (status["read_only"], status["fenced"], status["kind"], duty.enforced) == (
        True, True, "move", 1,
    )  # fmt: skip
    app = _app(server)
    with app.cursor() as cur, pytest.raises(pymysql.err.OperationalError):
        cur.execute("INSERT INTO app.t VALUES (3)")
    app.close()
    # Someone turns read_only off by hand: the next poll turns it on again.
    server.execute("SET GLOBAL read_only = OFF")
    duty._last = 0.0
    assert duty.poll()["read_only"] is True and duty.enforced == 2
    duty.stop()

    admin = server.connect()
    state = unfence(admin)
    assert (state.read_only, state.fenced) == (False, False)
    app = _app(server)
    with app.cursor() as cur:
        cur.execute("INSERT INTO app.t VALUES (4)")
    app.close()
    bypass = bypass_accounts(admin)
    assert "'root'@'localhost'" in bypass and not any("'app'" in a for a in bypass)
    admin.close()


def _has_binlog(server: PrivateMariaDB) -> bool:
    return server.execute("SELECT @@log_bin") == [(1,)]


def _app(server: PrivateMariaDB) -> pymysql.connections.Connection:
    return pymysql.connect(
        host="127.0.0.1", port=server.port, user="app", password="pw", database="app",
        autocommit=True, connect_timeout=2,
    )  # fmt: skip


def test_unfence_is_never_undone_by_the_fence_duty_racing_it(
    mariadb_factory: Callable[..., PrivateMariaDB],
) -> None:
    """Between its two steps an unfence leaves the server writable with its fence row:
    what the agent's fence duty repairs, by killing sessions — the unfencing one too
    (a failover then failed promoting the DR site, 'Lost connection'). Both hold the
    server's named lock, so the duty waits for the unfence to end."""
    server = mariadb_factory()
    admin = server.connect()
    fence(admin, "move", epoch=1, reason="standby")  # kills every other session
    duty_conn = server.connect()
    try:
        # While an unfence holds the lock, the duty does nothing even to a writable,
        # fenced server; once it is released, it fences again.
        lifting = server.connect()
        with lifting.cursor() as cur:
            cur.execute("SELECT GET_LOCK('hotsite.fence', 0)")
            server.execute("SET GLOBAL read_only = OFF")
            state, acted = enforce(duty_conn)
            assert (acted, state.read_only, state.fenced) == (False, False, True)
            cur.execute("SELECT RELEASE_LOCK('hotsite.fence')")
        lifting.close()
        state, acted = enforce(duty_conn)
        assert (acted, state.read_only) == (True, True)

        # The race itself: the duty checking as fast as it can while unfence runs.
        stop = threading.Event()
        errors: list[BaseException] = []

        def duty() -> None:
            conn = server.connect()
            while not stop.is_set():
                try:
                    enforce(conn)
                except pymysql.MySQLError as exc:
                    errors.append(exc)
                    conn = server.connect()

        thread = threading.Thread(target=duty, daemon=True)
        thread.start()
        try:
            for epoch in range(2, 12):
                fence(server.connect(), "move", epoch=epoch, reason="standby")
                after = unfence(server.connect())  # a fresh session each time, as a move's
                assert (after.read_only, after.fenced) == (False, False)
        finally:
            stop.set()
            thread.join(timeout=10)
        assert server.execute("SELECT @@GLOBAL.read_only") == [(0,)]
    finally:
        admin.close()
        duty_conn.close()


def test_two_fencers_at_once_never_kill_each_other(
    mariadb_factory: Callable[..., PrivateMariaDB],
) -> None:
    """A move's fence and the lease keeper's meet at the start of every move (the
    controller refuses the lease, the keeper fences at once): each kills every other
    session, and killed each other ('Lost connection'; the relocate rolled back)."""
    server = mariadb_factory()
    errors: list[BaseException] = []

    def fencer(kind: str, epoch: int | None) -> None:
        site = SiteFence(server.connect)  # what the moves and the lease keeper use
        for _ in range(8):
            try:
                state = site.fence(kind, epoch, "racing", list_bypass=False)
                assert state.read_only and state.fenced
            except BaseException as exc:
                errors.append(exc)

    threads = [
        threading.Thread(target=fencer, args=("move", 2)),
        threading.Thread(target=fencer, args=("lease", 1)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert read_state(server.connect()).kind == "move"  # a lease fence never replaces it
