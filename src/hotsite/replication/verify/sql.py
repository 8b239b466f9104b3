"""SQL for verify: row images hashed server-side, primary-key ranges, key lists.

Only hashes and counts cross the network while scanning; rows are fetched only for the
few keys that differ. The row image is ``CONCAT_WS('#', col, …)`` with

- a NULL marker string (``ISNULL`` of each nullable column), because ``CONCAT_WS``
  skips NULLs: NULL and '' must not hash alike;
- the byte length of every string/binary column but the last, so that ('a#', 'b') and
  ('a', '#b') do not hash alike;
- string columns cast to BINARY when a table mixes collations: the hash is over the
  stored bytes (so 'a' and 'A' differ under a case-insensitive collation, as they
  must), and ``CONCAT_WS`` never meets an "illegal mix of collations".

Chunks compare ``COUNT(*)`` and ``BIT_XOR`` of the square of a 32-bit CRC per row
(CRC32C where the server has it: hardware-accelerated, ~2x faster than CRC32); rows
compare an MD5 each.
"""

from __future__ import annotations

from typing import Any

from hotsite.replication.schema import TableInfo, quote
from hotsite.replication.transactions import Key

_STRINGS = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"}
_BINARIES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}


def row_image(shape: TableInfo) -> str:
    """The SQL expression whose hash identifies a row's content."""
    strings = [c for c in shape.columns if c.data_type in _STRINGS | _BINARIES | {"json"}]
    collations = {c.collation for c in shape.columns if c.data_type in _STRINGS}
    cast = len(collations) > 1
    parts = []
    for column in shape.columns:
        name = quote(column.name)
        if cast and column.data_type in _STRINGS:
            name = f"CAST({name} AS BINARY)"
        parts.append(name)
    # The lengths of all string columns but one fix every boundary (numbers and markers
    # never contain '#'); each LENGTH costs ~15% of the scan, so not one more.
    parts += [f"LENGTH({quote(c.name)})" for c in strings[:-1]]
    nullable = [f"ISNULL({quote(c.name)})" for c in shape.columns if c.nullable]
    if nullable:
        parts.append(f"CONCAT({', '.join(nullable)})")
    return f"CONCAT_WS('#', {', '.join(parts)})"


def range_where(
    key: tuple[str, ...], lower: Key | None, upper: Key | None
) -> tuple[str, list[Any]]:
    """``lower < key <= upper`` as index-friendly SQL (either end may be open).

    Row constructors like ``(a, b) > (1, 2)`` are not always range-optimised, so
    composite keys are expanded: ``a > 1 OR (a = 1 AND b > 2)``.
    """
    clauses: list[str] = []
    args: list[Any] = []
    if lower is not None:
        sql, values = _compare(key, lower, ">", ">")
        clauses.append(sql)
        args += values
    if upper is not None:
        sql, values = _compare(key, upper, "<", "<=")
        clauses.append(sql)
        args += values
    return (" AND ".join(clauses) or "1=1"), args


def _compare(key: tuple[str, ...], bound: Key, strict: str, last: str) -> tuple[str, list[Any]]:
    terms: list[str] = []
    args: list[Any] = []
    for i, column in enumerate(key):
        equal = [f"{quote(c)} = %s" for c in key[:i]]
        op = last if i == len(key) - 1 else strict
        terms.append("(" + " AND ".join([*equal, f"{quote(column)} {op} %s"]) + ")")
        args += [*bound[:i], bound[i]]
    return "(" + " OR ".join(terms) + ")", args


def keys_in(key: tuple[str, ...], keys: list[Key]) -> tuple[str, list[Any]]:
    """``key IN (…)`` for one or many key columns."""
    if len(key) == 1:
        return f"{quote(key[0])} IN ({', '.join(['%s'] * len(keys))})", [k[0] for k in keys]
    row = "(" + ", ".join(["%s"] * len(key)) + ")"
    cols = ", ".join(quote(c) for c in key)
    return f"({cols}) IN ({', '.join([row] * len(keys))})", [v for k in keys for v in k]


# CRC is linear: the same bit change at the same offset of two same-length rows changes
# their CRCs by the same amount, so a plain BIT_XOR of CRCs cancels such pairs (two rows
# with status 'a' -> 'b' in one chunk look unchanged). Squaring each 32-bit CRC (exact in
# 64 bits) breaks the linearity at no measurable cost. The derived table is what makes
# the server compute each CRC once; its LIMIT keeps it from being merged away.
_NO_LIMIT = "18446744073709551615"


