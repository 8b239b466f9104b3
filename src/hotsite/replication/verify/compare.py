"""Compare one table between the sites, chunk by chunk, at common replication positions.

Pass 1 walks the primary key. Each chunk is checksummed on the source in a snapshot at
position P_s and on the target in a snapshot at P_t >= P_s (the target first waits for
its applier to reach P_s). One-column integer keys are cut into key ranges, so both
sites scan a chunk at the same time; other keys are walked on the source's index by a
thread of its own, one chunk ahead of the target. A chunk is identical when the
checksums agree and no source transaction in (P_s, P_t] touched the table (per the
link's journal), or agree and the touched keys of its range, compared again, agree.

A differing chunk of more than NARROW_ROWS rows is first narrowed (``_narrow``): split
16 ways in one aligned pass per site, recursively. Then rows are compared (``_settle``): MD5 per row on
both sides at a fresh aligned pair of positions. A key's result is accepted only when
no transaction between the two positions touched it — then the source row is the same at
P_s and P_t, so the two reads compare both sites as of P_t. Touched keys are compared
again in a new round; keys still touched after ``max_rounds`` rounds (more while the
rounds still settle keys) are reported as unsettled, never as differences.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from hotsite.replication.gtid import GtidState
from hotsite.replication.schema import TableInfo
from hotsite.replication.transactions import Key
from hotsite.replication.verify import sql
from hotsite.replication.verify.chunks import ChunkSizer, next_step
from hotsite.replication.verify.inflight import JournalReader, normalize, touched_keys
from hotsite.replication.verify.positions import Applied, SourceSite, TargetSite
from hotsite.replication.verify.report import DIFFERENT, EXTRA, MISSING, RowDiff, TableResult
from hotsite.replication.verify.rows import describe, in_range, orderable, row_hashes

NARROW_ROWS = 2000  # differing ranges larger than this are split before rows are compared
NARROW_WAYS = 16


class Repairs(Protocol):
    def repair(self, shape: TableInfo, keys: list[Key]) -> int: ...


Progress = Callable[[str, int], None]  # (table, rows just verified)


@dataclass
class Settings:
    hash_fn: str = "CRC32C"
    chunk_seconds: float = 0.25
    max_rounds: int = 8
    detail_limit: int = 1000  # rows kept per table in the report (all are counted)


@dataclass
class Sites:
    """Connections: a pair scanning (the source side runs in a thread), a pair checking."""

    scan_source: SourceSite
    scan_target: TargetSite
    check_source: SourceSite
    check_target: TargetSite
    journal: JournalReader

    def close(self) -> None:
        for site in (self.scan_source, self.scan_target, self.check_source, self.check_target):
            site.close()
        self.journal.close()


@dataclass(frozen=True)
class SourceChunk:
    lower: Key | None
    upper: Key | None  # None: open-ended, the last chunk
    count: int
    checksum: int
    position: GtidState  # of the source snapshot the chunk was read in
    seconds: float


class TableVerifier:
    def __init__(
        self,
        sites: Sites,
        shape: TableInfo,
        settings: Settings,
        progress: Progress | None = None,
        repairer: Repairs | None = None,
    ) -> None:
        self.sites = sites
        self.shape = shape
        self.settings = settings
        self.progress = progress
        self.repairer = repairer
        self.result = TableResult(shape.label, shape.primary_key)
        self._last_seen = 0

    def run(self) -> TableResult:
        started = time.monotonic()
        with ThreadPoolExecutor(1, thread_name_prefix="verify-source") as pool:
            try:
                if sql.integer_key(self.shape):
                    self._walk_ranges(pool)
                else:
                    self._walk_index(pool)
            finally:
                self.sites.scan_source.end()
        self.result.seconds = time.monotonic() - started
        self.result.finish()
        return self.result

    # --- pass 1: chunk checksums ---------------------------------------------------

    def _snapshot_age(self) -> float:
        # Reuse a source snapshot for a few chunks only when looking up its position is
        # slow (BINLOG_GTID_POS reads the binlog file up to the snapshot's offset).
        return min(1.0, 10 * self.sites.scan_source.lookup_seconds)

    def _walk_ranges(self, pool: ThreadPoolExecutor) -> None:
        """Integer keys: chunks are key ranges planned from the rows the last one held, so
        both sites scan each chunk at the same time (no boundary to find first)."""
        spans = [
            site.query(sql.key_span_sql(self.shape))[0]
            for site in (self.sites.check_source, self.sites.check_target)
        ]
        lows = [int(s[0]) for s in spans if s[0] is not None]
        highs = [int(s[1]) for s in spans if s[1] is not None]
        if not lows:
            self._range_chunk(pool, None, None)
            return
        low, high = min(lows), max(highs)
        sizer = ChunkSizer(self.settings.chunk_seconds)
        step, cursor, lower = sizer.rows, low - 1, None
        while True:
            upper = cursor + step
            last = upper >= high  # the first and last ranges are open: nothing escapes
            rows, seconds = self._range_chunk(pool, lower, None if last else (upper,))
            if last:
                return
            sizer.observe(rows, seconds)
            step = next_step(step, rows, sizer.rows)
            cursor, lower = upper, (upper,)

    def _range_chunk(
        self, pool: ThreadPoolExecutor, lower: Key | None, upper: Key | None
    ) -> tuple[int, float]:
        source, target, shape = self.sites.scan_source, self.sites.scan_target, self.shape
        started = time.monotonic()
        position = source.fresh(self._snapshot_age())
        where, args = sql.range_where(shape.primary_key, lower, upper)
        statement = sql.chunk_checksum_sql(shape, self.settings.hash_fn, where)
        mine = pool.submit(source.query, statement, args)
        try:
            applied = target.begin(position)
            theirs = target.query(statement, args)[0]
            target.end()
        finally:
            # The source connection must be idle again before anyone (an error path
            # included) uses it.
            source_row = mine.result()[0]
        count, checksum = (int(v) for v in source_row)
        seconds = time.monotonic() - started
        chunk = SourceChunk(lower, upper, count, checksum, position, seconds)
        self._judge(chunk, applied, (int(theirs[0]), int(theirs[1])))
        return count, seconds

    def _walk_index(self, pool: ThreadPoolExecutor) -> None:
        """Other keys: the source walks the index one chunk ahead of the target."""
        sizer = ChunkSizer(self.settings.chunk_seconds)
        ahead: Future[SourceChunk] | None = pool.submit(self._source_chunk, None, sizer.rows)
        try:
            while ahead is not None:
                chunk = ahead.result()
                sizer.observe(chunk.count, chunk.seconds)
                ahead = None
                if chunk.upper is not None:
                    ahead = pool.submit(self._source_chunk, chunk.upper, sizer.rows)
                self._target_chunk(chunk)
        finally:
            if ahead is not None:
                ahead.cancel()
                try:
                    ahead.result()
                except Exception:  # the error that matters is already propagating
                    pass

    def _source_chunk(self, lower: Key | None, limit: int) -> SourceChunk:
        source, shape = self.sites.scan_source, self.shape
        started = time.monotonic()
        position = source.fresh(self._snapshot_age())
        where, args = sql.range_where(shape.primary_key, lower, None)
        row = source.query(sql.next_chunk_sql(shape, self.settings.hash_fn, where, limit), args)[0]
        count, checksum = int(row[0]), int(row[1])
        upper: Key | None = None
        if count == limit:
            if len(shape.primary_key) == 1:
                upper = (row[2],)
            else:
                upper = tuple(source.query(sql.nth_key_sql(shape, where, limit - 1), args)[0])
        return SourceChunk(lower, upper, count, checksum, position, time.monotonic() - started)

    def _target_chunk(self, chunk: SourceChunk) -> None:
        target, shape = self.sites.scan_target, self.shape
        applied = target.begin(chunk.position)
        where, args = sql.range_where(shape.primary_key, chunk.lower, chunk.upper)
        row = target.query(sql.chunk_checksum_sql(shape, self.settings.hash_fn, where), args)[0]
        target.end()
        self._judge(chunk, applied, (int(row[0]), int(row[1])))

    def _judge(self, chunk: SourceChunk, applied: Applied, theirs: tuple[int, int]) -> None:
        """Accept the chunk, or settle it row by row (see the module docstring)."""
        self.result.chunks += 1
        self.result.rows += chunk.count
        window = self.sites.journal.window(chunk.position, applied)
        if theirs == (chunk.count, chunk.checksum):
            touched = touched_keys(window, self.shape)
            if touched is not None:
                keys = [k for k in touched.values() if in_range(k, chunk.lower, chunk.upper)]
                if keys:
                    self._settle(chunk.lower, chunk.upper, keys)
                self._progress(chunk.count)
                return
        if chunk.count > NARROW_ROWS:
            self._narrow(chunk.lower, chunk.upper, 0)
        else:
            self._settle(chunk.lower, chunk.upper, None)
        self._progress(chunk.count)

    def _narrow(self, lower: Key | None, upper: Key | None, depth: int) -> None:
        """Split a differing range into sub-ranges checksummed in one aligned pass per
        site; only those that differ (or hold moved keys) go further."""
        cuts = self._cuts(lower, upper) if depth < 6 else None
        if cuts is None:
            self._settle(lower, upper, None)
            return
        if not cuts:
            return  # nothing on either side (rows may have gone since: the chunk says so)
        shape = self.shape
        where, args = sql.range_where(shape.primary_key, lower, upper)
        cut_args = [v for cut in cuts for v in cut]
        statement = sql.bucket_checksums_sql(shape, self.settings.hash_fn, where, len(cuts))
        source, target = self.sites.check_source, self.sites.check_target
        try:
            position = source.begin()
            mine = {
                int(r[0]): (int(r[1]), int(r[2])) for r in source.query(statement, cut_args + args)
            }
            applied = target.begin(position)
            theirs = {
                int(r[0]): (int(r[1]), int(r[2])) for r in target.query(statement, cut_args + args)
            }
        finally:
            source.end()
            target.end()
        touched = touched_keys(self.sites.journal.window(position, applied), shape)
        if touched is None:
            self._settle(lower, upper, None)
            return
        edges: list[Key | None] = [lower, *cuts, upper]
        for i in range(len(edges) - 1):
            a, b = edges[i], edges[i + 1]
            if mine.get(i) != theirs.get(i):
                self._narrow(a, b, depth + 1)
                continue
            keys = [k for k in touched.values() if in_range(k, a, b)]
            if keys:
                self._settle(a, b, keys)

    def _cuts(self, lower: Key | None, upper: Key | None) -> list[Key] | None:
        """Up to 15 keys splitting a range evenly; [] when no site has rows in it, None
        when it is small enough to compare row by row."""
        shape = self.shape
        where, args = sql.range_where(shape.primary_key, lower, upper)
        sites = (self.sites.check_source, self.sites.check_target)
        if sql.integer_key(shape):  # key arithmetic: two index dives per site
            spans = [site.query(sql.key_span_sql(shape, where), args)[0] for site in sites]
            lows = [int(s[0]) for s in spans if s[0] is not None]
            highs = [int(s[1]) for s in spans if s[1] is not None]
            if not lows:
                return []
            low, high = min(lows), max(highs)
            if high - low < NARROW_ROWS:
                return None
            width = high - low + 1
            return [
                (c,)
                for c in sorted({low - 1 + width * i // NARROW_WAYS for i in range(1, NARROW_WAYS)})
            ]
        counts = [int(site.query(sql.count_sql(shape, where), args)[0][0]) for site in sites]
        if max(counts) == 0:
            return []
        if max(counts) <= NARROW_ROWS:
            return None
        fuller = sites[counts.index(max(counts))]
        step = -(-max(counts) // NARROW_WAYS)
        return [tuple(row) for row in fuller.query(sql.cut_keys_sql(shape, where, step), args)]

    def _progress(self, rows: int) -> None:
        if self.progress is not None:
            self.progress(self.shape.label, rows)

    # --- rows at a common position ---------------------------------------------------

    def _settle(self, lower: Key | None, upper: Key | None, keys: list[Key] | None) -> None:
        """Compare the rows of a range (or only ``keys`` in it) until every key settles."""
        pending = keys
        # After max_rounds, rounds go on (up to three times as many) while each still
        # settles some keys: a target lagging seconds behind a busy source makes every
        # window long, and its touched keys thin out round by round rather than at once.
        # A key touched in every window (a hot row) stops the shrinking, and the rounds.
        attempt = 0
        while True:
            if attempt:
                time.sleep(min(0.5, 0.02 * 2**attempt))
            before = pending
            pending, found = self._round(lower, upper, pending)
            if found and self.repairer is not None:
                self.result.repaired += self.repairer.repair(self.shape, [d.key for d in found])
            if pending == []:
                return
            attempt += 1
            shrinking = before is None or (pending is not None and len(pending) < len(before))
            if attempt >= self.settings.max_rounds * (3 if shrinking else 1):
                break
        self.result.unsettled += len(pending) if pending is not None else max(1, self._last_seen)

    def _round(
        self, lower: Key | None, upper: Key | None, keys: list[Key] | None
    ) -> tuple[list[Key] | None, list[RowDiff]]:
        """One aligned comparison; returns the keys to look at again and the differences."""
        source, target, shape = self.sites.check_source, self.sites.check_target, self.shape
        self.result.row_rounds += 1
        where, args = sql.range_where(shape.primary_key, lower, upper)
        if keys is not None:
            in_sql, in_args = sql.keys_in(shape.primary_key, keys)
            where, args = f"{where} AND {in_sql}", args + in_args
        try:
            position = source.begin()
            source_rows = row_hashes(source, shape, where, args)
            applied = target.begin(position)
            target_rows = row_hashes(target, shape, where, args)
            self._last_seen = len(source_rows.keys() | target_rows.keys())
            window = self.sites.journal.window(position, applied)
            touched = touched_keys(window, shape)
            if touched is None:
                return keys, []  # cannot tell what moved in between: try again
            settled: list[tuple[Key, str]] = []
            for key in source_rows.keys() | target_rows.keys():
                mine, theirs = source_rows.get(key), target_rows.get(key)
                if mine != theirs and normalize(key) not in touched:
                    settled.append(
                        (key, MISSING if theirs is None else EXTRA if mine is None else DIFFERENT)
                    )
            budget = self.settings.detail_limit - len(self.result.diffs)
            found = describe(source, target, shape, settled, budget)
        finally:
            source.end()
            target.end()
        for diff in found:
            self.result.add(diff, self.settings.detail_limit)
        # Touched keys are compared again, if they are in this range: those seen on either
        # side, and those Python can place in the range (strings follow collations).
        seen = {normalize(k) for k in source_rows.keys() | target_rows.keys()}
        again = [
            raw
            for norm, raw in touched.items()
            if norm in seen or (orderable(raw) and in_range(raw, lower, upper))
        ]
        return again, found
