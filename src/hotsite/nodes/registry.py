"""Drivers by name, imported only when used (libcloud alone costs ~0.3 s to import).

Built-in drivers are listed here as ``"module:Class"`` strings. A third party adds its
own with ``register_driver("mycloud", "mypkg.driver:MyCloudDriver")`` or, without any
code in hotsite, through the ``hotsite.drivers`` entry-point group of its package.
"""

from __future__ import annotations

import importlib
from importlib import metadata

from hotsite.errors import DriverError
from hotsite.nodes.base import NodeDriver

ENTRY_POINT_GROUP = "hotsite.drivers"

_DRIVERS: dict[str, str | type[NodeDriver]] = {
    "local": "hotsite.nodes.local:LocalDriver",
    "byon": "hotsite.nodes.byon:ByonDriver",
    "libcloud": "hotsite.nodes.libcloud:LibcloudDriver",
}


def register_driver(name: str, target: str | type[NodeDriver]) -> None:
    """Make ``name`` usable as ``driver:`` in the project file."""
    _DRIVERS[name] = target


def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def driver_names() -> list[str]:
    return sorted(set(_DRIVERS) | set(_entry_points()))


def driver_class(name: str) -> type[NodeDriver]:
    target = _DRIVERS.get(name) or _entry_points().get(name)
    if target is None:
        raise DriverError(
            f"unknown node driver {name!r}",
            f"known drivers: {', '.join(driver_names())}; a third-party driver registers"
            f" itself in the {ENTRY_POINT_GROUP!r} entry-point group",
        )
    if isinstance(target, str):
        module_name, _, attr = target.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise DriverError(
                f"node driver {name!r} cannot be loaded from {target}: {exc}"
            ) from None
        if not (isinstance(cls, type) and issubclass(cls, NodeDriver)):
            raise DriverError(f"node driver {name!r} ({target}) is not a NodeDriver")
        _DRIVERS[name] = cls
        return cls
    return target
