"""The moves' interfaces on this version's engine: the sites' databases reached directly
from where the command runs, the one-link replication engine's positions, the local
entry point. The site agent brings its own implementations of the same interfaces."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pymysql

from hotsite.config import ProjectConfig
from hotsite.db import connect, error_code
from hotsite.dr.entry import entry_control
from hotsite.dr.fence import KILLED, FenceState
from hotsite.dr.history import History
from hotsite.dr.moves import MoveContext
from hotsite.dr.project import controller_client, dr_section, open_records, site_fence
from hotsite.dr.served import ServedSampler
from hotsite.dr.standby import write_mark
from hotsite.errors import DatabaseError, HotsiteError
from hotsite.replication import positions
from hotsite.replication.gtid import GtidState
from hotsite.state import StateStore
from hotsite.traffic.entry import EntryControl


class ProjectSites:
    def __init__(self, config: ProjectConfig, timeout: float = 1.0) -> None:
        self.config = config
        self.timeout = timeout

    def reachable(self, site: str) -> bool:
        for attempt in range(KILLED_ATTEMPTS):
            answered = self._probe(site)
            if answered is not None:
                return answered
            time.sleep(0.05 * (attempt + 1))
        return False

    def _probe(self, site: str) -> bool | None:
        """True: it answered; False: it did not; None: a fencer killed the probe (a lost
        connection at once — one lost after waiting is a cut link's timeout)."""
        began = time.monotonic()

        def killed(code: int | None) -> bool:
            return code in KILLED and time.monotonic() - began < self.timeout / 2

        try:
            conn = connect(
                self.config.site(site).database_url,
                site,
                timeout=self.timeout,
                read_timeout=self.timeout,  # a cut link must not hang the probe
            )
        except HotsiteError as exc:
            return None if killed(getattr(exc, "code", None)) else False
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
            return True
        except pymysql.MySQLError as exc:
            return None if killed(error_code(exc)) else False
        finally:
            conn.close()

    def fence(self, site: str, kind: str, epoch: int | None, reason: str) -> FenceState:
        # A fence is safe to repeat, and two fencers can cut each other's session: the
        # site's lease keeper fences at once when a move begins, killing every session
        # but its own — this one's too, mid-fence. Then fence again (its fence is done).
        for _ in range(FENCE_ATTEMPTS - 1):
            try:
                return site_fence(self.config, site).fence(kind, epoch, reason)
            except pymysql.OperationalError as exc:
                if exc.args[0] not in _LOST:
                    raise _refused(site, exc) from None
            time.sleep(0.1)
        return _database_errors(
            site, lambda: site_fence(self.config, site).fence(kind, epoch, reason)
        )

    def unfence(self, site: str) -> FenceState:
        return _database_errors(site, lambda: site_fence(self.config, site).unfence())

    def mark_standby(self, site: str, of: str, epoch: int) -> None:
        link = next(
            (k for k in self.config.replication if k.source == of and k.target == site), None
        )
        if link is None:
            return  # no link back: nothing to run into it
        conn = connect(self.config.site(site).database_url, site, timeout=self.timeout * 5)
        try:
            _database_errors(site, lambda: write_mark(conn, self.config.link_key(link), epoch))
        finally:
            conn.close()


FENCE_ATTEMPTS = 3
_LOST = (2006, 2013)  # server has gone away, lost connection during query
# A site's lease keeper fences it (killing every session but its own) when a move begins
# or a renewal comes late: a move's read of that site cut that way is read again.
KILLED_ATTEMPTS = 3


def _again_if_killed(read: Callable[[], Any]) -> Any:
    for attempt in range(KILLED_ATTEMPTS):
        try:
            return read()
        except DatabaseError as exc:
            if exc.code not in KILLED or attempt == KILLED_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


# Seconds a relocate's drain lets the old primary's requests in flight finish.
DRAIN_WAIT = 1.0
# Seconds ``shipped`` waits for a health report sent after it asked (reports go every
# detection interval, 0.2 s by default).
REPORT_WAIT = 2.0


class LinkPositions:
    """Positions of the configured link between two sites.

    How far the target's journal reaches is known where the journal is: the site agent
    reports it to the controller (``PeerReporter``), and a deployed agent's journal is on
    its node. So ``shipped`` asks the controller for a report the target's agent sent
    after the question (what a move fenced has been shipped by then), and reads the
    journal on this machine only when no agent reports the link (``hotsite replicate``
    run here) or the controller cannot be asked."""

    def __init__(
        self, config: ProjectConfig, reports: Callable[[], dict[str, Any]] | None = None
    ) -> None:
        self.config = config
        self._reports = reports if reports is not None else self._controller_sites

    def committed(self, site: str) -> GtidState:
        return _again_if_killed(lambda: positions.source_position(self.config, site))

    def shipped(self, source: str, target: str) -> GtidState | None:
        reported = self._reported_shipped(source, target)
        if reported is not None:
            return reported
        return positions.shipped_position(self.config, self.config.link(source, target))

    def _reported_shipped(self, source: str, target: str) -> GtidState | None:
        asked = time.monotonic()
        deadline = asked + REPORT_WAIT
        latest: GtidState | None = None
        while True:
            try:
                entry = self._reports().get(target) or {}
            except HotsiteError:
                return latest  # no controller to ask: the journal here, if any
            value = ((entry.get("report") or {}).get("shipped") or {}).get(source)
            if value is None:
                return latest  # this site's agent does not run the link
            latest = GtidState.parse(value)
            age = entry.get("age")
            # Received since the question (the controller's own clock says so).
            if (age is not None and age <= time.monotonic() - asked) or (
                time.monotonic() >= deadline
            ):
                return latest
            time.sleep(0.05)

    def _controller_sites(self) -> dict[str, Any]:
        client = controller_client(self.config)
        try:
            return dict(client.sites())
        finally:
            client.close()

    def applied(self, source: str, target: str) -> GtidState | None:
        link = self.config.link(source, target)
        return _again_if_killed(lambda: positions.applied_position(self.config, link))


class EntryTraffic:
    """The moves' traffic on the local entry point. Taking a site out (drain, cut) first
    holds new requests (traffic.entry: they wait, retried, while no site takes them);
    routing to a site releases them there. The entry point's 5xx answers from the hold
    on are what the switch could not hold (``unheld``)."""

    def __init__(self, control: EntryControl | None) -> None:
        self.control = control
        self._failed_at_hold: int | None = None
        self._sampler: ServedSampler | None = None

    def _hold(self, control: EntryControl) -> None:
        if self._failed_at_hold is None:
            self._failed_at_hold = control.failed_responses()
        if self._sampler is None:  # when each site served, from here to the first write
            self._sampler = ServedSampler(control.served).start()
        control.hold()

    def served(self, old: str, new: str, timeout: float) -> tuple[float | None, float | None]:
        """(the old site's last 2xx through the entry point since the hold, the new
        site's first after the switch — waited for up to ``timeout``), wall clock; None
        where the entry point did not see one. Ends the sampling."""
        sampler, self._sampler = self._sampler, None
        if sampler is None:
            return None, None
        try:
            return sampler.last_served(old), sampler.first_after(new, timeout)
        finally:
            sampler.stop()

    def unheld(self) -> int | None:
        """Requests that failed since the hold began; None when nothing was held."""
        if self.control is None or self._failed_at_hold is None:
            return None
        try:
            return self.control.failed_responses() - self._failed_at_hold
        except HotsiteError:
            return None
        finally:
            self._failed_at_hold = None  # the next move counts from its own hold

    def _running(self) -> EntryControl:
        if self.control is None:
            raise HotsiteError("there is no entry point (dr.entry) to switch")
        if self.control.running_pid() is None:
            raise HotsiteError("the entry point is not running ('hotsite entry up')")
        return self.control

    def drain(self, site: str) -> None:
        """New requests held; the site's requests in flight finish there (up to
        DRAIN_WAIT): the fence that follows would cut them, and their writes fail."""
        control = self._running()
        self._hold(control)
        control.set_state(site, "drain")
        deadline = time.monotonic() + DRAIN_WAIT
        while time.monotonic() < deadline:
            try:
                busy = any(s.site == site and s.sessions > 0 for s in control.status())
            except HotsiteError:
                return  # the runtime API missed a beat: the fence goes on
            if not busy:
                return
            time.sleep(0.01)

    def cut(self, site: str) -> None:
        control = self._running()
        self._hold(control)
        control.cut(site)

    def route(self, sites: set[str]) -> None:
        control = self._running()
        if self._sampler is not None:
            self._sampler.routed(sites)
        control.route(sites)


def move_context(
    config: ProjectConfig, apply_timeout: float, say: object = None, probe_timeout: float = 1.0
) -> MoveContext:
    """``probe_timeout``: how long a site's database may take to answer before the move
    takes it for unreachable (the controller's failover: its detection's probe timeout,
    as a cut-off primary would otherwise hold the move that long)."""
    dr = dr_section(config)
    records = open_records(config)
    control = entry_control(config) if dr.entry is not None else None
    return MoveContext(
        records=records,
        history=History(StateStore(config.home / "state.db")),
        sites=ProjectSites(config, timeout=probe_timeout),
        positions=LinkPositions(config),
        traffic=EntryTraffic(control),
        clock_margin=dr.clock_margin,
        apply_timeout=apply_timeout,
        say=say if callable(say) else (lambda line: None),
        links=frozenset((link.source, link.target) for link in config.replication),
    )


def _database_errors(site: str, action: object) -> Any:
    try:
        return action()  # type: ignore[operator]
    except pymysql.MySQLError as exc:
        raise _refused(site, exc) from None


def _refused(site: str, exc: pymysql.MySQLError) -> HotsiteError:
    return HotsiteError(f"site {site!r}: its database refused ({exc.args[-1]})")
