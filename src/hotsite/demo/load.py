"""The client: a write load through the entry point for the whole demo, recording every
write it sent — when, the answer, and which site served it.

Each write is a new visit whose description carries the client's own sequence number
(``demo-w<N>``), so afterwards each *acknowledged* write (answered 201) can be looked up
in the sites' databases: an acknowledged write missing there is lost (the RPO), and the
gaps between acknowledged writes are the outages the client saw (the RTO).
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from dataclasses import dataclass

MARK = "demo-w"


@dataclass(frozen=True)
class Write:
    seq: int
    sent: float  # wall clock
    answered: float
    ok: bool  # acknowledged: 201 Created
    site: str  # the site that served it ('' when none did)
    error: str


class WriteLoad:
    """``threads`` clients, each at most ``rate`` writes/s, through ``host:port``."""

    def __init__(self, host: str, port: int, threads: int = 3, rate: float = 40.0) -> None:
        self.host, self.port = host, port
        self.threads = threads
        self.interval = 1.0 / rate
        self.writes: list[Write] = []
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, name=f"demo-client-{n}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=10)

    def snapshot(self) -> list[Write]:
        with self._lock:
            return list(self.writes)

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            began = time.monotonic()
            seq = next(self._seq)
            sent = time.time()
            ok, site, error = False, "", ""
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=2.0)
                body = json.dumps(
                    {"pet_id": 1 + seq % 50, "visit_date": "2026-12-02",
                     "description": f"{MARK}{seq}"}
                )  # fmt: skip
                conn.request("POST", "/api/visits", body, {"Content-Type": "application/json"})
                answer = conn.getresponse()
                text = answer.read()
                site = (answer.getheader("X-Served-By") or "").removesuffix("-web1")
                ok = answer.status == 201
                if not ok:
                    error = f"HTTP {answer.status} {text[:60].decode(errors='replace')}"
                if answer.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                error = type(exc).__name__
                if conn is not None:
                    conn.close()
                conn = None
            with self._lock:
                self.writes.append(Write(seq, sent, time.time(), ok, site, error))
            pause = self.interval - (time.monotonic() - began)
            if pause > 0:
                self._stop.wait(pause)
            elif not ok:
                self._stop.wait(0.02)  # an outage: no busy loop against a refusing port
        if conn is not None:
            conn.close()
