"""What the live view shows and the report plots, sampled every ``PERIOD`` seconds:
the client's acknowledged writes and errors per second, which site served them, and
each link's lag per stage (capture, ship, apply) as the site agents report it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hotsite.demo.control import Control
from hotsite.demo.load import WriteLoad

PERIOD = 0.25
STAGES = ("capture", "ship", "apply")


@dataclass
class Sample:
    at: float
    writes_per_s: float
    errors_per_s: float
    serving: str
    lag: dict[str, dict[str, float | None]] = field(default_factory=dict)  # link → stage → s


class Sampler:
    def __init__(self, load: WriteLoad, control: Control, sites: tuple[str, ...]) -> None:
        self.load = load
        self.control = control
        self.sites = sites
        self.samples: list[Sample] = []
        self.step = "starting"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-sampler", daemon=True)
        self._seen = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def _run(self) -> None:
        last = time.time()
        while not self._stop.wait(PERIOD):
            now = time.time()
            writes = self.load.snapshot()
            fresh, self._seen = writes[self._seen :], len(writes)
            span = max(now - last, 1e-3)
            last = now
            ok = [w for w in fresh if w.ok]
            serving = ok[-1].site if ok else ""
            self.samples.append(
                Sample(now, len(ok) / span, (len(fresh) - len(ok)) / span, serving, self._lags())
            )

    def _lags(self) -> dict[str, dict[str, float | None]]:
        found: dict[str, dict[str, float | None]] = {}
        for site in self.sites:
            view = self.control.agent_view(site)
            if not view.get("updated_at") or time.time() - float(view["updated_at"]) > 3:
                continue  # the agent is down (its site was killed): no figure, not a stale one
            for duty in view.get("duties") or []:
                status: dict[str, Any] = duty.get("status") or {}
                if not str(duty.get("duty", "")).startswith("link ") or not duty.get("running"):
                    continue
                link = str(duty["duty"]).removeprefix("link ")
                found[link] = {stage: _lag(status.get(stage)) for stage in STAGES}
        return found


def _lag(stage: Any) -> float | None:
    if not isinstance(stage, dict):
        return None
    value = stage.get("lag_seconds")
    return float(value) if isinstance(value, (int, float)) else None
