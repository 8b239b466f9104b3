"""The controller for real (`hotsite controller`, HTTP, optionally TLS) with a lease
keeper fencing a real MariaDB: a request without the right token changes nothing and is
logged; the primary fences itself before its lease ends when the controller is gone,
and gets its database back when the controller returns; a move that begins takes the
lease away at once."""

from __future__ import annotations

import http.client
import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from hotsite.config_dr import DRConfig
from hotsite.db import connect
from hotsite.dburl import DatabaseURL
from hotsite.dr.client import ControllerClient, ControllerRefused
from hotsite.dr.fence import SiteFence
from hotsite.dr.lease import LeaseKeeper
from hotsite.dr.record import Move
from hotsite.dr.record_sqlite import SqliteRecordStore
from hotsite.dr.token import Token
from hotsite.state import StateStore
from hotsite.testing.mariadb import PrivateMariaDB, free_port
from hotsite.tls import TLSSettings
from tests.dr_helpers import TOKEN, Controller, wait_for
from tests.tlsca import TestCA

LEASE = 2.0
INTERVAL = 0.1


def project(tmp_path: Path, a: str, b: str, **extra: object) -> Path:
    config = {
        "sites": {"a": {"database": a}, "b": {"database": b}},
        "dr": {
            "primary": "a",
            "lease": LEASE,
            "detection": {"interval": INTERVAL, "dead_after": 0.5},
            "controller": {"listen": f"127.0.0.1:{free_port()}"},
        },
        **extra,
    }
    path = tmp_path / "hotsite.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# The controller itself never connects to the sites' databases.
UNUSED = ("mysql://root@127.0.0.1:1/app", "mysql://root@127.0.0.1:2/app")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Controller]:
    controller = Controller(project(tmp_path, *UNUSED)).start()
    yield controller
    controller.stop()


def dr_of(config: Path) -> DRConfig:
    return DRConfig.model_validate(yaml.safe_load(config.read_text())["dr"])


def client(config: Path, token: str = TOKEN) -> ControllerClient:
    url = f"http://{dr_of(config).controller.listen}"
    return ControllerClient(url, Token(token), timeout=1.0)


def test_requests_without_the_token_change_nothing_and_are_logged(running: Controller) -> None:
    good = client(running.config)
    before = good.record()
    assert (before["primary"], before["epoch"], before["lease_holder"]) == ("a", 1, None)
    with pytest.raises(ControllerRefused, match="refused the control token"):
        client(running.config, token="wrong-token-0123456789").lease("a", 1)
    host, port = dr_of(running.config).controller.listen.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=2)
    conn.request("POST", "/v1/lease", body=json.dumps({"site": "a", "epoch": 1}))
    assert conn.getresponse().status == 401
    assert good.record() == before  # no lease was granted by either
    time.sleep(0.2)
    log = running.stderr.read_text()
    assert "reason='wrong token'" in log.replace('"', "'") or "wrong token" in log
    assert "no token" in log and "/v1/lease" in log
    assert "wrong-token" not in log and TOKEN not in log
    state_db = running.config.parent / ".hotsite" / "state.db"
    for path in state_db.parent.glob("state.db*"):
        assert TOKEN.encode() not in path.read_bytes()
    # A bad request is refused in words, not with a crash.
    with pytest.raises(ControllerRefused, match="unknown site 'zz'"):
        good.lease("zz", 1)


def test_lease_keeper_fences_before_the_lease_ends_and_resumes(
    tmp_path: Path, mariadb_factory: Callable[..., PrivateMariaDB]
) -> None:
    a = mariadb_factory()
    running = Controller(project(tmp_path, a.url(), UNUSED[1])).start()
    try:
        _keeper_scenario(running, a)
    finally:
        running.stop()


def _keeper_scenario(running: Controller, a: PrivateMariaDB) -> None:
    url = DatabaseURL.parse(a.url())
    fence = SiteFence(lambda: connect(url, "a"))
    dr = dr_of(running.config)
    keeper = LeaseKeeper(
        "a", client(running.config), fence, interval=INTERVAL, fence_before=dr.fence_before
    )
    keeper.start()
    try:
        wait_for(lambda: keeper.poll()["holding"], "the lease")
        status = keeper.poll()
        assert (status["role"], status["epoch"]) == ("primary", 1)
        assert fence.state().writable

        running.stop(signal.SIGKILL)  # the controller is gone; its record says when
        lost = time.time()
        records = SqliteRecordStore(StateStore(running.config.parent / ".hotsite" / "state.db"))
        lease_end = records.read().lease_expires  # type: ignore[union-attr]
        wait_for(lambda: keeper.poll()["fenced_at"], "the self-fence", timeout=LEASE + 1)
        fenced = keeper.poll()["fenced_at"]  # taken after read_only was on: an upper bound
        # Fenced before the lease ends, by the controller's clock: the other site could
        # only be promoted after lease_end + clock_margin.
        assert fenced < lease_end, (fenced - lost, lease_end - lost)
        assert not fence.state().writable
        state = fence.state()
        assert (state.fenced, state.kind, state.epoch) == (True, "lease", 1)
        assert not keeper.poll()["holding"]

        running.start()  # the same record: no move began, so the lease comes back
        wait_for(lambda: fence.state().writable, "the lease fence lifted")
        assert keeper.poll()["holding"] and not fence.state().fenced

        # A move begins: the next renewal is refused and the keeper fences at once.
        records.begin_move(Move("m1", "relocate", "b", time.time()), expected_epoch=1)
        began = time.monotonic()
        wait_for(lambda: not fence.state().writable, "the fence after a move began")
        assert time.monotonic() - began < 4 * INTERVAL + 1.0
        assert keeper.poll()["role"] in ("primary", "standby")
        records.finish_move("m1")
        wait_for(lambda: keeper.poll()["role"] == "standby", "the standby role")
        assert not fence.state().writable  # the move's fence is not the keeper's to lift
    finally:
        keeper.stop()


