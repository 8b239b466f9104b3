"""The controller's watch: probe every site each ``interval``, and with
``auto_failover`` fail over when the primary is declared dead (see detector.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hotsite.dr.detector import Detector
from hotsite.errors import HotsiteError
from hotsite.logs import get_logger

if TYPE_CHECKING:  # the controller's HTTP server loads with the controller, not here
    from hotsite.dr.controller import ControllerState

log = get_logger(__name__)


async def watch(
    state: ControllerState,
    detector: Detector,
    reachable: Callable[[str], bool],
    interval: float,
    failover: Callable[[str, str, float], Any] | None,
) -> None:
    """``failover(target, why, failed_at)`` runs the move (in a thread); None: detection
    only. ``failed_at``: when the controller last reached the primary (wall clock)."""
    moving: asyncio.Task[Any] | None = None
    while True:
        try:
            moving = await _once(state, detector, reachable, interval, failover, moving)
        except Exception as exc:  # the watch must outlive a bad moment (a locked store)
            log.warning("the controller's watch failed once", error=str(exc))
        await asyncio.sleep(interval)


async def _once(
    state: ControllerState,
    detector: Detector,
    reachable: Callable[[str], bool],
    interval: float,
    failover: Callable[[str, str, float], Any] | None,
    moving: asyncio.Task[Any] | None,
) -> asyncio.Task[Any] | None:
    results = await asyncio.gather(*(asyncio.to_thread(reachable, site) for site in detector.sites))
    for site, reached in zip(detector.sites, results, strict=True):
        detector.observed(site, reached)
    record = await asyncio.to_thread(state.records.read)
    if (
        failover is not None
        and record is not None
        and record.move is None
        and (moving is None or moving.done())
    ):
        dead, why, witness = detector.verdict(record.primary, state.reports)
        # The witness becomes the primary: the controller must reach it itself.
        if dead and witness is not None and detector.unreached_for(witness) < detector.dead_after:
            log.warning("primary declared dead: failing over", primary=record.primary,
                        to=witness, why=why)  # fmt: skip
            failed_at = time.time() - detector.unreached_for(record.primary)
            return asyncio.create_task(_run(failover, witness, why, failed_at))
    return moving


async def _run(
    failover: Callable[[str, str, float], Any], target: str, why: str, failed_at: float
) -> None:
    try:
        await asyncio.to_thread(failover, target, why, failed_at)
    except HotsiteError as exc:
        log.warning("automatic failover failed", to=target, error=str(exc))
