"""Which tables each site has, and whether their definitions agree.

Rows are compared only between tables with the same columns (names, order, types,
nullability, collation) and the same primary key; anything else is reported as a
schema difference, because row hashes of differently shaped tables cannot agree.
"""

from __future__ import annotations

from hotsite.replication.schema import TableInfo


def schema_differences(source: TableInfo, target: TableInfo) -> list[str]:
    """Human-readable differences between two definitions of one table; [] when equal."""
    found: list[str] = []
    theirs = {c.name: c for c in target.columns}
    mine = {c.name: c for c in source.columns}
    missing = [c.name for c in source.columns if c.name not in theirs]
    extra = [c.name for c in target.columns if c.name not in mine]
    if missing:
        found.append(f"columns missing on target: {', '.join(missing)}")
    if extra:
        found.append(f"columns only on target: {', '.join(extra)}")
    for column in source.columns:
        other = theirs.get(column.name)
        if other is None:
            continue
        if column.column_type != other.column_type:
            found.append(f"{column.name}: {column.column_type} vs {other.column_type}")
        if column.nullable != other.nullable:
            found.append(
                f"{column.name}: {'NULL' if column.nullable else 'NOT NULL'}"
                f" vs {'NULL' if other.nullable else 'NOT NULL'}"
            )
        if column.collation != other.collation:
            found.append(f"{column.name}: collation {column.collation} vs {other.collation}")
    common = [c for c in (c.name for c in source.columns) if c in theirs]
    if not missing and not extra and common != [c.name for c in target.columns]:
        found.append("column order differs")
    if source.primary_key != target.primary_key:
        found.append(
            f"primary key ({', '.join(source.primary_key)}) vs ({', '.join(target.primary_key)})"
        )
    return found
