"""Exporting an errant tail: every row change with its before and after images, and a
statement that would redo it, to files and to the old primary's conflict log.

Two files side by side: ``NAME.jsonl`` (one line per row change or DDL: the transaction's
GTID and commit time, the table, the kind, both images in the journal's encoding — exact
types, bytes in base64 — and the redo statement) and ``NAME.sql`` (the redo statements,
one transaction each, to replay by hand: ``mariadb < NAME.sql``). Both are written and
flushed to disk before anything of the tail is undone.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hotsite.private import open_private, private_dir
from hotsite.replication.apply.statements import row_literal
from hotsite.replication.conflicts.log import ensure_conflicts_table, record
from hotsite.replication.errant.tail import ErrantTail
from hotsite.replication.schema import quote
from hotsite.replication.transactions import ChangeKind, RowChange, Transaction, encode_row

KIND_WORDS = {ChangeKind.INSERT: "insert", ChangeKind.UPDATE: "update", ChangeKind.DELETE: "delete"}
Keys = dict[tuple[str, str], tuple[str, ...]]  # table → its primary key columns (() unknown)


def export_tail(
    tail: ErrantTail, directory: Path, name: str, conn: Any, keys: Keys
) -> tuple[Path, Path, int]:
    """Write the two files; returns their paths and the number of entries (row changes
    and DDL statements). ``conn`` escapes the literals of the SQL form."""
    private_dir(directory)
    jsonl, sql = directory / f"{name}.jsonl", directory / f"{name}.sql"
    lines: list[str] = []
    script = [f"-- errant tail of site {tail.site}: after {tail.start}, up to {tail.end}\n"]
    if tail.problem:
        script.append(f"-- NOT COMPLETE: {tail.problem}\n")
    for tx in tail.transactions:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(tx.commit_ts))
        script.append(f"\n-- transaction {tx.gtid}, committed {stamp} UTC\nSTART TRANSACTION;\n")
        for entry, statement in _entries(tx, conn, keys):
            lines.append(json.dumps({**entry, "sql": statement}, separators=(",", ":")))
            script.append(statement + ";\n")
        script.append("COMMIT;\n")
    _write_synced(jsonl, "".join(line + "\n" for line in lines))
    _write_synced(sql, "".join(script))
    return jsonl, sql, len(lines)


def log_tail(
    conn: Any, tail: ErrantTail, project: str, link_key: str, decision: str, keys: Keys
) -> int:
    """The tail in the site's conflict log, in a transaction of its own."""
    with conn.cursor() as cur:
        ensure_conflicts_table(cur)
        cur.execute("START TRANSACTION")
        count = log_entries(cur, tail, project, link_key, decision, keys)
        cur.execute("COMMIT")
    return count


def log_entries(
    cur: Any, tail: ErrantTail, project: str, link_key: str, decision: str, keys: Keys
) -> int:
    """One conflict log entry per row change (and DDL) of the tail, settled with
    ``decision`` (``undone`` or ``re-snapshotted``), in the caller's transaction (the
    table exists: ``ensure_conflicts_table`` first, outside it). Returns how many."""
    count = 0
    for tx in tail.transactions:
        if tx.ddl is not None:
            statement = tx.ddl if isinstance(tx.ddl, str) else tx.ddl.decode(errors="replace")
            record(
                cur, project, tail.site, link_key, tail.site, tx.gtid, tx.ddl_schema or "",
                {}, "errant ddl", None, None, {"statement": statement}, "failback", decision,
            )  # fmt: skip
            count += 1
        for change in tx.changes:
            record(
                cur, project, tail.site, link_key, tail.site, tx.gtid,
                f"{change.schema}.{change.table}", _key(change, keys),
                f"errant {KIND_WORDS[change.kind]}", None, change.before, change.after,
                "failback", decision,
            )  # fmt: skip
            count += 1
    return count


def _entries(tx: Transaction, conn: Any, keys: Keys) -> Iterator[tuple[dict[str, Any], str]]:
    base = {"gtid": tx.gtid, "commit_ts": tx.commit_ts}
    if tx.ddl is not None:
        statement = tx.ddl if isinstance(tx.ddl, str) else tx.ddl.decode(errors="replace")
        use = f"USE {quote(tx.ddl_schema)}; " if tx.ddl_schema else ""
        yield (
            {**base, "kind": "ddl", "schema": tx.ddl_schema, "statement": statement},
            (use + statement),
        )
    for change in tx.changes:
        entry = {
            **base,
            "kind": KIND_WORDS[change.kind],
            "schema": change.schema,
            "table": change.table,
            "before": _image(change.before),
            "after": _image(change.after),
        }
        yield entry, redo_statement(change, conn, keys)


def redo_statement(change: RowChange, conn: Any, keys: Keys) -> str:
    """The statement that makes the change again: by primary key where it is known."""
    table = f"{quote(change.schema)}.{quote(change.table)}"
    if change.kind == ChangeKind.INSERT:
        after = change.after or {}
        columns = ", ".join(quote(c) for c in after)
        return f"INSERT INTO {table} ({columns}) VALUES {row_literal(conn, after.values())}"
    where = _where(change.before or {}, keys.get((change.schema, change.table), ()), conn)
    if change.kind == ChangeKind.DELETE:
        return f"DELETE FROM {table} WHERE {where}"
    sets = ", ".join(f"{quote(c)} = {_literal(conn, v)}" for c, v in (change.after or {}).items())
    return f"UPDATE {table} SET {sets} WHERE {where}"


def _where(image: dict[str, Any], key: tuple[str, ...], conn: Any) -> str:
    columns = [c for c in key if c in image] if key else list(image)
    return " AND ".join(f"{quote(c)} <=> {_literal(conn, image[c])}" for c in columns)


def _literal(conn: Any, value: Any) -> str:
    return row_literal(conn, [value])[1:-1]


def _key(change: RowChange, keys: Keys) -> dict[str, Any]:
    image = change.before or change.after or {}
    key = keys.get((change.schema, change.table), ())
    return {c: image[c] for c in key if c in image} if key else dict(image)


def _image(row: dict[str, Any] | None) -> Any:
    """A row image as the journal encodes it (tagged exact types), as a JSON value."""
    text = encode_row(row)
    return None if text is None else json.loads(text)


def _write_synced(path: Path, text: str) -> None:
    """0600, and on disk before the caller goes on to undo what it describes."""
    fd = open_private(path)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
