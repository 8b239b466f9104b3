"""Both directions at once: site agents, no echo, conflicts caught and settled.

Writers on both sites of a pair (and on three sites in a ring and a mesh) write at the
same time through the agents; afterwards the sites hold identical tables, every
conflict is in a log, and no transaction came back: each site's binlog stops growing
once the writers stop (an echo would bounce between the sites for ever).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql
import pytest
import yaml

from hotsite.replication.gtid import GtidState
from hotsite.testing.mariadb import PrivateMariaDB
from tests.helpers import (
    agent_log_tail,
    hotsite,
    kill_group,
    one_line_error,
    start_agent,
    table_checksums,
)

TABLE = (
    "CREATE TABLE app.t (id INT PRIMARY KEY, v INT NOT NULL, ver BIGINT NOT NULL,"
    " site VARCHAR(16) NOT NULL)"
)
HEARTBEAT = 0.25  # seconds: each site writes one, and applies each other site's
LEDGER = "CREATE TABLE app.ledger (id INT AUTO_INCREMENT PRIMARY KEY, site VARCHAR(16), n INT)"


def _servers(factory: Callable[..., PrivateMariaDB], count: int) -> list[PrivateMariaDB]:
    servers = [factory() for _ in range(count)]
    for index, server in enumerate(servers):
        server.execute("CREATE DATABASE app")
        server.execute(f"SET GLOBAL auto_increment_increment = {max(count, 2)}")
        server.execute(f"SET GLOBAL auto_increment_offset = {index + 1}")
    return servers


def _config(
    directory: Path, servers: dict[str, PrivateMariaDB], links: list[tuple[str, str]], **extra: Any
) -> Path:
    config = {
        "sites": {name: {"database": server.url()} for name, server in servers.items()},
        "replication": [{"from": a, "to": b, "heartbeat_interval": HEARTBEAT} for a, b in links],
        **extra,
    }
    path = directory / "hotsite.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def stop_agents(agents: list[subprocess.Popen[str]]) -> None:
    for agent in agents:
        kill_group(agent, signal.SIGTERM)


def converge(servers: list[PrivateMariaDB], timeout: float = 90) -> dict[str, Any]:
    """Wait until every site holds the same tables (checksums), and say what they hold."""
    deadline = time.monotonic() + timeout
    while True:
        sums = [table_checksums(s) for s in servers]
        if all(s == sums[0] for s in sums) and sums[0]:
            return sums[0]
        if time.monotonic() > deadline:
            tables = [t for t in sums[0] if any(s.get(t) != sums[0][t] for s in sums)]
            differ = {t: [set(s.execute(f"SELECT * FROM {t}")) for s in servers] for t in tables}
            shown = {
                t: [sorted((rows[0] - r) | (r - rows[0])) for r in rows[1:]]
                for t, rows in differ.items()
            }
            keys = sorted({row[0] for rows in shown.get("app.t", []) for row in rows})[:3]
            detail = [
                (
                    i,
                    k,
                    s.execute(f"SELECT * FROM app.t WHERE id = {k}"),
                    s.execute(
                        "SELECT id, kind, decision, target_row, incoming_before, incoming_after,"
                        " origin_gtid FROM hotsite.hotsite_conflicts"
                        f" WHERE row_key = '{{\"id\":{k}}}'"
                    ),
                )
                for k in keys
                for i, s in enumerate(servers)
            ]
            Path("/tmp/diverge.txt").write_text("\n".join(map(repr, detail)))
            raise AssertionError(f"sites did not converge: {sums}; rows not at every site: {shown}")
        time.sleep(0.3)


def caught_up(
    servers: dict[str, PrivateMariaDB],
    links: list[tuple[str, str]],
    timeout: float = 180,
    config: Path | None = None,
) -> None:
    """Every link's target has applied all its source had when this was called.

    Within 180 s: a mesh's six links start in three agents at once, and in the full suite
    beside other servers on two cores 60 s was not always enough (alone: ~10 s)."""
    goals = {(a, b): GtidState.parse(binlog_seqs([servers[a]])[0]) for a, b in links}
    deadline = time.monotonic() + timeout
    for (a, b), goal in goals.items():
        while True:
            rows = servers[b].execute(
                f"SELECT gtid_state FROM hotsite.hotsite_applied WHERE link_key LIKE '%/{a}-to-{b}'"
            )
            if rows and GtidState.parse(str(rows[0][0])).reached(goal):
                break
            if time.monotonic() > deadline:
                status = hotsite(config, "status").stdout if config else ""
                sessions = servers[b].execute(
                    "SELECT id, user, db, command, time, state, LEFT(info, 120)"
                    " FROM information_schema.processlist"
                )
                failures = agent_log_tail(config, 400, "duty failed") if config else []
                raise AssertionError(
                    f"{a}->{b} did not catch up to {goal}: {rows}\n{status}\n"
                    + "\n".join([*map(repr, sessions), *failures[-10:]])
                )
            time.sleep(0.1)


def binlog_seqs(servers: list[PrivateMariaDB]) -> list[str]:
    return [str(s.execute("SELECT @@GLOBAL.gtid_binlog_pos")[0][0]) for s in servers]


def _seq(position: str) -> int:
    return int(position.split("-")[-1]) if position else 0


def assert_no_echo(servers: list[PrivateMariaDB], seconds: float = 2.0) -> None:
    """Idle sites write only heartbeats: each link's capture writes its source's, and each
    is applied once at the link's target (so up to n² per interval for n sites in a mesh).
    An applied transaction that came back would be applied again and sent again, hundreds
    of times a second."""
    before = [_seq(p) for p in binlog_seqs(servers)]
    time.sleep(seconds)
    after = [_seq(p) for p in binlog_seqs(servers)]
    allowed = len(servers) ** 2 * (seconds / HEARTBEAT + 2)
    assert all(a - b <= allowed for a, b in zip(after, before, strict=True)), (before, after)


class Writer:
    """Random inserts, updates and deletes (or updates only) on the given keys, and an
    insert-only ledger of acknowledged writes."""

    def __init__(
        self,
        server: PrivateMariaDB,
        site: str,
        rank: int,
        keys: int | range,
        seed: int,
        updates_only: bool = False,
    ) -> None:
        self.server, self.site, self.rank = server, site, rank
        self.keys = keys if isinstance(keys, range) else range(1, keys + 1)
        self.updates_only = updates_only
        self.random = random.Random(seed)
        self.commits = 0
        self.ledger: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Writer:
        self.thread.start()
        return self

    def join(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)

    def _version(self) -> int:
        return time.time_ns() // 1000 * 10 + self.rank  # unique per site: no ties

    def _run(self) -> None:
        conn = pymysql.connect(
            host="127.0.0.1", port=self.server.port, user="root", database="app", autocommit=False
        )
        try:
            while not self.stop.is_set():
                try:
                    ledger_id = self._transaction(conn)
                except pymysql.err.OperationalError as exc:
                    if exc.args[0] not in (1205, 1213):  # an application retries these
                        raise
                    conn.rollback()
                    continue
                self.commits += 1
                self.ledger.append(ledger_id)
                time.sleep(0.002)
        finally:
            conn.close()

    def _transaction(self, conn: Any) -> int:
        with conn.cursor() as cur:
            for _ in range(self.random.randint(1, 3)):
                key = self.random.choice(self.keys)
                what = 0.5 if self.updates_only else self.random.random()
                if what < 0.4:
                    cur.execute(
                        "INSERT INTO t (id, v, ver, site) VALUES (%s, %s, %s, %s)"
                        " ON DUPLICATE KEY UPDATE v = VALUES(v), ver = VALUES(ver),"
                        " site = VALUES(site)",
                        (key, self.random.randint(0, 999), self._version(), self.site),
                    )
                elif what < 0.8:
                    cur.execute(
                        "UPDATE t SET v = v + 1, ver = %s, site = %s WHERE id = %s",
                        (self._version(), self.site, key),
                    )
                else:
                    cur.execute("DELETE FROM t WHERE id = %s", (key,))
            cur.execute("INSERT INTO ledger (site, n) VALUES (%s, %s)", (self.site, 0))
            ledger_id = cur.lastrowid
        conn.commit()
        return int(ledger_id)


def _pair_setup(
    tmp_path: Path, factory: Callable[..., PrivateMariaDB], **extra: Any
) -> tuple[Path, PrivateMariaDB, PrivateMariaDB]:
    primary, dr = _servers(factory, 2)
    primary.execute(TABLE)
    primary.execute(LEDGER)
    primary.execute(
        "INSERT INTO app.t VALUES " + ", ".join(f"({i}, 0, 0, 'primary')" for i in range(1, 41))
    )
    config = _config(
        tmp_path, {"primary": primary, "dr": dr}, [("primary", "dr"), ("dr", "primary")], **extra
    )
    return config, primary, dr


def _conflicts(server: PrivateMariaDB) -> list[tuple[Any, ...]]:
    return server.execute("SELECT status, decision, policy FROM hotsite.hotsite_conflicts")


@pytest.mark.parametrize(
    "conflicts",
    [
        {"policy": "site-priority"},
        {"tables": {"app.t": {"policy": "newest-wins", "column": "ver"}}},
        {"policy": "source-wins"},
        {"policy": "target-wins", "detect": "changed-columns"},
    ],
    ids=["site-priority", "newest-wins", "source-wins", "target-wins-changed-columns"],
)
def test_overlapping_writers_on_both_sites_converge(
    tmp_path: Path, mariadb_factory: Callable[..., PrivateMariaDB], conflicts: dict[str, Any]
) -> None:
    config, primary, dr = _pair_setup(tmp_path, mariadb_factory, conflicts=conflicts)
    seed = random.randrange(1 << 16)
    print("writers' seed", seed)  # shown when the test fails: the same run again
    started = time.monotonic()
    agents = [start_agent(config, "dr"), start_agent(config, "primary")]
    try:
        # Both sites insert, update and delete the same 40 rows: concurrent updates,
        # updates of rows deleted at the other site, a row deleted and created again at
        # one site while the other, behind, creates it afresh (row versions tell these
        # apart: docs/conflicts.md).
        writers = [
            Writer(primary, "primary", 1, keys=40, seed=seed).start(),
            Writer(dr, "dr", 2, keys=40, seed=seed + 1).start(),
        ]
        time.sleep(10)
        for writer in writers:
            writer.join()
        converge([primary, dr])
        assert_no_echo([primary, dr])
        verdict = hotsite(config, "verify", "--from", "primary", "--to", "dr")
        assert verdict.returncode == 0, verdict.stdout + verdict.stderr
        seen = _conflicts(primary) + _conflicts(dr)
        assert seen, "overlapping writers on 40 keys for 10 s made no conflict"
        assert all(status == "settled" for status, _, _ in seen)
        status = hotsite(config, "status", "--json")
        counted = sum(
            sum(link["apply"]["conflicts"].values()) for link in json.loads(status.stdout)
        )
        assert counted == len(seen)  # per table and link in 'hotsite status'
        policy = conflicts.get("policy") or conflicts["tables"]["app.t"]["policy"]
        assert {p for _, _, p in seen} == {policy}
        # every acknowledged write of either site is at both, once
        ledger = sorted(w.site for w in writers for _ in w.ledger)
        for server in (primary, dr):
            assert sorted(r[0] for r in server.execute("SELECT site FROM app.ledger")) == ledger
        # bounded: each site's binlog holds its own commits plus at most one target
        # transaction per commit of the other site (and the load's few), never more
        total = sum(w.commits for w in writers)
        elapsed = time.monotonic() - started
        for seq in binlog_seqs([primary, dr]):
            assert _seq(seq) <= total + 2 * (elapsed / HEARTBEAT + 2) + 20
    finally:
        stop_agents(agents)


def test_manual_parks_conflicts_and_resolving_each_makes_the_sites_identical(
    tmp_path: Path, mariadb_factory: Callable[..., PrivateMariaDB]
) -> None:
    config, primary, dr = _pair_setup(tmp_path, mariadb_factory, conflicts={"policy": "manual"})
    agents = [start_agent(config, "dr"), start_agent(config, "primary")]
    try:
        writers = [
            Writer(primary, "primary", 1, keys=10, seed=3).start(),
            Writer(dr, "dr", 2, keys=10, seed=4, updates_only=True).start(),
        ]
        time.sleep(3)
        for writer in writers:
            writer.join()
        time.sleep(2)  # the last changes reach the other site (and park there)
        listed = hotsite(config, "conflicts", "list", "--parked", "--json")
        assert listed.returncode == 0, listed.stderr
        parked = json.loads(listed.stdout)
        assert parked, "overlapping writers on 10 keys made no conflict"
        assert all(c["policy"] == "manual" and c["decision"] == "parked" for c in parked)
        status = hotsite(config, "status", "--json")
        assert status.returncode == 1  # parked conflicts wait for someone
        waiting = sum(link["apply"]["parked"] for link in json.loads(status.stdout))
        assert waiting == len(parked)
        for _ in range(200):
            listed = hotsite(config, "conflicts", "list", "--parked", "--json")
            remaining = json.loads(listed.stdout)
            if not remaining:
                break
            take = random.Random(len(remaining)).choice(["source", "target"])
            done = hotsite(config, "conflicts", "resolve", remaining[0]["id"], "--take", take)
            assert done.returncode == 0 or "not waiting" in done.stderr, done.stderr
        converge([primary, dr])
        shown = hotsite(config, "conflicts", "show", parked[0]["id"])
        assert shown.returncode == 0 and json.loads(shown.stdout)["status"] == "resolved"
    finally:
        stop_agents(agents)
    missing = hotsite(config, "conflicts", "show", "dr:999999")
    one_line_error(missing, "no conflict dr:999999")


@pytest.mark.parametrize("shape", ["ring", "mesh"])
def test_three_sites_converge_and_apply_each_origin_transaction_once(
    tmp_path: Path, mariadb_factory: Callable[..., PrivateMariaDB], shape: str
) -> None:
    names = ["a", "b", "c"]
    servers = dict(zip(names, _servers(mariadb_factory, 3), strict=True))
    for server in servers.values():  # the same empty table everywhere: no snapshot needed
        server.execute(LEDGER)
    if shape == "ring":
        links = [("a", "b"), ("b", "c"), ("c", "a")]
    else:
        links = [(x, y) for x in names for y in names if x != y]
    config = _config(tmp_path, servers, links)
    # Each site loaded once, as docs/conflicts.md starts a pair: in the ring by the link
    # into it; in the mesh a->b, a->c and c->b, and the agents start the links the other
    # way (b->a, c->a, b->c) at the position after those loads. Loading every link (six
    # loads) makes two of them reach one site at once over two links, and their DDL on
    # the same table races (Known limits there).
    loads = links if shape == "ring" else [("a", "b"), ("a", "c"), ("c", "b")]
    for a, b in loads:
        loaded = hotsite(config, "snapshot", "--from", a, "--to", b, "--force", "--quiet")
        assert loaded.returncode == 0, loaded.stderr
    agents = [start_agent(config, name) for name in names]
    try:
        # The loads of sites that are sources themselves reach the next site as DDL and
        # rows: let that settle before writing (docs/replication.md, Both directions).
        caught_up(servers, links, config=config)
        servers["b"].execute("ALTER TABLE app.ledger ADD COLUMN note VARCHAR(20) NULL")
        for round_ in range(50):
            for name, server in servers.items():
                server.execute(f"INSERT INTO app.ledger (site, n) VALUES ('{name}', {round_})")
        sums = converge(list(servers.values()))
        assert sums
        for server in servers.values():
            counts = dict(server.execute("SELECT site, COUNT(*) FROM app.ledger GROUP BY site"))
            assert counts == {"a": 50, "b": 50, "c": 50}  # each origin's rows once
            assert server.execute("SELECT COUNT(*) FROM hotsite.hotsite_conflicts")[0][0] == 0
            columns = server.execute("SHOW COLUMNS FROM app.ledger")
            assert [c[0] for c in columns] == ["id", "site", "n", "note"]  # DDL once
        assert_no_echo(list(servers.values()))
    finally:
        stop_agents(agents)


def test_kill_9_of_an_agent_under_load_in_both_directions_loses_nothing(
    tmp_path: Path, mariadb_factory: Callable[..., PrivateMariaDB]
) -> None:
    config, primary, dr = _pair_setup(tmp_path, mariadb_factory)
    agents = [start_agent(config, "dr"), start_agent(config, "primary")]
    try:
        # each site its own rows (and the shared ledger): what the crash may lose or
        # repeat is seen exactly (overlapping writers are the tests above)
        writers = [
            Writer(primary, "primary", 1, keys=range(1, 21), seed=5).start(),
            Writer(dr, "dr", 2, keys=range(21, 41), seed=6).start(),
        ]
        time.sleep(3)
        kill_group(agents[0])  # dr's agent, with its capture process, mid-stream
        time.sleep(1)
        agents[0] = start_agent(config, "dr")
        time.sleep(3)
        for writer in writers:
            writer.join()
        converge([primary, dr])
        ledger = sorted(w.site for w in writers for _ in w.ledger)
        for server in (primary, dr):
            assert sorted(r[0] for r in server.execute("SELECT site FROM app.ledger")) == ledger
        assert_no_echo([primary, dr])
    finally:
        stop_agents(agents)


def test_sites_handing_out_the_same_auto_increment_ids_are_refused(
    tmp_path: Path, mariadb_factory: Callable[..., PrivateMariaDB]
) -> None:
    config, primary, dr = _pair_setup(tmp_path, mariadb_factory)
    dr.execute("SET GLOBAL auto_increment_offset = 1")
    refused = hotsite(config, "replicate", "--from", "primary", "--to", "dr", "--until-caught-up")
    one_line_error(refused, "auto_increment_offset=1", "auto_increment_increment=2")
    assert primary.execute("SHOW DATABASES LIKE 'hotsite'") == []  # nothing written first
    dr.execute("SET GLOBAL auto_increment_offset = 2")
    accepted = hotsite(config, "replicate", "--from", "primary", "--to", "dr", "--until-caught-up")
    assert accepted.returncode == 0, accepted.stderr


def test_a_user_that_may_not_create_the_row_version_triggers_is_refused(
    tmp_path: Path, mariadb_factory: Callable[..., PrivateMariaDB]
) -> None:
    config, primary, dr = _pair_setup(tmp_path, mariadb_factory)
    dr.execute(
        "CREATE USER 'hs'@'127.0.0.1' IDENTIFIED BY 'pw'",
        "GRANT ALL ON app.* TO 'hs'@'127.0.0.1'",
        "GRANT ALL ON hotsite.* TO 'hs'@'127.0.0.1'",
        "GRANT REPLICATION SLAVE, BINLOG MONITOR, SLAVE MONITOR, PROCESS ON *.*"
        " TO 'hs'@'127.0.0.1'",
        "SET GLOBAL log_bin_trust_function_creators = 0",
    )
    data = yaml.safe_load(config.read_text())
    data["sites"]["dr"]["database"] = dr.url().replace("root@", "hs:pw@")
    config.write_text(yaml.safe_dump(data))
    args = ("replicate", "--from", "primary", "--to", "dr", "--until-caught-up")
    one_line_error(hotsite(config, *args), "'dr'", "log_bin_trust_function_creators")
    triggers = "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'app'"
    # Checked at both ends before either got a trigger: neither is half-versioned.
    assert primary.execute(triggers) == dr.execute(triggers) == [(0,)]
    assert dr.execute("SHOW TABLES IN app") == []  # and nothing was copied
    dr.execute("SET GLOBAL log_bin_trust_function_creators = 1")
    accepted = hotsite(config, *args)
    assert accepted.returncode == 0, accepted.stderr
    assert primary.execute(triggers) == dr.execute(triggers) == [(6,)]  # t and ledger
    assert table_checksums(dr) == table_checksums(primary)


# Each key one race between a site and the other one behind it (both agents stopped
# while the sites write, so each site's changes arrive after all of its own): what
# primary does, what dr does, and what newest-wins must leave at both sites. Row images
# alone could not tell these apart: a deleted row leaves no image.
RACES = {
    # key: (initially there?, primary's statements, dr's statements, newest-wins' row)
    1: (False, ["INSERT {a}", "DELETE"], ["INSERT {b}"], None),  # the deletion's life
    2: (True, ["DELETE", "INSERT {a}"], ["UPDATE {b}"], "primary"),  # created again
    3: (True, ["DELETE"], ["UPDATE {b}"], None),  # deleted here, updated there
    4: (True, ["DELETE", "INSERT {a}"], ["DELETE"], "primary"),
    5: (True, ["DELETE"], ["DELETE", "INSERT {b}"], "dr"),
    6: (False, ["INSERT {a}"], ["INSERT {b}"], "dr"),  # the greater version column
    7: (True, ["UPDATE {a}"], ["UPDATE {b}"], "dr"),
    8: (True, ["NOOP"], ["UPDATE {b}"], "dr"),  # an UPDATE that changed nothing
    9: (True, ["DELETE", "INSERT {a}", "DELETE"], ["UPDATE {b}"], None),
    # changed and changed back to the very image dr's change was made on: still a change
    10: (True, ["UPDATE {a}", "BACK"], ["UPDATE {b}"], "dr"),
}


def _run_race(server: PrivateMariaDB, key: int, statements: list[str], site: str, ver: int) -> None:
    for statement in statements:
        if statement.startswith("INSERT"):
            server.execute(f"INSERT INTO app.t VALUES ({key}, {key}, {ver}, '{site}')")
        elif statement.startswith("UPDATE"):
            server.execute(
                f"UPDATE app.t SET v = v + 1, ver = {ver}, site = '{site}' WHERE id = {key}"
            )
        elif statement == "NOOP":
            server.execute(f"UPDATE app.t SET v = v WHERE id = {key}")
        elif statement == "BACK":  # the row as it was at the start
            server.execute(f"UPDATE app.t SET v = 0, ver = 0, site = 'primary' WHERE id = {key}")
        else:
            server.execute(f"DELETE FROM app.t WHERE id = {key}")


@pytest.mark.parametrize("policy", ["site-priority", "newest-wins"])
def test_rows_deleted_and_created_again_while_the_other_site_is_behind_converge(
    tmp_path: Path, mariadb_factory: Callable[..., PrivateMariaDB], policy: str
) -> None:
    primary, dr = _servers(mariadb_factory, 2)
    primary.execute(TABLE)
    initial = [k for k, (there, *_) in RACES.items() if there]
    primary.execute(
        "INSERT INTO app.t VALUES " + ", ".join(f"({k}, 0, 0, 'primary')" for k in initial)
    )
    conflicts: dict[str, Any] = (
        {"tables": {"app.t": {"policy": "newest-wins", "column": "ver"}}}
        if policy == "newest-wins"
        else {"policy": "site-priority", "site_priority": ["primary", "dr"]}
    )
    config = _config(
        tmp_path,
        {"primary": primary, "dr": dr},
        [("primary", "dr"), ("dr", "primary")],
        conflicts=conflicts,
    )
    agents = [start_agent(config, "dr"), start_agent(config, "primary")]
    try:
        converge([primary, dr])
        caught_up({"primary": primary, "dr": dr}, [("primary", "dr"), ("dr", "primary")])
    finally:
        stop_agents(agents)
    for agent in agents:
        agent.wait(timeout=30)
    # dr's versions are the greater (written second), so newest-wins' column favours dr
    for key, (_, mine, _, _) in RACES.items():
        _run_race(primary, key, mine, "primary", 10)
    for key, (_, _, theirs, _) in RACES.items():
        _run_race(dr, key, theirs, "dr", 20)
    agents = [start_agent(config, "dr"), start_agent(config, "primary")]
    try:
        converge([primary, dr])
        rows = {k: site for k, _, _, site in primary.execute("SELECT * FROM app.t")}
        if policy == "newest-wins":
            expected = {k: want for k, (*_, want) in RACES.items() if want}
        else:  # primary's row, or its deletion, wins every race
            expected = {}
            for key, (there, mine, _, _) in RACES.items():
                alive = there
                for statement in mine:
                    alive = statement != "DELETE" if statement != "NOOP" else alive
                if alive:
                    expected[key] = "primary"
            expected[8] = "dr"  # primary changed nothing: dr's update is no conflict
        assert rows == expected
        seen = _conflicts(primary) + _conflicts(dr)
        assert len(seen) >= len(RACES) - 1  # every race but the no-op one, at least once
        verdict = hotsite(config, "verify", "--from", "primary", "--to", "dr")
        assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    finally:
        stop_agents(agents)
