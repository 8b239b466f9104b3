"""Chunk sizes that keep every chunk query near a target duration.

Rows per second vary by table (row width) and over time (load, cache), so the size is
re-estimated after every chunk from an exponentially weighted rate, like
pt-table-checksum's ``--chunk-time``: short queries hold no long read views and keep
the progress bar honest; the per-chunk overhead (a snapshot and its position, a round
trip to each site) stays small next to the scan.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_ROWS = 100
MAX_ROWS = 500_000
FIRST_ROWS = 1_000


@dataclass
class ChunkSizer:
    target_seconds: float = 0.25
    rows: int = FIRST_ROWS
    _rate: float = 0.0  # rows per second, smoothed

    def observe(self, rows: int, seconds: float) -> None:
        """Record how long a chunk of ``rows`` took; sets the next size."""
        if rows <= 0:
            return
        rate = rows / max(seconds, 1e-4)
        self._rate = rate if self._rate == 0 else 0.75 * self._rate + 0.25 * rate
        wanted = int(self._rate * self.target_seconds)
        # Grow at most 4x per step: one fast chunk in a cached region must not
        # produce a huge one in a cold region.
        self.rows = max(MIN_ROWS, min(MAX_ROWS, wanted, self.rows * 4))


def next_step(step: int, rows: int, wanted: int) -> int:
    """The next key-range width for integer keys, from the rows the last range held."""
    if rows <= 0:
        return step * 4  # a gap in the keys: stride over it quickly
    return max(1, min(step * 4, max(step // 4, step * wanted // rows)))
