"""Nodes: machines of a site, provided by drivers (cloud via Libcloud, BYON pools, local).

Public API: the contract (``NodeDriver``, ``Node``, ``NodeSpec``, ``Capability``), the
registry (``register_driver``, ``driver_class``) and ``open_provider`` which builds the
driver for a provider named in the project file.
"""

from hotsite.nodes.base import Capability, DriverContext, Node, NodeDriver, NodeSpec, SSHSettings
from hotsite.nodes.registry import driver_class, driver_names, register_driver

__all__ = [
    "Capability",
    "DriverContext",
    "Node",
    "NodeDriver",
    "NodeSpec",
    "SSHSettings",
    "driver_class",
    "driver_names",
    "register_driver",
]
