"""Moves between sites (failover, relocate, failback), the record, leases and fencing.

The front is lazy, like replication's: a name's module is imported on first use (the
controller's HTTP server is not loaded by a command that only reads the record).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hotsite.lazy import lazy_names

if TYPE_CHECKING:
    from hotsite.dr.adapters import ProjectSites, move_context
    from hotsite.dr.controller import ControllerState, serve, server_context
    from hotsite.dr.detector import Detector
    from hotsite.dr.entry import entry_control, taking_traffic
    from hotsite.dr.failback_move import FailbackResult, failback
    from hotsite.dr.fence_duty import FenceDuty
    from hotsite.dr.history import History
    from hotsite.dr.lease import LeaseKeeper
    from hotsite.dr.moves import MoveResult, failover, relocate, resume
    from hotsite.dr.peers import PeerReporter
    from hotsite.dr.project import (
        control_tls,
        controller_client,
        controller_listen,
        controller_url,
        dr_section,
        link_gate,
        move_lock,
        open_records,
        site_fence,
    )
    from hotsite.dr.record import Record
    from hotsite.dr.report import dr_report
    from hotsite.dr.resync import ProjectResync
    from hotsite.dr.token import load_token
    from hotsite.dr.watch import watch

_HOME = {
    "ControllerState": "controller",
    "Detector": "detector",
    "FailbackResult": "failback_move",
    "failback": "failback_move",
    "ProjectResync": "resync",
    "FenceDuty": "fence_duty",
    "History": "history",
    "LeaseKeeper": "lease",
    "MoveResult": "moves",
    "PeerReporter": "peers",
    "ProjectSites": "adapters",
    "Record": "record",
    "control_tls": "project",
    "controller_client": "project",
    "controller_listen": "project",
    "controller_url": "project",
    "dr_report": "report",
    "dr_section": "project",
    "entry_control": "entry",
    "link_gate": "project",
    "failover": "moves",
    "load_token": "token",
    "move_context": "adapters",
    "move_lock": "project",
    "open_records": "project",
    "relocate": "moves",
    "resume": "moves",
    "serve": "controller",
    "server_context": "controller",
    "site_fence": "project",
    "taking_traffic": "entry",
    "watch": "watch",
}
__all__ = [
    "ControllerState",
    "Detector",
    "FailbackResult",
    "FenceDuty",
    "History",
    "LeaseKeeper",
    "MoveResult",
    "PeerReporter",
    "ProjectResync",
    "ProjectSites",
    "Record",
    "control_tls",
    "controller_client",
    "controller_listen",
    "controller_url",
    "dr_report",
    "dr_section",
    "entry_control",
    "failback",
    "failover",
    "link_gate",
    "load_token",
    "move_context",
    "move_lock",
    "open_records",
    "relocate",
    "resume",
    "serve",
    "server_context",
    "site_fence",
    "taking_traffic",
    "watch",
]


__getattr__ = lazy_names(__name__, _HOME)
