"""What of a source transaction the target can take, decided before any row is written.

- Generated columns (VIRTUAL or STORED) are computed by the target: their values are
  dropped from the row images (a write to them is an error in strict mode). MariaDB allows
  no primary key on a generated column.
- A table without a primary key (created on the source while the link runs) cannot be
  applied exactly: its changes are left out and counted per table, and the rest of the
  transaction goes on. The count is kept with the applied position and shown by
  ``hotsite status``; the way out is to add a primary key or exclude the table.
"""

from __future__ import annotations

from collections.abc import Callable

from hotsite.replication.schema import TableInfo
from hotsite.replication.transactions import RowChange, Transaction

TableKey = tuple[str, str]


def prepare(
    tx: Transaction,
    table: Callable[[str, str], TableInfo | None],
    skipped: dict[str, int],
) -> list[str]:
    """Trim ``tx.changes`` in place; count left-out changes into ``skipped``; return the
    tables whose changes were left out for the first time (to be reported)."""
    if not tx.changes:
        return []
    keyless: set[TableKey] = set()
    generated: dict[TableKey, frozenset[str]] = {}
    for key in {(c.schema, c.table) for c in tx.changes}:
        info = table(*key)
        if info is None:
            keyless.add(key)
        elif info.generated:
            generated[key] = info.generated - set(info.primary_key)
    if not keyless and not generated:
        return []
    first_time = []
    kept: list[RowChange] = []
    for change in tx.changes:
        key = (change.schema, change.table)
        if key in keyless:
            name = f"{change.schema}.{change.table}"
            if name not in skipped:
                first_time.append(name)
            skipped[name] = skipped.get(name, 0) + 1
            continue
        drop = generated.get(key)
        if drop:
            change = RowChange(
                change.kind,
                change.schema,
                change.table,
                _without(change.before, drop),
                _without(change.after, drop),
            )
        kept.append(change)
    tx.changes = kept
    return first_time


def _without(row: dict[str, object] | None, columns: frozenset[str]) -> dict[str, object] | None:
    if row is None:
        return None
    return {name: value for name, value in row.items() if name not in columns}
