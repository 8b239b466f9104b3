"""Moves between sites (failover, relocate, failback), the record, leases and fencing."""
