"""Nodes: machines of a site, provided by drivers (cloud via Libcloud, BYON pools, local)."""
