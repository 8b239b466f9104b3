"""An old primary's errant tail (failback): read it from its binlog, export it, undo it."""

from hotsite.replication.errant.export import export_tail, log_tail
from hotsite.replication.errant.tail import ErrantTail, read_tail
from hotsite.replication.errant.undo import CannotUndo, keys_of, table_infos, undo_tail

__all__ = [
    "CannotUndo",
    "ErrantTail",
    "export_tail",
    "keys_of",
    "log_tail",
    "read_tail",
    "table_infos",
    "undo_tail",
]
