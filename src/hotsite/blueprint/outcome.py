"""What ``up`` and ``down`` report: progress events while they run, an outcome after."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotsite.blueprint.plan import Plan
from hotsite.blueprint.runner import StepFailed
from hotsite.locks import FileLock


@dataclass(frozen=True)
class Event:
    """Progress, for the live view: ``status`` is running, done, failed or skipped."""

    node: str
    service: str
    step: str
    status: str
    detail: str = ""


Observer = Callable[[Event], None]


@dataclass
class Outcome:
    plan: Plan
    failures: list[StepFailed] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # node, service, why
    steps_run: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures and not self.skipped


def site_lock(home: Path, site: str) -> FileLock:
    return FileLock(home / "locks" / f"site-{site}.lock", f"site {site!r} (up/down)")
