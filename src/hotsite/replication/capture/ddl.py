"""What a DDL statement from the binlog means for a link: replicate, rewrite, skip or stop.

Statements are parsed with sqlglot's MySQL dialect (MariaDB's DDL is a superset of what
it needs here) instead of regular expressions: leading comments, quoted names with
``-`` or spaces, ``TRUNCATE t`` without ``TABLE``, unqualified ``CREATE INDEX … ON t``
and the binlog's ``CREATE ALGORITHM=… DEFINER=… VIEW`` form all come out as the tables
they name. ``RENAME TABLE`` (which sqlglot keeps as an opaque command) is read from
sqlglot's tokens.

The link's table patterns are applied to **every** table a statement names:

- all selected → replicate the statement as it is;
- none selected → skip it (another application's tables);
- some selected → ``DROP TABLE`` and ``RENAME TABLE`` are rewritten to the selected part
  (a table renamed out of the link is dropped on the target); a table renamed *into* the
  link would arrive without its rows, and any other mixed statement cannot be cut in
  two: both stop the link at the event with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.tokens import TokenType

from hotsite.replication.schema import quote

# sqlglot warns on every statement it keeps as an opaque command; we decide those ourselves.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

REPLICATE, SKIP, STOP = "replicate", "skip", "stop"
Matches = Callable[[str, str], bool]
Name = tuple[str, str]

# Object kinds whose DDL is replicated; users, grants, databases, routines, events and
# triggers are site-specific (a trigger would fire again on the target for rows the
# source's trigger already changed, and those changes arrive as row images).
_TABLE_KINDS = {"TABLE", "INDEX", "VIEW"}


@dataclass(frozen=True)
class DdlDecision:
    action: str  # REPLICATE, SKIP or STOP
    statement: str = ""  # what to run on the target (maybe rewritten)
    reason: str = ""  # why it stops


def classify(query: str, default_schema: str, matches: Matches) -> DdlDecision:
    """Decide what a binlog Query event that is not BEGIN/COMMIT means for the link."""
    head = _first_words(query)
    if head[:1] == ["RENAME"]:
        return _rename(query, default_schema, matches)
    if not head or head[0] not in {"CREATE", "ALTER", "DROP", "TRUNCATE"}:
        return DdlDecision(SKIP)
    if _SITE_SPECIFIC & set(head) and "VIEW" not in head and "TABLE" not in head[:3]:
        return DdlDecision(SKIP)
    try:
        tree = sqlglot.parse_one(query, read="mysql")
    except ParseError:
        tree = None
    if tree is None or isinstance(tree, exp.Command):
        return _unparsed(query, head, default_schema, matches)
    if isinstance(tree, exp.TruncateTable):
        return _all_or_nothing(query, _names(tree.expressions, default_schema), matches)
    kind = str(tree.args.get("kind") or "").upper()
    if kind == "SEQUENCE":
        return _refuse_kind(query, tree, default_schema, matches, "sequences are not replicated")
    if kind not in _TABLE_KINDS:
        return DdlDecision(SKIP)
    engine = next((str(e.this).upper() for e in tree.find_all(exp.EngineProperty)), "INNODB")
    if engine != "INNODB" and not isinstance(tree, exp.Drop):
        return _refuse_kind(
            query,
            tree,
            default_schema,
            matches,
            f"engine {engine} is not transactional: its changes cannot be applied exactly once",
        )
    if _unlogged_fk_action(tree):
        return _refuse_kind(
            query,
            tree,
            default_schema,
            matches,
            "it adds a foreign key whose CASCADE / SET NULL changes MariaDB does not log",
        )
    if isinstance(tree, exp.Drop) and kind == "TABLE":
        return _drop_tables(query, tree, default_schema, matches)
    if isinstance(tree, exp.Alter):
        return _alter(query, tree, default_schema, matches)
    return _all_or_nothing(query, _objects(tree, default_schema), matches)


def _unlogged_fk_action(tree: Any) -> bool:
    for reference in tree.find_all(exp.Reference):
        for option in reference.args.get("options") or []:
            text = str(option).upper()
            if "CASCADE" in text or "SET NULL" in text or "SET DEFAULT" in text:
                return True
    return False


def _refuse_kind(
    query: str, tree: Any, default_schema: str, matches: Matches, reason: str
) -> DdlDecision:
    """Stop the link for a statement about the link's tables that hotsite cannot follow."""
    names = _objects(tree, default_schema)
    if names and not any(matches(s, t) for s, t in names):
        return DdlDecision(SKIP)
    return DdlDecision(STOP, reason=reason)


