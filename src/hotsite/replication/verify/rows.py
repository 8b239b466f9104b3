"""Row-level reads for the comparison: hashes per key, whole rows for naming the
differing columns, and where a key falls relative to a chunk's bounds."""

from __future__ import annotations

from typing import Any

from hotsite.replication.schema import TableInfo
from hotsite.replication.transactions import Key
from hotsite.replication.verify import sql
from hotsite.replication.verify.positions import Site
from hotsite.replication.verify.report import DIFFERENT, RowDiff

ROW_DETAIL_BATCH = 500  # keys per query when fetching whole rows


def row_hashes(site: Site, shape: TableInfo, where: str, args: list[Any]) -> dict[Key, str]:
    """MD5 of every row of a range, by key."""
    width = len(shape.primary_key)
    rows = site.query(sql.row_hashes_sql(shape, where), args)
    return {tuple(row[:width]): row[width] for row in rows}


def describe(
    source: Site, target: Site, shape: TableInfo, settled: list[tuple[Key, str]], budget: int
) -> list[RowDiff]:
    """RowDiffs, naming the differing columns of up to ``budget`` rows (read by the
    callers' open snapshots, so as of the same positions as the hashes)."""
    different = [key for key, kind in settled if kind == DIFFERENT]
    columns: dict[Key, tuple[str, ...]] = {}
    for start in range(0, min(len(different), max(budget, 0)), ROW_DETAIL_BATCH):
        batch = different[start : start + ROW_DETAIL_BATCH]
        mine, theirs = fetch_rows(source, shape, batch), fetch_rows(target, shape, batch)
        for key in batch:
            a, b = mine.get(key), theirs.get(key)
            if a is not None and b is not None:
                columns[key] = tuple(
                    c.name for c, x, y in zip(shape.columns, a, b, strict=True) if x != y
                )
    return [RowDiff(key, kind, columns.get(key, ())) for key, kind in settled]


def fetch_rows(site: Site, shape: TableInfo, keys: list[Key]) -> dict[Key, tuple[Any, ...]]:
    names = [c.name for c in shape.columns]
    positions = [names.index(k) for k in shape.primary_key]
    where, args = sql.keys_in(shape.primary_key, keys)
    rows = site.query(sql.rows_sql(shape, where), args)
    return {tuple(row[i] for i in positions): tuple(row) for row in rows}


def orderable(key: Key) -> bool:
    """Whether Python orders this key as the server does (strings follow collations)."""
    return not any(isinstance(v, (str, bytes)) for v in key)


def in_range(key: Key, lower: Key | None, upper: Key | None) -> bool:
    """Whether ``lower < key <= upper``; True when Python cannot order it like the server,
    which only costs another look at the key."""
    if not orderable(key):
        return True
    try:
        return (lower is None or key > lower) and (upper is None or key <= upper)
    except TypeError:
        return True
