"""A site built from a blueprint gets its database URL and its entry-point server from
the outputs `hotsite up` recorded (the blueprint layer's own store writes them here); a
site that gives `database:` or a server itself keeps it; a site not up has none."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hotsite.blueprint.state import DeploymentStore
from hotsite.config import load
from hotsite.errors import ConfigError
from hotsite.state import StateStore


def project(tmp_path: Path, **dr_site: str) -> Path:
    (tmp_path / "bp.yaml").write_text("services: {}\n")
    data = {
        "sites": {
            "primary": {"blueprint": "bp.yaml"},
            "dr": {"blueprint": "bp.yaml", **dr_site},
        },
        "replication": [{"from": "primary", "to": "dr"}],
        "dr": {
            "primary": "primary",
            "entry": {"servers": {"dr": "10.9.9.9:81"}} if dr_site else {"servers": {}},
        },
    }
    path = tmp_path / "hotsite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def bring_up(tmp_path: Path, site: str, outputs: dict[str, str]) -> None:
    records = DeploymentStore(StateStore(tmp_path / ".hotsite" / "state.db"))
    records.set_site(site, "up", "bp.yaml")
    records.set_outputs(site, outputs)


def test_addresses_come_from_the_outputs(tmp_path: Path) -> None:
    path = project(tmp_path)
    bring_up(tmp_path, "primary", {
        "database": "mysql://hs@10.0.0.5:3306/petclinic", "url": "http://10.0.0.4:8080/",
    })  # fmt: skip
    bring_up(
        tmp_path,
        "dr",
        {"database": "mysql://hs@10.1.0.5:3306/petclinic", "url": "http://10.1.0.4/"},
    )
    config = load(path)
    assert config.site("primary").database_url.host == "10.0.0.5"
    assert config.site("dr").database == "mysql://hs@10.1.0.5:3306/petclinic"
    assert config.dr is not None and config.dr.entry is not None
    assert config.dr.entry.servers == {"primary": "10.0.0.4:8080", "dr": "10.1.0.4:80"}


def test_what_the_file_gives_wins(tmp_path: Path) -> None:
    path = project(tmp_path, database="mysql://root@127.0.0.1:3307/app")
    bring_up(tmp_path, "primary", {"database": "mysql://hs@10.0.0.5/app", "url": "http://h:1/"})
    bring_up(tmp_path, "dr", {"database": "mysql://hs@10.1.0.5/app", "url": "http://h2:2/"})
    config = load(path)
    assert config.site("dr").database == "mysql://root@127.0.0.1:3307/app"
    assert config.dr is not None and config.dr.entry is not None
    assert config.dr.entry.servers == {"primary": "h:1", "dr": "10.9.9.9:81"}


def test_a_site_not_up_has_no_database_and_says_how_to_get_one(tmp_path: Path) -> None:
    path = project(tmp_path)
    data = yaml.safe_load(path.read_text())
    del data["dr"]  # the entry needs the primary's server: nothing is up
    path.write_text(yaml.safe_dump(data))
    bring_up(tmp_path, "primary", {"database": "mysql://hs@10.0.0.5/app"})
    DeploymentStore(StateStore(tmp_path / ".hotsite" / "state.db")).set_site("primary", "down")
    config = load(path)
    with pytest.raises(ConfigError) as caught:
        config.site("primary").database_url  # noqa: B018
    assert "hotsite up SITE" in (caught.value.hint or str(caught.value))
