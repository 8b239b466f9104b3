"""Does the link's database user have the privileges replication needs? Checked at start.

Read from ``SHOW GRANTS``, the one view that includes the privileges of the user's roles
(``information_schema.*_PRIVILEGES`` shows a user only its direct grants). What cannot
be read with certainty (an unknown grant line, a role whose grants are hidden) counts as
granted: this check exists to name a missing privilege in one line before anything
runs, never to refuse a user the server would accept.

What each site needs (docs/replication.md lists the same):

- source: REPLICATION SLAVE (read the binlog), SELECT on the replicated tables (snapshot,
  keys, verify) and SELECT, INSERT, UPDATE, CREATE on ``hotsite.*`` (heartbeats);
- target: SELECT, INSERT, UPDATE, DELETE (rows), CREATE, DROP, ALTER, INDEX (snapshot and
  replicated DDL) on the replicated schemas, and SELECT, INSERT, UPDATE, DELETE, CREATE
  on ``hotsite.*`` (the applied position, written with the rows);
- both ends of a link between sites that both take writes: TRIGGER on the replicated
  schemas and, with the binlog on, SUPER or ``log_bin_trust_function_creators=1`` (the
  row-version triggers, docs/conflicts.md#row-versions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pymysql

from hotsite.db import Connection, single_row
from hotsite.errors import DatabaseError
from hotsite.replication.schema import HOTSITE_SCHEMA

SOURCE_GLOBAL = ("REPLICATION SLAVE",)
SOURCE_TABLES = ("SELECT",)
SOURCE_HOTSITE = ("SELECT", "INSERT", "UPDATE", "CREATE")
TARGET_SCHEMAS = ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX")
TARGET_HOTSITE = ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE")

_NAME = r"(?:\*|`(?:[^`]|``)*`)"
_GRANT = re.compile(rf"^GRANT (?P<privs>.+?) ON (?P<schema>{_NAME})\.(?P<table>{_NAME}) TO ")
_ROLE = re.compile(r"^GRANT (?P<roles>`.+`) TO ")
_OTHER_OBJECTS = re.compile(r"^GRANT .+? ON (FUNCTION|PROCEDURE|PACKAGE)\b|^GRANT PROXY ON ")


@dataclass
class Grants:
    """The privileges of one user (and its roles) by scope: global, schema, table."""

    global_privileges: set[str] = field(default_factory=set)
    schemas: list[tuple[re.Pattern[str], set[str]]] = field(default_factory=list)
    tables: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    certain: bool = True  # False: something was not understood, refuse nothing

    def has(self, privilege: str, schema: str, table: str | None = None) -> bool:
        if not self.certain or _holds(self.global_privileges, privilege):
            return True
        if any(p.fullmatch(schema) and _holds(privs, privilege) for p, privs in self.schemas):
            return True
        if table is None:
            return False
        privs = self.tables.get((schema.lower(), table.lower()), set())
        return _holds(privs, privilege)

    def add_line(self, line: str) -> list[str]:
        """Record one SHOW GRANTS line; return the roles it grants (to be read too)."""
        if line.startswith("GRANT") and _OTHER_OBJECTS.match(line):
            return []  # routines and proxying: nothing replication needs
        grant = _GRANT.match(line)
        if grant:
            privileges = _privileges(grant["privs"])
            schema, table = grant["schema"], grant["table"]
            if schema == "*":
                self.global_privileges |= privileges
            elif table == "*":
                self.schemas.append((_schema_pattern(_unquote(schema)), privileges))
            else:
                key = (_unquote(schema).lower(), _unquote(table).lower())
                self.tables.setdefault(key, set()).update(privileges)
            return []
        role = _ROLE.match(line)
        if role:
            return [_unquote(name.strip()) for name in role["roles"].split(",")]
        if not line.startswith(("SET DEFAULT ROLE", "GRANT USAGE")):
            self.certain = False
        return []


def read_grants(conn: Connection) -> Grants:
    """The current user's grants, with those of its roles; uncertain if unreadable."""
    grants = Grants()
    pending: list[str | None] = [None]
    seen: set[str | None] = set()
    while pending and len(seen) < 20:
        role = pending.pop()
        seen.add(role)
        try:
            with conn.cursor() as cur:
                if role is None:
                    cur.execute("SHOW GRANTS")
                else:
                    cur.execute("SHOW GRANTS FOR %s", (role,))
                lines = [str(row[0]) for row in cur.fetchall()]
        except pymysql.MySQLError:  # a server that will not say: assume granted
            grants.certain = False
            return grants
        for line in lines:
            pending += [r for r in grants.add_line(line) if r not in seen]
    return grants


