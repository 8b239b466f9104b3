"""Data-driven: each binlog DDL statement and what the link makes of it (cases/ddl.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hotsite.config import table_matcher
from hotsite.replication.capture.ddl import classify

CASES = json.loads((Path(__file__).parent / "cases" / "ddl.json").read_text())["cases"]


@pytest.mark.parametrize(("statement", "schema", "action", "expected"), CASES)
def test_ddl_decision(statement: str, schema: str, action: str, expected: str) -> None:
    decision = classify(statement, schema, table_matcher(["app.*"], "app"))
    assert decision.action == action, decision
    if action == "stop":
        assert expected in decision.reason
    elif action == "replicate":
        assert decision.statement == (statement if expected == "=" else expected)