def integer_key(shape: TableInfo) -> bool:
    """A one-column integer key: chunks can be planned as key ranges, no index walk."""
    if len(shape.primary_key) != 1:
        return False
    [column] = [c for c in shape.columns if c.name == shape.primary_key[0]]
    return column.data_type in {"tinyint", "smallint", "mediumint", "int", "bigint"}


def chunk_checksum_sql(shape: TableInfo, hash_fn: str, where: str) -> str:
    return (
        f"SELECT COUNT(*), COALESCE(BIT_XOR(h * h), 0) FROM (SELECT {hash_fn}({row_image(shape)})"
        f" AS h FROM {shape.qualified} FORCE INDEX (PRIMARY) WHERE {where} LIMIT {_NO_LIMIT})"
        " AS chunk"
    )


def next_chunk_sql(shape: TableInfo, hash_fn: str, where: str, limit: int) -> str:
    """The next ``limit`` rows after a bound, checksummed in one pass over the index.

    With a one-column key the chunk's last key comes out of the same pass (``MAX``),
    which saves a second walk over the index (~40% of the source's time); composite
    keys need ``nth_key_sql`` for it.
    """
    keys = ", ".join(quote(c) for c in shape.primary_key)
    single = len(shape.primary_key) == 1
    last = ", MAX(k0)" if single else ""
    inner_key = f"{quote(shape.primary_key[0])} AS k0, " if single else ""
    return (
        f"SELECT COUNT(*), COALESCE(BIT_XOR(h * h), 0){last} FROM (SELECT {inner_key}"
        f"{hash_fn}({row_image(shape)}) AS h FROM {shape.qualified} FORCE INDEX (PRIMARY)"
        f" WHERE {where} ORDER BY {keys} LIMIT {int(limit)}) AS chunk"
    )


def key_span_sql(shape: TableInfo, where: str = "1=1") -> str:
    key = quote(shape.primary_key[0])
    return f"SELECT MIN({key}), MAX({key}) FROM {shape.qualified} WHERE {where}"


def bucket_checksums_sql(shape: TableInfo, hash_fn: str, where: str, cuts: int) -> str:
    """Checksums of sub-ranges split at ``cuts`` keys (their values are the first ``%s``
    arguments): bucket i holds the keys above i cuts, compared by the server (row
    constructors for composite keys, so collations decide). One pass splits a range
    ``cuts + 1`` ways."""
    keys = ", ".join(quote(c) for c in shape.primary_key)
    row = f"({keys})" if len(shape.primary_key) > 1 else keys
    cut = "(" + ", ".join(["%s"] * len(shape.primary_key)) + ")"
    bucket = " + ".join([f"({row} > {cut})"] * cuts) or "0"
    return (
        f"SELECT {bucket} AS b, COUNT(*), COALESCE(BIT_XOR(h * h), 0) FROM (SELECT {keys},"
        f" {hash_fn}({row_image(shape)}) AS h FROM {shape.qualified} FORCE INDEX (PRIMARY)"
        f" WHERE {where} LIMIT {_NO_LIMIT}) AS chunk GROUP BY b"
    )


def count_sql(shape: TableInfo, where: str) -> str:
    return f"SELECT COUNT(*) FROM {shape.qualified} FORCE INDEX (PRIMARY) WHERE {where}"


def cut_keys_sql(shape: TableInfo, where: str, step: int) -> str:
    """Every ``step``-th key of a range in key order: cut points for any kind of key."""
    keys = ", ".join(quote(c) for c in shape.primary_key)
    return (
        f"SELECT {keys} FROM (SELECT {keys}, ROW_NUMBER() OVER (ORDER BY {keys}) AS rn"
        f" FROM {shape.qualified} FORCE INDEX (PRIMARY) WHERE {where}) AS ranked"
        f" WHERE MOD(rn, {int(step)}) = 0 ORDER BY {keys}"
    )


def nth_key_sql(shape: TableInfo, where: str, offset: int) -> str:
    keys = ", ".join(quote(c) for c in shape.primary_key)
    return (
        f"SELECT {keys} FROM {shape.qualified} FORCE INDEX (PRIMARY) WHERE {where}"
        f" ORDER BY {keys} LIMIT 1 OFFSET {int(offset)}"
    )


def row_hashes_sql(shape: TableInfo, where: str) -> str:
    keys = ", ".join(quote(c) for c in shape.primary_key)
    return (
        f"SELECT {keys}, MD5({row_image(shape)}) FROM {shape.qualified} FORCE INDEX (PRIMARY)"
        f" WHERE {where}"
    )


def rows_sql(shape: TableInfo, where: str) -> str:
    cols = ", ".join(quote(c.name) for c in shape.columns)
    return f"SELECT {cols} FROM {shape.qualified} WHERE {where}"
