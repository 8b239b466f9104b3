"""Deployment records in the state store: the site's nodes, and each step done where.

A step is recorded done, with the fingerprint of what was run, in its own transaction
the moment it succeeds. That is what makes ``up`` resumable after ``kill -9`` (completed
steps are skipped, the interrupted one runs again) and what ``plan`` diffs against.
Nodes are recorded *before* the driver is asked for them (status ``creating``), so an
interrupted ``up`` finds them again by name instead of making duplicates.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any

from hotsite.nodes.base import Node
from hotsite.state import StateStore, register_schema

register_schema(
    "blueprint",
    """
    CREATE TABLE IF NOT EXISTS bp_sites (
        site TEXT PRIMARY KEY,
        blueprint TEXT NOT NULL,
        status TEXT NOT NULL,            -- applying, up, failed, down
        updated REAL NOT NULL,
        outputs TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE IF NOT EXISTS bp_nodes (
        site TEXT NOT NULL,
        name TEXT NOT NULL,
        grp TEXT NOT NULL,
        idx INTEGER NOT NULL,
        driver TEXT NOT NULL,
        status TEXT NOT NULL,            -- creating, ready
        node TEXT,                       -- the driver's Node as JSON once known
        PRIMARY KEY (site, name)
    );
    CREATE TABLE IF NOT EXISTS bp_steps (
        site TEXT NOT NULL,
        node TEXT NOT NULL,
        service TEXT NOT NULL,
        step TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        done_at REAL NOT NULL,
        PRIMARY KEY (site, node, service, step)
    );
    -- How to stop and remove a service later, even once the blueprint no longer has it.
    CREATE TABLE IF NOT EXISTS bp_teardown (
        site TEXT NOT NULL,
        node TEXT NOT NULL,
        service TEXT NOT NULL,
        commands TEXT NOT NULL,          -- {"stop": ..., "uninstall": ..., "env": {...}}
        depends_on TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (site, node, service)
    );
    -- `hotsite scale`: a group's node count set for the site, over the blueprint's.
    CREATE TABLE IF NOT EXISTS bp_counts (
        site TEXT NOT NULL,
        grp TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (site, grp)
    );
    -- Healing: slot IDX of a group is served by another node than SITE-GROUP-IDX (its
    -- replacement), so the slot's index (and the values rendered from it) stay.
    CREATE TABLE IF NOT EXISTS bp_slots (
        site TEXT NOT NULL,
        grp TEXT NOT NULL,
        idx INTEGER NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (site, grp, idx)
    );
    """,
)


def node_to_json(node: Node) -> str:
    return json.dumps(dataclasses.asdict(node))


def node_from_json(text: str) -> Node:
    known = {f.name for f in dataclasses.fields(Node)}
    return Node(**{k: v for k, v in json.loads(text).items() if k in known})


@dataclass
class NodeRecord:
    name: str
    group: str
    index: int
    driver: str
    status: str
    node: Node | None


@dataclass
class SiteRecord:
    """What the state store knows about one site's deployment."""

    site: str
    status: str = "down"
    blueprint: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    # (node, service, step) -> fingerprint
    steps: dict[tuple[str, str, str], str] = field(default_factory=dict)
    # (node, service) -> {"stop": ..., "uninstall": ..., "env": ..., "depends_on": [...]}
    teardown: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # group -> count set by scale
    slots: dict[tuple[str, int], str] = field(default_factory=dict)  # (group, idx) -> node


class DeploymentStore:
    def __init__(self, store: StateStore) -> None:
        self.store = store

    def load(self, site: str) -> SiteRecord:
        conn = self.store.connection()
        record = SiteRecord(site=site)
        row = conn.execute(
            "SELECT status, blueprint, outputs FROM bp_sites WHERE site = ?", (site,)
        ).fetchone()
        if row:
            record.status, record.blueprint = row["status"], row["blueprint"]
            record.outputs = json.loads(row["outputs"])
        for row in conn.execute("SELECT * FROM bp_nodes WHERE site = ? ORDER BY grp, idx", (site,)):
            record.nodes[row["name"]] = NodeRecord(
                name=row["name"],
                group=row["grp"],
                index=row["idx"],
                driver=row["driver"],
                status=row["status"],
                node=node_from_json(row["node"]) if row["node"] else None,
            )
        for row in conn.execute("SELECT * FROM bp_steps WHERE site = ?", (site,)):
            record.steps[(row["node"], row["service"], row["step"])] = row["fingerprint"]
        for row in conn.execute("SELECT * FROM bp_teardown WHERE site = ?", (site,)):
            info = json.loads(row["commands"])
            info["depends_on"] = json.loads(row["depends_on"])
            record.teardown[(row["node"], row["service"])] = info
        for row in conn.execute("SELECT grp, count FROM bp_counts WHERE site = ?", (site,)):
            record.counts[row["grp"]] = row["count"]
        for row in conn.execute("SELECT grp, idx, name FROM bp_slots WHERE site = ?", (site,)):
            record.slots[(row["grp"], row["idx"])] = row["name"]
        return record

    def set_count(self, site: str, group: str, count: int) -> None:
        """Scale: the group's count from now on; slots beyond it are forgotten."""
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO bp_counts (site, grp, count) VALUES (?, ?, ?)",
                (site, group, count),
            )
            conn.execute(
                "DELETE FROM bp_slots WHERE site = ? AND grp = ? AND idx >= ?",
                (site, group, count),
            )

    def set_slot(self, site: str, group: str, index: int, name: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO bp_slots (site, grp, idx, name) VALUES (?, ?, ?, ?)",
                (site, group, index, name),
            )

    def forget_scaling(self, site: str) -> None:
        """`down`: the next `up` starts from the blueprint's counts and names again."""
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM bp_counts WHERE site = ?", (site,))
            conn.execute("DELETE FROM bp_slots WHERE site = ?", (site,))

    def set_site(self, site: str, status: str, blueprint: str | None = None) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO bp_sites (site, blueprint, status, updated) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (site) DO UPDATE SET status = excluded.status,"
                " updated = excluded.updated,"
                " blueprint = CASE WHEN ? IS NULL THEN bp_sites.blueprint"
                " ELSE excluded.blueprint END",
                (site, blueprint or "", status, time.time(), blueprint),
            )

    def set_outputs(self, site: str, outputs: dict[str, Any]) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE bp_sites SET outputs = ? WHERE site = ?", (json.dumps(outputs), site)
            )

    def node_intended(self, site: str, name: str, group: str, index: int, driver: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO bp_nodes (site, name, grp, idx, driver, status)"
                " VALUES (?, ?, ?, ?, ?, 'creating')",
                (site, name, group, index, driver),
            )

    def node_ready(self, site: str, name: str, node: Node) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE bp_nodes SET status = 'ready', node = ? WHERE site = ? AND name = ?",
                (node_to_json(node), site, name),
            )

    def node_gone(self, site: str, name: str) -> None:
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM bp_steps WHERE site = ? AND node = ?", (site, name))
            conn.execute("DELETE FROM bp_teardown WHERE site = ? AND node = ?", (site, name))
            conn.execute("DELETE FROM bp_nodes WHERE site = ? AND name = ?", (site, name))

    def step_done(self, site: str, node: str, service: str, step: str, fingerprint: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO bp_steps VALUES (?, ?, ?, ?, ?, ?)",
                (site, node, service, step, fingerprint, time.time()),
            )

    def steps_forgotten(self, site: str, node: str, service: str, steps: list[str]) -> None:
        with self.store.transaction() as conn:
            conn.executemany(
                "DELETE FROM bp_steps WHERE site = ? AND node = ? AND service = ? AND step = ?",
                [(site, node, service, step) for step in steps],
            )

    def teardown_known(
        self, site: str, node: str, service: str, commands: dict[str, Any], depends_on: list[str]
    ) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO bp_teardown VALUES (?, ?, ?, ?, ?)",
                (site, node, service, json.dumps(commands), json.dumps(depends_on)),
            )

    def service_gone(self, site: str, node: str, service: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "DELETE FROM bp_steps WHERE site = ? AND node = ? AND service = ?",
                (site, node, service),
            )
            conn.execute(
                "DELETE FROM bp_teardown WHERE site = ? AND node = ? AND service = ?",
                (site, node, service),
            )
