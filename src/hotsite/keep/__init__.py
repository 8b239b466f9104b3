"""Keeping sites as described: healing (a duty of the site agent), bursting (another).

Public API: ``HealDuty`` (the healing ladder at work), ``Ladder``/``Action`` (its
decisions), ``BurstDuty`` (a burst site brought up under load and torn down after),
``KeepRecords``, ``failed_services`` and ``clear_failed`` (what was done; services
healing gave up on), ``keep_duties`` (the agent's duties of this package).

keep sits on the dr floor: it drives blueprint (up, restart, replace, scale) and
traffic (the entry point), and writes its actions into dr's moves history.
"""

from hotsite.keep.burst import BurstDuty
from hotsite.keep.duties import keep_duties
from hotsite.keep.heal import HealDuty, site_deployment
from hotsite.keep.ladder import Action, Ladder
from hotsite.keep.records import KeepRecords, clear_failed, failed_services

__all__ = [
    "Action",
    "BurstDuty",
    "HealDuty",
    "KeepRecords",
    "Ladder",
    "clear_failed",
    "failed_services",
    "keep_duties",
    "site_deployment",
]