def test_the_channel_over_tls(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "ca")
    issued = ca.issue("controller", hosts=("127.0.0.1",))
    config = project(
        tmp_path, *UNUSED, control_tls={"ca": str(ca.cert), "cert": str(issued.cert),
                                         "key": str(issued.key)},
    )  # fmt: skip
    controller = Controller(config).start()
    try:
        listen = dr_of(config).controller.listen
        secure = ControllerClient(f"https://{listen}", Token(TOKEN), TLSSettings(ca=str(ca.cert)))
        assert secure.record()["primary"] == "a"
        assert secure.lease("a", 1)["granted"] is True
        other = TestCA(tmp_path / "other")
        with pytest.raises(Exception, match="did not answer"):
            ControllerClient(
                f"https://{listen}", Token(TOKEN), TLSSettings(ca=str(other.cert))
            ).record()
        with pytest.raises(Exception, match="did not answer"):  # plaintext to a TLS port
            ControllerClient(f"http://{listen}", Token(TOKEN)).record()
    finally:
        controller.stop()


class _Reports:
    """b's agent, reporting every INTERVAL which sites its last probe missed."""

    def __init__(self, config: Path) -> None:
        self.client = client(config)
        self.failing: list[str] = []
        self._stop = False

    def __enter__(self) -> _Reports:
        import threading

        def run() -> None:
            while not self._stop:
                self.client.report("b", {"peers": {"a": 0.0}, "failing": list(self.failing)})
                time.sleep(INTERVAL)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join(timeout=5)


def test_a_suspect_primary_gets_no_more_lease_and_fences_before_it_ends(
    tmp_path: Path, mariadb_factory: Callable[..., PrivateMariaDB]
) -> None:
    """The controller cannot reach a (its URL leads nowhere) while a's agent can still
    renew: once b's agent says it misses a too, renewals stop extending the lease, a
    fences itself before the lease's end by the controller's clock — sooner than a lease
    from the last renewal would have — and gets its database back when b reaches a again.
    b missing a alone (the controller's probe is not asked here: it fails all along)
    changes nothing before that."""
    a = mariadb_factory()
    running = Controller(project(tmp_path, *UNUSED)).start()
    url = DatabaseURL.parse(a.url())
    fence = SiteFence(lambda: connect(url, "a"))
    dr = dr_of(running.config)
    keeper = LeaseKeeper(
        "a", client(running.config), fence, interval=INTERVAL, fence_before=dr.fence_before
    )
    records = SqliteRecordStore(StateStore(running.config.parent / ".hotsite" / "state.db"))
    keeper.start()
    try:
        with _Reports(running.config) as reports:
            wait_for(lambda: keeper.poll()["holding"], "the lease")
            time.sleep(LEASE)  # b reaches a: extended all along, though the controller does not
            assert fence.state().writable and keeper.poll()["lease_left"] > LEASE - 0.5

            reports.failing = ["a"]
            suspected = time.time()
            wait_for(lambda: keeper.poll()["fenced_at"], "the self-fence", timeout=LEASE + 1)
            fenced = keeper.poll()["fenced_at"]
            lease_end = records.read().lease_expires  # type: ignore[union-attr]
            # No extension after the suspicion (one report and one renewal of slack),
            # and fenced while the controller still counted the lease.
            assert lease_end < suspected + LEASE + 3 * INTERVAL, lease_end - suspected
            assert fenced < lease_end, (fenced - suspected, lease_end - suspected)
            assert not fence.state().writable
            time.sleep(max(0.0, lease_end - time.time()) + INTERVAL)
            refused = client(running.config).lease("a", 1)  # once it has ended: refused
            assert not refused["granted"] and "not extended" in refused["reason"], refused

            reports.failing = []  # b reaches a again: the lease is extended again
            wait_for(lambda: fence.state().writable, "the lease fence lifted", timeout=5)
            assert keeper.poll()["holding"]
    finally:
        keeper.stop()
        running.stop()
