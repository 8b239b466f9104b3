"""The dr: section: defaults, and each bad value refused in one line at its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotsite.config import load
from hotsite.errors import ConfigError

SITES = (
    "sites:\n"
    "  primary: {database: 'mysql://root@127.0.0.1:1/app'}\n"
    "  dr: {database: 'mysql://root@127.0.0.1:2/app'}\n"
)


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "hotsite.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    return [line.removeprefix(str(path)) for line in str(caught.value).splitlines()]


def test_defaults_and_a_full_section(tmp_path: Path) -> None:
    path = tmp_path / "hotsite.yaml"
    path.write_text(SITES + "dr: {primary: primary}\n")
    dr = load(path).dr
    assert dr is not None
    assert (dr.primary, dr.lease, dr.auto_failover, dr.entry) == ("primary", 2.0, False, None)
    assert dr.controller.base_url(tls=False) == "http://127.0.0.1:7400"
    path.write_text(
        SITES + "dr:\n  primary: dr\n  lease: 1.5\n  auto_failover: true\n"
        "  controller: {listen: '0.0.0.0:9000'}\n"
        "  detection: {interval: 0.2, dead_after: 1}\n"
        "  entry:\n    listen: '127.0.0.1:8081'\n    mode: active-active\n"
        "    servers: {primary: '10.0.0.1:80', dr: '10.1.0.1:80'}\n    weights: {dr: 50}\n"
    )
    dr = load(path).dr
    assert dr is not None and dr.entry is not None
    assert dr.controller.base_url(tls=True) == "https://127.0.0.1:9000"
    assert (dr.entry.weight("dr"), dr.entry.weight("primary"), dr.fence_before) == (50, 100, 0.5)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "dr: {primary: elsewhere}\n",
            ":4: dr: primary 'elsewhere' is not a site (sites: dr, primary)",
        ),
        (
            "dr: {primary: primary, lease: 0.5}\n",
            ":4: dr: the lease (0.5 s) is shorter than 4 × detection.interval (1 s)",
        ),
        (
            "dr: {primary: primary, detection: {interval: 1, dead_after: 1}, lease: 9}\n",
            ":4: dr.detection: dead_after (1 s) is shorter than two probes",
        ),
        (
            "dr: {primary: primary, entry: {servers: {primary: 'nohost'}}}\n",
            ":4: dr.entry.servers: the entry server of site 'primary' 'nohost' must look like",
        ),
        (
            "dr: {primary: primary, entry: {servers: {dr: '1.2.3.4:80'}}}\n",
            ":4: dr: entry.servers has no server for the primary site 'primary'",
        ),
        (
            "dr: {primary: primary, entry: {servers: {primary: '1.2.3.4:80'}, weights: {dr: 5}}}\n",
            ":4: dr.entry: weights name sites that are not entry servers: dr",
        ),
        (
            "dr: {primary: primary, controller: {token_file: token}}\n",
            ":4: dr.controller.token_file: token_file 'token' must be an absolute path",
        ),
        ("dr: {primary: primary, fence: yes}\n", ":4: dr.fence: unknown key"),
    ],
)
def test_bad_values_are_one_line_each_at_their_key(
    tmp_path: Path, section: str, expected: str
) -> None:
    found = problems(tmp_path, SITES + section)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found
