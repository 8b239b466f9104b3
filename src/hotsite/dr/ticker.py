"""A duty's work in a thread of its own, once every interval: for the duties whose
deadlines must not depend on how busy the agent's poll loop is (the lease keeper, the
health report)."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Ticker:
    """``step`` every ``interval`` seconds (counted from each step's start). An error
    of the ``expected`` kinds goes to ``on_error`` and the next step runs as usual; any
    other ends the thread and is handed over once by ``failure()`` (the duty's poll
    raises it, and the agent restarts the duty)."""

    def __init__(
        self,
        name: str,
        step: Callable[[], object],
        interval: float,
        clock: Callable[[], float],
        expected: tuple[type[Exception], ...] = (),
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.name = name
        self._step = step
        self._interval = interval
        self._clock = clock
        self._expected = expected
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._failure = None
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def failure(self) -> BaseException | None:
        failure, self._failure = self._failure, None
        return failure

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                began = self._clock()
                try:
                    self._step()
                except self._expected as exc:
                    if self._on_error is not None:
                        self._on_error(exc)
                self._stop.wait(max(0.0, self._interval - (self._clock() - began)))
        except BaseException as exc:  # reported by the next poll; the agent restarts us
            self._failure = exc
