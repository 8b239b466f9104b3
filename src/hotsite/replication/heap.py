"""Keep Python's cyclic collector off the replication path's tail.

A process of the pipeline starts with ~140k long-lived objects (modules, the project's
models, drivers). Each full collection walks them all: 40-120 ms measured on the
bench machine, during which apply (or capture) stands still, and that is the lag tail
(bench/replication_vs_native.py prints these pauses). Frozen after start-up, they are
never walked again; what the pipeline allocates afterwards is collected as usual.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect once (so no garbage of start-up is kept for good), then freeze the rest.
    Called again (a link restarted in the same process), it freezes only what is new."""
    gc.collect()
    gc.freeze()
