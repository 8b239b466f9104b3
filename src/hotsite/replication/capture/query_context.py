"""The session a statement ran in, from a binlog Query event's status variables.

A DDL statement means what its session made it mean: ``sql_mode`` decides whether a zero
date or a truncated default is accepted, the client character set how the statement's
bytes read, the server collation the default of a new schema. A native replica applies
each statement in its original session context; apply does the same with these values.
Why by hand: python-mysql-replication parses them only inside its own event objects.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Status variable codes (sql/log_event.h) and the fixed size of each value.
_FIXED = {0: 4, 1: 8, 3: 4, 4: 6, 7: 2, 8: 2, 9: 8, 10: 4, 13: 3, 128: 3, 129: 8}
_SQL_MODE, _CHARSET = 1, 4
_CATALOG, _TIME_ZONE, _CATALOG_NZ, _INVOKER, _UPDATED_DBS = 2, 5, 6, 11, 12


@dataclass(frozen=True, slots=True)
class QueryContext:
    sql_mode: int | None = None
    character_set_client: int | None = None  # collation ids, as the server sets them
    collation_connection: int | None = None
    collation_server: int | None = None

    def as_list(self) -> list[int | None]:
        return [
            self.sql_mode,
            self.character_set_client,
            self.collation_connection,
            self.collation_server,
        ]

    @classmethod
    def from_list(cls, values: list[int | None] | None) -> QueryContext | None:
        return cls(*values) if values else None


def parse_status_vars(block: bytes) -> QueryContext:
    """The values hotsite needs; parsing stops at a code it does not know (its length
    is unknown), keeping what was read before it."""
    sql_mode = client = connection = server = None
    pos, end = 0, len(block)
    while pos < end:
        code = block[pos]
        pos += 1
        if code == _SQL_MODE:
            (sql_mode,) = struct.unpack_from("<Q", block, pos)
        elif code == _CHARSET:
            client, connection, server = struct.unpack_from("<HHH", block, pos)
        if code in _FIXED:
            pos += _FIXED[code]
        elif code == _CATALOG:
            pos += 1 + block[pos] + 1
        elif code in (_TIME_ZONE, _CATALOG_NZ):
            pos += 1 + block[pos]
        elif code == _INVOKER:
            pos += 1 + block[pos]
            pos += 1 + block[pos]
        elif code == _UPDATED_DBS:
            count = block[pos]
            pos += 1
            if count != 254:
                for _ in range(count):
                    pos = block.index(b"\0", pos) + 1
        else:
            break
    return QueryContext(sql_mode, client, connection, server)
