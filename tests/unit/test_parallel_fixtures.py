"""The pieces that let the suite run in parallel processes: ports and the alone lock."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from hotsite.testing import ports
from hotsite.testing.alone import machine_share


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    given = [ports.free_port() for _ in range(200)]
    assert len(set(given)) == len(given), "never the same port twice in one process"
    assert all(1024 <= port < low for port in given), "no outgoing connection can take one"
    for port in given[:20]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_something_listens_on_is_never_given(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]

        def draws():  # type: ignore[no-untyped-def]
            yield busy  # first the port in use, then ports the kernel says are free
            while True:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", 0))
                    yield sock.getsockname()[1]

        drawn = draws()
        monkeypatch.setattr(ports._rng, "choice", lambda _: next(drawn))
        assert ports.free_port() != busy


def _hold(directory: Path, alone: bool, entered: list[str], name: str, release: threading.Event):
    def run() -> None:
        with machine_share(directory, alone):
            entered.append(name)
            release.wait(10)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _settle() -> None:
    time.sleep(0.3)  # long enough for a thread that could take the lock to have taken it


def _until(condition) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_an_alone_test_waits_for_running_tests_and_holds_off_new_ones(tmp_path: Path) -> None:
    entered: list[str] = []
    first, second, alone_done, last = (threading.Event() for _ in range(4))
    threads = [
        _hold(tmp_path, False, entered, "shared-1", first),
        _hold(tmp_path, False, entered, "shared-2", second),
    ]
    _until(lambda: sorted(entered) == ["shared-1", "shared-2"])  # side by side
    threads.append(_hold(tmp_path, True, entered, "alone", alone_done))
    _settle()
    threads.append(_hold(tmp_path, False, entered, "shared-3", last))
    _settle()
    assert entered == ["shared-1", "shared-2"] or entered == ["shared-2", "shared-1"], (
        "the alone test waits while others run, and the test after it waits too"
    )
    first.set()
    _settle()
    assert len(entered) == 2, "... while any of them runs"
    second.set()
    _until(lambda: len(entered) == 3)
    assert entered[-1] == "alone", "then it runs, and the test that came after it waits"
    _settle()
    assert len(entered) == 3
    alone_done.set()
    _until(lambda: len(entered) == 4)
    assert entered[-1] == "shared-3"
    last.set()
    for thread in threads:
        thread.join(10)
