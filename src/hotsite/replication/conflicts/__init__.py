"""Conflicts between sites that both take writes: detected on apply, settled by a stated
policy, logged at the site that saw them (docs/conflicts.md)."""

from hotsite.replication.conflicts.checks import check_key_ranges, check_policy_columns
from hotsite.replication.conflicts.decide import Sides, decide
from hotsite.replication.conflicts.log import (
    Conflict,
    conflicts_logged,
    get_conflict,
    list_conflicts,
)
from hotsite.replication.conflicts.resolve import resolve
from hotsite.replication.conflicts.writer import ConflictWriter

resolve_conflict = resolve

__all__ = [
    "Conflict",
    "ConflictWriter",
    "Sides",
    "check_key_ranges",
    "check_policy_columns",
    "conflicts_logged",
    "decide",
    "get_conflict",
    "list_conflicts",
    "resolve",
    "resolve_conflict",
]
