"""A Query event's status variables: the DDL's sql_mode and character sets."""

from __future__ import annotations

import struct

from hotsite.replication.capture.query_context import QueryContext, parse_status_vars


def test_status_vars_as_mariadb_writes_them() -> None:
    block = (
        b"\x00"
        + struct.pack("<I", 0)  # flags2
        + b"\x01"
        + struct.pack("<Q", 2097152)  # sql_mode
        + b"\x06\x03std"  # catalog
        + b"\x04"
        + struct.pack("<HHH", 8, 8, 45)  # charsets
        + b"\x05\x06+00:00"  # time zone
        + b"\x0c\x02app\0other\0"  # updated databases
        + b"\x80"
        + b"\x01\x02\x03"  # MariaDB's high-resolution time
    )
    assert parse_status_vars(block) == QueryContext(2097152, 8, 8, 45)


def test_an_unknown_code_keeps_what_was_read_before_it() -> None:
    block = (
        b"\x01" + struct.pack("<Q", 5) + b"\xfa\x00\x00" + b"\x04" + struct.pack("<HHH", 1, 2, 3)
    )
    assert parse_status_vars(block) == QueryContext(5, None, None, None)
    assert QueryContext.from_list(QueryContext(5, 1, 2, 3).as_list()) == QueryContext(5, 1, 2, 3)
