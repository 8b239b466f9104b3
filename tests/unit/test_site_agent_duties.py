"""The site agent restarts a failed duty and keeps the others running — also when the
failure is a raw database error no layer explained (a session of the duty killed under
it, when its own site was fenced): it once took the whole agent down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pymysql

from hotsite import config as config_module
from hotsite.agent.site import SiteAgent, duty_errors
from tests.helpers import offline_pair_config


class Flaky:
    def __init__(self, name: str, fail_polls: int) -> None:
        self.name = name
        self.fail_polls = fail_polls
        self.starts = 0
        self.polls = 0

    def start(self) -> None:
        self.starts += 1

    def poll(self) -> dict[str, Any]:
        self.polls += 1
        if self.polls <= self.fail_polls:
            raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server")
        return {"polls": self.polls}

    def stop(self) -> None:
        pass


def test_a_raw_database_error_restarts_the_duty_not_the_agent(tmp_path: Path) -> None:
    path = offline_pair_config(tmp_path)
    broken, steady = Flaky("broken", fail_polls=1), Flaky("steady", fail_polls=0)
    agent = SiteAgent(config_module.load(path), "dr", [broken, steady])
    agent.tick()  # both start
    agent.tick()  # broken fails its poll: stopped, to be restarted after a delay
    views = {v["duty"]: v for v in agent.view()}
    assert views["broken"]["running"] is False and "Lost connection" in views["broken"]["error"]
    assert views["broken"]["restarts"] == 1
    assert views["steady"]["running"] is True and steady.polls == 1
    agent.duties[0].retry_at = 0.0  # its backoff is over
    agent.tick()
    agent.tick()
    assert broken.starts == 2 and agent.view()[0]["running"] is True
    assert steady.polls == 3


def test_a_duty_waiting_to_restart_is_named_with_its_error_for_status(tmp_path: Path) -> None:
    config = config_module.load(offline_pair_config(tmp_path))
    broken, steady = Flaky("broken", fail_polls=1), Flaky("steady", fail_polls=0)
    agent = SiteAgent(config, "dr", [broken, steady])
    agent.tick()
    agent.tick()  # broken fails: its error stays in the agent's status file until it restarts
    errors = duty_errors(config, "dr")
    assert list(errors) == ["broken"]
    assert "Lost connection" in errors["broken"] and "restarted 1 times" in errors["broken"]
    agent.duties[0].retry_at = 0.0
    agent.tick()  # started again: nothing to show
    assert duty_errors(config, "dr") == {}
    agent.stop()  # no agent runs: its last view says nothing about now
    assert duty_errors(config, "dr") == {}
