"""Nodes: machines of a site, provided by drivers (cloud via Libcloud, BYON pools, local).

Public API: the contract (``NodeDriver``, ``Node``, ``NodeSpec``, ``Capability``,
``DriverContext``), the registry (``register_driver``, ``driver_class``,
``driver_names``), ``Providers`` (the drivers of the project file's ``nodes:`` section),
``open_store`` (the state store of a project's home) and ``records`` (the node records).

nodes sits on the bottom floor beside remote and uses it (probing, scrubbing hosts);
remote never imports nodes: a ``Node`` hands transports its ``Host``.
"""

from hotsite.nodes import records
from hotsite.nodes.base import Capability, DriverContext, Node, NodeDriver, NodeSpec
from hotsite.nodes.providers import Providers, open_store
from hotsite.nodes.registry import driver_class, driver_names, register_driver

__all__ = [
    "Capability",
    "DriverContext",
    "Node",
    "NodeDriver",
    "NodeSpec",
    "Providers",
    "driver_class",
    "driver_names",
    "open_store",
    "records",
    "register_driver",
]
