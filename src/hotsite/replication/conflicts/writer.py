"""Apply a group of changes at a site that takes writes itself: conflicts caught, settled.

Each key's changes in the group collapse to its final state, as on a one-way link; but
first the target rows of all those keys are read with ``SELECT … FOR UPDATE`` in the
apply transaction (a plain read under REPEATABLE READ would let an application write
slip in between the check and the write: a lost update) and compared with what the
key's first change in the group expects: the before-image of an UPDATE or DELETE (all
its columns, or with ``detect: changed-columns`` only those the changes touched), no
row for an INSERT. A key that differs is a conflict: decide.py says which row wins, the
log records it in the same transaction, and the link goes on.

Values are compared in Python first (exact, cheap); a key that Python finds different is
asked of the server (``col <=> value``), which compares as the column's type and
collation do, so a float or a case-insensitive string is never a false conflict.

Where both sites keep row versions (rowversions.py) — the normal case — a key's
conflict is decided by versions instead: the change was made on the version the target
still holds, or it was not. Images then only say which columns differ (for the log and
for ``detect: changed-columns``). Keys whose changes carry no versions (a table created
since the agents started, a primary key changed by an UPDATE) are judged by images as
before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hotsite.config_conflicts import ConflictsConfig, TablePolicy
from hotsite.replication.apply import statements as sql
from hotsite.replication.conflicts import log
from hotsite.replication.conflicts.decide import INCOMING, PARKED, Sides, decide
from hotsite.replication.conflicts.versions import Held, ShadowBook, Span, newest, normalized
from hotsite.replication.origins import write_settlement
from hotsite.replication.rowversions import Version, VersionEntry
from hotsite.replication.schema import TableInfo, quote
from hotsite.replication.transactions import DELETE, INSERT, UPDATE, Row, RowChange

_CHUNK = 2000
Key = tuple[Any, ...]


@dataclass
class _KeyChanges:
    expect: Row | None  # the target row the first change expects (None: no row)
    first_kind: str
    before: Row | None  # the first change's before-image, for the log
    final: Row | None = None  # None: the key ends deleted
    changed: set[str] | None = field(default_factory=set)  # None: every column
    # Row versions: the one the first change was made on and the one the last made;
    # versioned: None until the first change, False once any change of the key came
    # without versions (then judged by images).
    base: Version | None = None
    base_life: int = 0
    new: Held | None = None
    versioned: bool | None = None


def _same(a: Any, b: Any) -> bool:
    """Exactly equal in Python (a False is checked again by the server)."""
    if a is None or b is None:
        return a is None and b is None
    return type(a) is type(b) and a == b


@dataclass
class GroupResult:
    conflicts: dict[str, int] = field(default_factory=dict)  # per table
    parked: int = 0


class ConflictWriter:
    def __init__(
        self,
        project: str,
        site: str,
        link_key: str,
        settings: ConflictsConfig,
        priority: list[str],
        table: Callable[[str, str], TableInfo],
    ) -> None:
        self.project = project
        self.site = site
        self.link_key = link_key
        self.settings = settings
        self.priority = tuple(priority)
        self.table = table
        self.shadows = ShadowBook(table)

    def apply(
        self,
        cur: Any,
        transactions: list[tuple[list[RowChange], list[VersionEntry]]],
        origin: str,
        origin_gtid: str,
    ) -> GroupResult:
        """Apply the changes of one group (from one origin; each transaction's changes with
        its row versions) in as few steps as their chains allow.

        Each key's changes collapse to one final state while each change starts where the
        one before it ended. Between two of the origin's transactions, though, the origin
        may have applied a change of this site's (a conflict it settled its way): its next
        change then starts from a row that its previous one did not leave. Collapsed, that
        change would be judged against the older row, and rejected although it was made on
        top of this site's own; so the group is cut there, and the part before it is
        settled first."""
        result = GroupResult()
        by_table: dict[tuple[str, str], dict[Key, _KeyChanges]] = {}
        for changes, entries in transactions:
            for change in changes:
                self.shadows.note(change.schema, change.table)
            spans = self.shadows.spans(cur, entries) if entries else {}
            seen: set[tuple[str, str, Key]] = set()
            for change in changes:
                info = self.table(change.schema, change.table)
                keys = by_table.setdefault((change.schema, change.table), {})
                key = _key_of(info, change)
                span, first = _span_of(spans, seen, info, change, key)
                if _breaks_chain(keys, info, change, key, span, first):
                    self._apply_collapsed(cur, by_table, origin, origin_gtid, result)
                    by_table = {}
                    keys = by_table.setdefault((change.schema, change.table), {})
                _collect(keys, info, change)
                _version(keys, info, change, key, span, first)
            notes = {k: v for k, v in spans.items() if k not in seen}
            if notes:  # versions moved without a row change (an UPDATE that changed nothing)
                self._apply_collapsed(cur, by_table, origin, origin_gtid, result)
                by_table = {}
                self._take_notes(cur, notes)
        self._apply_collapsed(cur, by_table, origin, origin_gtid, result)
        return result

    def take_versions(self, cur: Any, entries: list[VersionEntry]) -> None:
        """A resolution made by hand is taken as it is, and so are its versions."""
        for (schema, name), spans in _per_table(self.shadows.spans(cur, entries)).items():
            info = self.table(schema, name)
            if self.shadows.present(cur, info):
                versions = {key: (_made(span), span.deleted) for key, span in spans.items()}
                self.shadows.write(cur, info, versions)

    def _take_notes(self, cur: Any, notes: dict[tuple[str, str, Key], Span]) -> None:
        """A version note moves the key's version where the target still has the one the
        note was made on (else the target changed the row since: its own change carries
        its own version, and meets the origin's next change as a conflict)."""
        for (schema, name), spans in _per_table(notes).items():
            info = self.table(schema, name)
            if not self.shadows.present(cur, info):
                continue
            current = self.shadows.lock(cur, info, list(spans))
            moved = {
                key: (_made(span), span.deleted)
                for key, span in spans.items()
                if _version_of(current.get(normalized(key))) == span.base
            }
            self.shadows.write(cur, info, moved)

    def _apply_collapsed(
        self,
        cur: Any,
        by_table: dict[tuple[str, str], dict[Key, _KeyChanges]],
        origin: str,
        origin_gtid: str,
        result: GroupResult,
    ) -> None:
        sides = Sides(self.site, origin, self.priority)
        for (schema, name), keys in by_table.items():
            info = self.table(schema, name)
            table_name = f"{schema}.{name}"
            rule = self.settings.for_table(schema, name)
            current = self._lock_rows(cur, info, list(keys))
            shadowed = self.shadows.present(cur, info)
            versions = self.shadows.lock(cur, info, list(keys)) if shadowed else {}
            new_versions: dict[Key, tuple[Held, bool]] = {}
            deletes: list[Key] = []
            writes: list[Row] = []
            for key, kc in keys.items():
                row = current.get(normalized(key))
                merge = rule.detect == "changed-columns"
                by_version = shadowed and kc.versioned is True and kc.new is not None
                held = versions.get(normalized(key))
                merged = False
                if by_version:
                    conflicting, merged = self._version_conflict(
                        cur, info, key, kc, row, rule, held
                    )
                else:
                    conflicting = self._conflicting(cur, info, key, kc, row, rule)
                if conflicting is None:
                    self._settle(kc, row, None, deletes, writes, key, merge)
                    if by_version and kc.new is not None:
                        # merged column by column with a change of the target's own:
                        # the greater version, the same at both sites
                        new = newest(held, kc.new) if merged else kc.new
                        new_versions[key] = (new, kc.final is None)
                    continue
                decision = decide(
                    rule.policy,
                    sides,
                    incoming_deletes=kc.final is None,
                    target_missing=row is None,
                    newer=self._newer(cur, info, key, kc, row, rule),
                    lives=_lives(kc, held) if by_version else None,
                )
                self._settle(kc, row, (decision, conflicting), deletes, writes, key, merge)
                key_row = dict(zip(info.primary_key, key, strict=True))
                if by_version and decision == INCOMING and kc.new is not None:
                    new_versions[key] = (kc.new, kc.final is None)
                if not by_version and decision == INCOMING and row is not None and kc.final is None:
                    # A deletion that won over this site's own row: the origin may hold
                    # that row without having seen a conflict (its insert and delete had
                    # both finished there before the row arrived) and would keep it for
                    # ever. It deletes it too if it still holds exactly that row (settle,
                    # at the origin). A row that won needs no such note: the origin wrote
                    # it, and holds it or a later change that is on its way here.
                    write_settlement(cur, self.project, origin, table_name, key_row, row)
                log.record(
                    cur, self.project, self.site, self.link_key, origin, origin_gtid,
                    table_name, key_row, _kind(kc, row), row, kc.before, kc.final,
                    rule.policy, decision,
                )  # fmt: skip
                result.conflicts[table_name] = result.conflicts.get(table_name, 0) + 1
                result.parked += decision == PARKED
            self._write(cur, info, deletes, writes)
            if shadowed:
                self.shadows.write(cur, info, new_versions)

    def settle(self, cur: Any, settlements: list[list[Any]]) -> None:
        """Deletions the source decided over rows this site wrote: each row is deleted here
        when it is still the one the source deleted (else a later change of this site's
        is on its way there, and meets the deletion as a conflict of its own)."""
        for table_name, key_row, if_row in settlements:
            schema, name = table_name.split(".", 1)
            info = self.table(schema, name)
            key = tuple(key_row[c] for c in info.primary_key)
            row = self._lock_rows(cur, info, [key]).get(normalized(key))
            if row is not None and not self._differs(cur, info, key, row, if_row, list(if_row)):
                self._write(cur, info, [key], [])

    # --- detection -------------------------------------------------------------------

    def _lock_rows(self, cur: Any, info: TableInfo, keys: list[Key]) -> dict[Key, Row]:
        columns = [c.name for c in info.columns if not c.generated]
        names = ", ".join(quote(c) for c in columns)
        pk_at = [columns.index(c) for c in info.primary_key]
        rows: dict[Key, Row] = {}
        for start in range(0, len(keys), _CHUNK):
            where, args = sql.key_in(info, keys[start : start + _CHUNK])
            cur.execute(f"SELECT {names} FROM {info.qualified} WHERE {where} FOR UPDATE", args)
            for values in cur.fetchall():
                key = tuple(values[i] for i in pk_at)
                rows[normalized(key)] = dict(zip(columns, values, strict=True))
        return rows

    def _conflicting(
        self,
        cur: Any,
        info: TableInfo,
        key: Key,
        kc: _KeyChanges,
        row: Row | None,
        rule: TablePolicy,
    ) -> set[str] | None:
        """The columns in conflict (empty set: the row's presence), or None: no conflict."""
        if kc.expect is None:
            return set() if row is not None else None
        if row is None:
            return set()
        compared = list(kc.expect)
        if rule.detect == "changed-columns" and kc.changed is not None:
            compared = [c for c in compared if c in kc.changed]
        return self._differs(cur, info, key, row, kc.expect, compared) or None

    def _version_conflict(
        self,
        cur: Any,
        info: TableInfo,
        key: Key,
        kc: _KeyChanges,
        row: Row | None,
        rule: TablePolicy,
        held: Held | None,
    ) -> tuple[set[str] | None, bool]:
        """By versions: None when the change was made on the version the target holds.
        Otherwise a conflict, whatever the images say — a tombstone is a version like any
        other, and a row changed and changed back is a row changed (an UPDATE that
        changed nothing moves no version: rowversions' trigger) — except that with
        ``detect: changed-columns`` two changes of one row that touched different
        columns merge (True: merged)."""
        if _version_of(held) == kc.base:
            return None, False
        differing = self._conflicting(cur, info, key, kc, row, rule)
        if (
            rule.detect == "changed-columns"
            and not differing
            and row is not None
            and kc.expect is not None
            and kc.final is not None
            and self._merging(kc)
        ):
            return None, True
        return differing or set(), False

    def _differs(
        self, cur: Any, info: TableInfo, key: Key, row: Row, expect: Row, columns: list[str]
    ) -> set[str]:
        """The columns (of those the row has) where the target row is not ``expect``:
        compared in Python, and what Python finds different asked again of the server."""
        differing = {c for c in columns if c in row and not _same(row[c], expect[c])}
        return self._server_differs(cur, info, key, expect, differing) if differing else set()

    def _server_differs(
        self, cur: Any, info: TableInfo, key: Key, expect: Row, columns: set[str]
    ) -> set[str]:
        ordered = sorted(columns)
        tests = ", ".join(f"{quote(c)} <=> %s" for c in ordered)
        where = " AND ".join(f"{quote(c)} <=> %s" for c in info.primary_key)
        cur.execute(
            f"SELECT {tests} FROM {info.qualified} WHERE {where} FOR UPDATE",
            [sql.db_value(expect[c]) for c in ordered] + [sql.db_value(v) for v in key],
        )
        same = cur.fetchone() or ()
        return {c for c, equal in zip(ordered, same, strict=False) if not equal}

    def _newer(
        self,
        cur: Any,
        info: TableInfo,
        key: Key,
        kc: _KeyChanges,
        row: Row | None,
        rule: TablePolicy,
    ) -> int | None:
        """newest-wins: +1 when the incoming version column is greater, -1 less, 0 equal."""
        if rule.policy != "newest-wins" or kc.final is None or row is None or not rule.column:
            return None
        value = sql.db_value(kc.final.get(rule.column))
        where = " AND ".join(f"{quote(c)} <=> %s" for c in info.primary_key)
        column = quote(rule.column)
        cur.execute(
            f"SELECT CASE WHEN %s > {column} THEN 1 WHEN %s < {column} THEN -1 ELSE 0 END"
            f" FROM {info.qualified} WHERE {where}",
            [value, value] + [sql.db_value(v) for v in key],
        )
        found = cur.fetchone()
        return int(found[0]) if found and found[0] is not None else 0

    # --- writing ---------------------------------------------------------------------

    def _settle(
        self,
        kc: _KeyChanges,
        row: Row | None,
        conflict: tuple[str, set[str]] | None,
        deletes: list[Key],
        writes: list[Row],
        key: Key,
        merge: bool,
    ) -> None:
        """What the key becomes: the change's final state or the target's row, whole —
        or, with ``detect: changed-columns`` and no conflict, the target's row with the
        columns the change touched (two changes of different columns merge).

        A conflict is decided with whole rows under every detect: the other site, deciding
        the mirror image, takes the same whole row. Moving the change's untouched columns
        into a row that won a conflict made each site a mix of its own, and where a
        group was cut (a chain broken by this site's own change) the two mixes were not
        the same: the sites kept rows differing in a column."""
        decision = conflict[0] if conflict else INCOMING
        merge = merge and conflict is None and self._merging(kc)
        if decision != INCOMING:  # the target's row, or parked: the row stays
            return
        if kc.final is None:
            deletes.append(key)
        elif row is not None and merge and kc.changed is not None:
            writes.append({**row, **{c: kc.final[c] for c in kc.changed if c in kc.final}})
        else:
            writes.append(kc.final)

    def _merging(self, kc: _KeyChanges) -> bool:
        return kc.first_kind not in (INSERT, DELETE) and kc.changed is not None

    def _write(self, cur: Any, info: TableInfo, deletes: list[Key], writes: list[Row]) -> None:
        for start in range(0, len(deletes), _CHUNK):
            statement, args = sql.delete_many(info, deletes[start : start + _CHUNK])
            cur.execute(statement, args)
        by_columns: dict[tuple[str, ...], list[str]] = {}
        for row in writes:
            row = {c: v for c, v in row.items() if c not in info.generated}
            by_columns.setdefault(tuple(row), []).append(
                sql.row_literal(cur.connection, row.values())
            )
        for columns, values in by_columns.items():
            prefix, suffix = sql.upsert_parts(info.qualified, columns)
            for statement in sql.multi_row(prefix, values, suffix):
                cur.execute(statement)


def _key_of(info: TableInfo, change: RowChange) -> Key | None:
    """The key a change's version is of; None for an UPDATE that changes the key (two
    keys: judged by images)."""
    pk = info.primary_key
    if change.kind == INSERT:
        return tuple((change.after or {})[c] for c in pk)
    key = tuple((change.before or {})[c] for c in pk)
    if change.kind == UPDATE and key != tuple((change.after or {})[c] for c in pk):
        return None
    return key


def _per_table(spans: dict[tuple[str, str, Key], Span]) -> dict[tuple[str, str], dict[Key, Span]]:
    by_table: dict[tuple[str, str], dict[Key, Span]] = {}
    for (schema, name, key), span in spans.items():
        by_table.setdefault((schema, name), {})[key] = span
    return by_table


def _span_of(
    spans: dict[tuple[str, str, Key], Span],
    seen: set[tuple[str, str, Key]],
    info: TableInfo,
    change: RowChange,
    key: Key | None,
) -> tuple[Span | None, bool]:
    """The span of the change's key (``_key_of``) in its transaction, and whether this
    change is the transaction's first of that key (the one the span's base belongs to)."""
    if key is None:
        for image in (change.before, change.after):
            other = tuple((image or {})[c] for c in info.primary_key)
            seen.add((change.schema, change.table, other))
        return None, True
    name = (change.schema, change.table, key)
    first = name not in seen
    seen.add(name)
    return spans.get(name), first


def _version(
    keys: dict[Key, _KeyChanges],
    info: TableInfo,
    change: RowChange,
    key: Key | None,
    span: Span | None,
    first: bool,
) -> None:
    """Carry the change's versions into its key's collapsed state."""
    if key is None:  # a key change: both keys judged by images from here on
        for image in (change.before, change.after):
            kc = keys.get(tuple((image or {})[c] for c in info.primary_key))
            if kc is not None:
                kc.versioned = False
        return
    kc = keys[key]
    if not first:
        return  # the same transaction's later change of the key: one span covers both
    if span is None:
        kc.versioned = False
    elif kc.versioned is None:
        kc.base, kc.base_life, kc.new = span.base, span.base_life, _made(span)
        kc.versioned = True
    elif kc.versioned:
        kc.new = _made(span)


def _breaks_chain(
    keys: dict[Key, _KeyChanges],
    info: TableInfo,
    change: RowChange,
    key: Key | None,
    span: Span | None,
    first: bool,
) -> bool:
    """``change`` does not start where the group's changes of its key (``_key_of``) left
    the row: by versions where both have them, else by images."""
    pk = info.primary_key
    if key is not None:
        kc = keys.get(key)
        if kc is not None and kc.versioned is True and span is not None:
            return first and span.base != _version_of(kc.new)
        if kc is not None and not first:
            return False
    if change.kind == INSERT:
        kc = keys.get(tuple((change.after or {})[c] for c in pk))
        return kc is not None and kc.final is not None
    before = change.before or {}
    kc = keys.get(tuple(before[c] for c in pk))
    if kc is None:
        return False
    if kc.final is None:
        return True
    columns = [c.name for c in info.columns if not c.generated]
    return not all(_same(kc.final.get(c), before.get(c)) for c in columns)


def _collect(keys: dict[Key, _KeyChanges], info: TableInfo, change: RowChange) -> None:
    pk = info.primary_key
    if change.kind == INSERT:
        after = change.after or {}
        key = tuple(after[c] for c in pk)
        kc = keys.setdefault(key, _KeyChanges(None, INSERT, None, changed=None))
        kc.final = after
        kc.changed = None
    elif change.kind == DELETE:
        before = change.before or {}
        key = tuple(before[c] for c in pk)
        kc = keys.setdefault(key, _KeyChanges(before, DELETE, before, changed=None))
        kc.final = None
    else:
        before, after = change.before or {}, change.after or {}
        old_key, new_key = tuple(before[c] for c in pk), tuple(after[c] for c in pk)
        kc = keys.setdefault(old_key, _KeyChanges(before, change.kind, before))
        if old_key != new_key:  # a key change: the old key goes, the new one must be free
            kc.final, kc.changed = None, None
            moved = keys.setdefault(new_key, _KeyChanges(None, INSERT, None, changed=None))
            moved.final, moved.changed = after, None
            return
        kc.final = after
        if kc.changed is not None:
            kc.changed |= {c for c in after if c not in before or not _same(before[c], after[c])}


def _kind(kc: _KeyChanges, row: Row | None) -> str:
    if kc.expect is None:
        return "insert of an existing key"
    what = "delete" if kc.first_kind == DELETE else "update"
    return f"{what} of a {'missing' if row is None else 'changed'} row"


def _made(span: Span) -> Held:
    return Held(span.new, span.life)


def _version_of(held: Held | None) -> Version | None:
    return held.version if held is not None else None


def _lives(kc: _KeyChanges, held: Held | None) -> int:
    """+1 when the incoming change leaves the key in a later life (deleted or created
    again more often) than the target's, -1 earlier, 0 the same. No shadow row: the
    target's row predates versions (life 0), or the key never was (before life 0)."""
    mine = held.life if held is not None else (-1 if kc.expect is None else 0)
    theirs = kc.new.life if kc.new is not None else 0
    return (theirs > mine) - (theirs < mine)
