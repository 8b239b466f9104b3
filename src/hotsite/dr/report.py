"""What ``hotsite record`` shows (and ``hotsite status`` can include): the record, the
lease, each site's database state and the entry point's routing. Only reads; a part
that cannot be read becomes an error line of the report, the rest is still shown."""

from __future__ import annotations

import time
from typing import Any

from hotsite.config import ProjectConfig
from hotsite.dr.entry import entry_control
from hotsite.dr.project import dr_section, open_records, site_fence
from hotsite.errors import HotsiteError


def dr_report(config: ProjectConfig) -> dict[str, Any]:
    dr = dr_section(config)
    errors: list[str] = []
    record = open_records(config).read()
    now = time.time()
    sites: dict[str, Any] = {}
    for name in config.sites:
        try:
            state = site_fence(config, name).state()
            sites[name] = {"reachable": True, **state.as_dict()}
            del sites[name]["bypass"]
        except HotsiteError as exc:
            sites[name] = {"reachable": False}
            errors.append(str(exc))
        except Exception as exc:  # a query the server refused: still a report
            sites[name] = {"reachable": True, "error": str(exc)}
    writable = [name for name, s in sites.items() if s.get("read_only") is False]
    entry: dict[str, Any] | None = None
    if dr.entry is not None:
        control = entry_control(config)
        entry = {"running": control.running_pid() is not None, "servers": []}
        if entry["running"]:
            try:
                entry["servers"] = [s.__dict__ for s in control.status()]
            except HotsiteError as exc:
                errors.append(str(exc))
    return {
        "record": None if record is None else record.as_dict(now),
        "auto_failover": dr.auto_failover,
        "sites": sites,
        "writable": writable,
        "entry": entry,
        "errors": errors
        + (["no record yet: start 'hotsite controller' once"] if record is None else []),
    }