def _objects(tree: Any, default_schema: str) -> list[Name]:
    """The tables a CREATE/DROP names as its object (not those its SELECT reads)."""
    target = tree.this
    if isinstance(target, exp.Schema):  # CREATE TABLE t (columns…)
        target = target.this
    if isinstance(tree, exp.Create) and str(tree.args.get("kind")).upper() == "INDEX":
        table = tree.this.args.get("table") if tree.this is not None else None
        return _names([table], default_schema) if table is not None else []
    if isinstance(tree, exp.Drop) and str(tree.args.get("kind")).upper() == "INDEX":
        on = tree.args.get("cluster")
        return _names([on.this], default_schema) if on is not None else []
    if isinstance(tree, exp.Drop):
        return _names(list(tree.args.get("tables") or [target]), default_schema)
    return _names([target], default_schema)


def _names(nodes: list[exp.Expression | None], default_schema: str) -> list[Name]:
    names: list[Name] = []
    for node in nodes:
        if isinstance(node, exp.Table):
            names.append((node.db or default_schema, node.name))
    return names


def _all_or_nothing(query: str, names: list[Name], matches: Matches) -> DdlDecision:
    if not names:
        return DdlDecision(
            STOP,
            reason="the statement names no table hotsite can recognise, so whether it"
            " belongs to the link is unknown",
        )
    selected = [bool(matches(s, t)) for s, t in names]
    if all(selected):
        return DdlDecision(REPLICATE, query)
    if not any(selected):
        return DdlDecision(SKIP)
    inside = ", ".join(f"{s}.{t}" for (s, t), sel in zip(names, selected, strict=True) if sel)
    outside = ", ".join(f"{s}.{t}" for (s, t), sel in zip(names, selected, strict=True) if not sel)
    return DdlDecision(
        STOP,
        reason=f"it names tables inside the link ({inside}) and outside it ({outside})",
    )


def _drop_tables(query: str, tree: exp.Drop, default_schema: str, matches: Matches) -> DdlDecision:
    if tree.args.get("temporary"):
        return DdlDecision(SKIP)  # temporary tables never reach row-based replication
    names = _names(list(tree.args.get("tables") or [tree.this]), default_schema)
    kept = [n for n in names if matches(*n)]
    if len(kept) == len(names):
        return DdlDecision(REPLICATE, query)
    if not kept:
        return DdlDecision(SKIP)
    listed = ", ".join(f"{quote(s)}.{quote(t)}" for s, t in kept)
    return DdlDecision(REPLICATE, f"DROP TABLE IF EXISTS {listed}")


def _alter(query: str, tree: exp.Alter, default_schema: str, matches: Matches) -> DdlDecision:
    names = _names([tree.this], default_schema)
    renamed = [a for a in tree.args.get("actions") or [] if isinstance(a, exp.AlterRename)]
    if not renamed or not names:
        return _all_or_nothing(query, names, matches)
    new = renamed[-1].this
    new_name = (new.db or names[0][0], new.name) if isinstance(new, exp.Table) else names[0]
    return _rename_pairs(query, [(names[0], new_name)], matches, rebuilt=False)


def _rename(query: str, default_schema: str, matches: Matches) -> DdlDecision:
    pairs = _rename_pairs_from_tokens(query, default_schema)
    if pairs == []:
        return DdlDecision(SKIP)
    if pairs is None:
        return _unparsed(query, ["RENAME", "TABLE"], default_schema, matches)
    return _rename_pairs(query, pairs, matches, rebuilt=True)


def _rename_pairs(
    query: str, pairs: list[tuple[Name, Name]], matches: Matches, rebuilt: bool
) -> DdlDecision:
    kept: list[tuple[Name, Name]] = []
    dropped: list[Name] = []
    for old, new in pairs:
        old_in, new_in = bool(matches(*old)), bool(matches(*new))
        if old_in and new_in:
            kept.append((old, new))
        elif old_in:
            dropped.append(old)  # it leaves the link: the target must not keep it
        elif new_in:
            return DdlDecision(
                STOP,
                reason=f"table {new[0]}.{new[1]} enters the link by a rename from"
                f" {old[0]}.{old[1]}, whose rows the target does not have",
            )
    if len(kept) == len(pairs):
        return DdlDecision(REPLICATE, query)
    statements = []
    if kept:
        statements.append(
            "RENAME TABLE " + ", ".join(f"{_q(old)} TO {_q(new)}" for old, new in kept)
        )
    if dropped:
        statements.append("DROP TABLE IF EXISTS " + ", ".join(_q(n) for n in dropped))
    if not statements:
        return DdlDecision(SKIP)
    if len(statements) > 1:
        # Two statements cannot run as one event; the renames of a swap must stay
        # together with the drop, so this (rare) case stops instead of half-applying.
        return DdlDecision(
            STOP, reason="it renames tables within the link and out of it in one statement"
        )
    return DdlDecision(REPLICATE, statements[0])


def _q(name: Name) -> str:
    return f"{quote(name[0])}.{quote(name[1])}"