def require_source_privileges(conn: Connection, site: str, tables: list[tuple[str, str]]) -> None:
    grants = read_grants(conn)
    missing: dict[str, list[str]] = {}
    for privilege in SOURCE_GLOBAL:
        if grants.certain and not _holds(grants.global_privileges, privilege):
            _add(missing, "*.*", privilege)
    for schema, table in tables:
        for privilege in SOURCE_TABLES:
            if not grants.has(privilege, schema, table):
                _add(missing, _scope(schema), privilege)
    for privilege in SOURCE_HOTSITE:
        if not grants.has(privilege, HOTSITE_SCHEMA):
            _add(missing, _scope(HOTSITE_SCHEMA), privilege)
    _refuse(conn, site, "source", missing)


def require_target_privileges(conn: Connection, site: str, schemas: list[str]) -> None:
    grants = read_grants(conn)
    missing: dict[str, list[str]] = {}
    for schema in schemas:
        for privilege in TARGET_SCHEMAS:
            if not grants.has(privilege, schema):
                _add(missing, _scope(schema), privilege)
    for privilege in TARGET_HOTSITE:
        if not grants.has(privilege, HOTSITE_SCHEMA):
            _add(missing, _scope(HOTSITE_SCHEMA), privilege)
    _refuse(conn, site, "target", missing)


def _refuse(conn: Connection, site: str, role: str, missing: dict[str, list[str]]) -> None:
    if not missing:
        return
    with conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        user, _, host = str(single_row(cur)[0]).rpartition("@")
    grantee = f"'{user}'@'{host}'"
    lacks = "; ".join(f"{', '.join(privs)} on {scope}" for scope, privs in missing.items())
    statements = "; ".join(
        f"GRANT {', '.join(privs)} ON {scope} TO {grantee}" for scope, privs in missing.items()
    )
    raise DatabaseError(
        f"site {site!r}: the {role} user {grantee} lacks {lacks}",
        f"grant them ({statements}), see docs/replication.md",
    )


def _add(missing: dict[str, list[str]], scope: str, privilege: str) -> None:
    privileges = missing.setdefault(scope, [])
    if privilege not in privileges:
        privileges.append(privilege)


def _scope(schema: str) -> str:
    return f"`{schema.replace('`', '``')}`.*"


def _holds(privileges: set[str], privilege: str) -> bool:
    return privilege in privileges or "ALL PRIVILEGES" in privileges or "ALL" in privileges


def _privileges(text: str) -> set[str]:
    """'SELECT, INSERT (`a`, `b`), ALL PRIVILEGES' -> names; column grants count as the
    privilege (leniently: a user granted some columns is told by the server, not us)."""
    names: set[str] = set()
    depth, current = 0, ""
    for char in text + ",":
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            names.add(current.strip().upper())
            current = ""
            continue
        if depth == 0 and char != ")":
            current += char
    if "REPLICATION CLIENT" in names:
        names.add("BINLOG MONITOR")  # the same privilege under its MariaDB 10.5+ name
    return names


def _unquote(name: str) -> str:
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def _schema_pattern(pattern: str) -> re.Pattern[str]:
    """A schema-level grant's name is a LIKE pattern: % and _ are wildcards unless
    escaped with a backslash."""
    regex, escaped = "", False
    for char in pattern:
        if escaped:
            regex += re.escape(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            regex += ".*"
        elif char == "_":
            regex += "."
        else:
            regex += re.escape(char)
    return re.compile(regex, re.IGNORECASE)


def require_version_trigger_privileges(conn: Connection, site: str, schemas: list[str]) -> None:
    """Row versions need triggers at both ends of a two-way pair: checked on both before
    either gets one, so a refusal leaves neither half-versioned."""
    grants = read_grants(conn)
    missing: dict[str, list[str]] = {}
    for schema in schemas:
        if not grants.has("TRIGGER", schema):
            _add(missing, _scope(schema), "TRIGGER")
    _refuse(conn, site, "two-way", missing)
    with conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.log_bin, @@GLOBAL.log_bin_trust_function_creators")
        log_bin, trusted = single_row(cur)
    if not log_bin or trusted or not grants.certain or _holds(grants.global_privileges, "SUPER"):
        return
    raise DatabaseError(
        f"site {site!r}: with the binlog on, the two-way user may not create the"
        " row-version triggers (it lacks SUPER and log_bin_trust_function_creators is off)",
        "SET GLOBAL log_bin_trust_function_creators = 1 (and put it in the server's"
        " [mysqld] section), or grant the user SUPER; see docs/conflicts.md#row-versions",
    )
