"""Capture: read the source database's own change log into Transactions."""