def _rename_pairs_from_tokens(query: str, default_schema: str) -> list[tuple[Name, Name]] | None:
    """``RENAME TABLE a TO b [, c TO d …]`` from sqlglot's tokens (quotes handled there)."""
    # sqlglot's tokenizer keeps what follows RENAME as one string: tokenize that part.
    rest = query.lstrip()[len("RENAME") :]
    try:
        tokens = sqlglot.tokenize(rest, read="mysql")
    except Exception:  # the tokenizer refuses it: the caller stops the link
        return None
    words = [t for t in tokens if t.token_type != TokenType.SEMICOLON]
    if not words or words[0].text.upper() != "TABLE":
        return []  # RENAME USER …: not a table
    words = words[1:]
    pairs: list[tuple[Name, Name]] = []
    position = 0

    def name() -> Name | None:
        nonlocal position
        if position >= len(words):
            return None
        first = words[position].text
        position += 1
        if position < len(words) and words[position].token_type == TokenType.DOT:
            if position + 1 >= len(words):
                return None
            second = words[position + 1].text
            position += 2
            return (first, second)
        return (default_schema, first)

    while position < len(words):
        if words[position].text.upper() in {"IF", "EXISTS", "WAIT", "NOWAIT"}:
            position += 1
            continue
        old = name()
        if old is None or position >= len(words) or words[position].text.upper() != "TO":
            return None
        position += 1
        new = name()
        if new is None:
            return None
        pairs.append((old, new))
        if position < len(words):
            if words[position].token_type != TokenType.COMMA:
                return None
            position += 1
    return pairs


def _unparsed(query: str, head: list[str], default_schema: str, matches: Matches) -> DdlDecision:
    """A statement sqlglot does not parse (``ALTER ONLINE TABLE``, partition maintenance,
    triggers …): site-specific kinds are skipped; ``ALTER TABLE`` is read from tokens."""
    if _SITE_SPECIFIC & set(head):
        return DdlDecision(SKIP)
    if head[:1] == ["ALTER"] and "TABLE" in head[:3]:
        return _alter_from_tokens(query, default_schema, matches)
    return DdlDecision(STOP, reason="hotsite cannot tell which tables this statement changes")


def _alter_from_tokens(query: str, default_schema: str, matches: Matches) -> DdlDecision:
    try:
        tokens = sqlglot.tokenize(query, read="mysql")
    except Exception:  # not tokenizable either
        return DdlDecision(STOP, reason="hotsite cannot read this ALTER TABLE statement")
    words = [t.text.upper() for t in tokens]
    at = words.index("TABLE") + 1
    if words[at : at + 2] == ["IF", "EXISTS"]:
        at += 2
    first, at = _token_name(tokens, at, default_schema)
    names = [first]
    rest = words[at:]
    if "RENAME" in rest:
        return DdlDecision(STOP, reason="hotsite cannot read this ALTER TABLE … RENAME")
    if "EXCHANGE" in rest and "WITH" in rest:
        # The partition's rows and the other table's trade places: both must be the link's.
        with_at = at + rest.index("WITH") + 1
        if with_at < len(words) and words[with_at] == "TABLE":
            with_at += 1
        other, _ = _token_name(tokens, with_at, default_schema)
        names.append(other)
    if "ENGINE" in rest:
        engine_at = rest.index("ENGINE") + 1
        engine = rest[engine_at + 1] if rest[engine_at : engine_at + 1] == ["="] else ""
        engine = engine or (rest[engine_at] if engine_at < len(rest) else "")
        if engine and engine != "INNODB" and matches(*first):
            return DdlDecision(
                STOP,
                reason=f"engine {engine} is not transactional: its changes cannot be"
                " applied exactly once",
            )
    return _all_or_nothing(query, names, matches)


def _token_name(tokens: list[Any], at: int, default_schema: str) -> tuple[Name, int]:
    first = tokens[at].text if at < len(tokens) else ""
    if at + 2 < len(tokens) and tokens[at + 1].token_type == TokenType.DOT:
        return (first, tokens[at + 2].text), at + 3
    return (default_schema, first), at + 1


_SITE_SPECIFIC = {
    "TRIGGER",
    "PROCEDURE",
    "FUNCTION",
    "EVENT",
    "USER",
    "ROLE",
    "DATABASE",
    "SCHEMA",
    "SERVER",
    "PACKAGE",
}


def _first_words(query: str) -> list[str]:
    """The statement's first keywords, comments skipped (sqlglot's tokenizer drops them)."""
    try:
        tokens = sqlglot.tokenize(query[:400], read="mysql")
    except Exception:  # not tokenizable: decided by the caller as unknown
        return []
    # Twelve words reach past "CREATE DEFINER=`u`@`h` SQL SECURITY …" to the object kind.
    return [t.text.upper() for t in tokens[:12]]
