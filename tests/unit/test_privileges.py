"""Reading SHOW GRANTS: scopes, wildcards, column grants, roles, and lines not understood
(which make the check refuse nothing)."""

from __future__ import annotations

from hotsite.replication.privileges import Grants


def grants(*lines: str) -> Grants:
    g = Grants()
    for line in lines:
        g.add_line(line)
    return g


def test_scopes_global_schema_and_table() -> None:
    g = grants(
        "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*X'",
        "GRANT SELECT, INSERT ON `app`.* TO `u`@`%`",
        "GRANT UPDATE ON `shop`.`orders` TO `u`@`%`",
    )
    assert "REPLICATION SLAVE" in g.global_privileges
    assert g.has("SELECT", "app") and g.has("SELECT", "app", "t") and not g.has("DELETE", "app")
    assert g.has("UPDATE", "shop", "orders") and not g.has("UPDATE", "shop", "other")
    assert not g.has("UPDATE", "shop"), "a table grant is not a schema grant"


def test_all_privileges_and_wildcard_schemas() -> None:
    g = grants("GRANT ALL PRIVILEGES ON `app\\_%`.* TO `u`@`%` WITH GRANT OPTION")
    assert g.has("DROP", "app_eu") and g.has("INDEX", "app_")
    assert not g.has("DROP", "appx"), "an escaped _ is a plain underscore"
    g = grants("GRANT SELECT ON `a_p`.* TO `u`@`%`")
    assert g.has("SELECT", "axp"), "an unescaped _ matches one character"
    assert grants("GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost`").has("ALTER", "any")


def test_column_grants_roles_and_unknown_lines() -> None:
    g = Grants()
    assert g.add_line("GRANT SELECT (`a`, `b`), INSERT ON `app`.`t` TO `u`@`%`") == []
    assert g.has("SELECT", "app", "t") and g.has("INSERT", "app", "t")
    assert g.add_line("GRANT `r1` TO `u`@`%`") == ["r1"]
    assert g.add_line("SET DEFAULT ROLE `r1` FOR `u`@`%`") == [] and g.certain
    assert g.add_line("GRANT EXECUTE ON PROCEDURE `app`.`p` TO `u`@`%`") == [] and g.certain
    g.add_line("GRANT SOMETHING NEW THAT WE DO NOT KNOW")
    assert not g.certain and g.has("DROP", "anything"), "not understood: refuse nothing"


def test_replication_client_is_binlog_monitor() -> None:
    g = grants("GRANT REPLICATION CLIENT ON *.* TO `u`@`%`")
    assert {"REPLICATION CLIENT", "BINLOG MONITOR"} <= g.global_privileges
