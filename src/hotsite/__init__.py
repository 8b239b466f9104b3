"""hotsite: keep a hot standby copy of an application site, and move traffic to it."""

__version__ = "0.1.0"
