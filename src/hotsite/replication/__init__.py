"""Data synchronization: capture → ship → journal at the target → apply, exactly once.

Public API: ``LinkAgent`` (one link at work: snapshot, stream), ``LinkStatus``,
``link_lock`` (one agent per link), ``link_report`` (positions and lag per stage),
``GtidState`` (MariaDB GTID positions), ``ChangeKind`` and ``Transaction`` (what is
replicated), and verify: ``verify_link``, ``VerifyOptions``, ``VerifyProgress``,
``VerifyReport``, ``TableResult``, ``IDENTICAL``, ``key_text``.

The front is lazy: a name's module is imported on first use. The capture process and
the applier import only the modules they need; an eager front would load the whole
pipeline (binlog library, SQL parser) into each of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hotsite.lazy import lazy_names

if TYPE_CHECKING:
    from hotsite.replication.agent import LinkAgent, LinkStatus, link_lock
    from hotsite.replication.conflicts import (
        Conflict,
        conflicts_logged,
        get_conflict,
        list_conflicts,
        resolve_conflict,
    )
    from hotsite.replication.gtid import GtidState
    from hotsite.replication.status import link_report
    from hotsite.replication.transactions import ChangeKind, Transaction
    from hotsite.replication.verify import (
        IDENTICAL,
        TableResult,
        VerifyOptions,
        VerifyProgress,
        VerifyReport,
        key_text,
        verify_link,
    )

_HOME = {
    "LinkAgent": "agent",
    "LinkStatus": "agent",
    "link_lock": "agent",
    "ChangeKind": "transactions",
    "Transaction": "transactions",
    "GtidState": "gtid",
    "link_report": "status",
    "IDENTICAL": "verify",
    "TableResult": "verify",
    "VerifyOptions": "verify",
    "VerifyProgress": "verify",
    "VerifyReport": "verify",
    "key_text": "verify",
    "verify_link": "verify",
    "Conflict": "conflicts",
    "get_conflict": "conflicts",
    "list_conflicts": "conflicts",
    "resolve_conflict": "conflicts",
    "conflicts_logged": "conflicts",
}
__all__ = [
    "IDENTICAL",
    "ChangeKind",
    "Conflict",
    "GtidState",
    "LinkAgent",
    "LinkStatus",
    "TableResult",
    "Transaction",
    "VerifyOptions",
    "VerifyProgress",
    "VerifyReport",
    "conflicts_logged",
    "get_conflict",
    "key_text",
    "link_lock",
    "link_report",
    "list_conflicts",
    "resolve_conflict",
    "verify_link",
]


__getattr__ = lazy_names(__name__, _HOME)
