"""``hotsite verify``: prove two sites of a replication link hold the same rows, find the
rows that differ, and repair only those. See docs/verify.md for how comparisons are
aligned on replication positions.

Public API: ``verify_link(config, link, options, progress) -> VerifyReport``, its
``VerifyOptions`` and ``VerifyProgress``, and of the report ``TableResult``,
``IDENTICAL`` and ``key_text``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from hotsite.config import LinkConfig, ProjectConfig
from hotsite.errors import ConfigError, HotsiteError
from hotsite.replication.capture.checks import require_database
from hotsite.replication.schema import TableInfo, read_tables
from hotsite.replication.verify.compare import Settings, Sites, TableVerifier
from hotsite.replication.verify.inflight import JournalReader
from hotsite.replication.verify.positions import SourceSite, TargetSite
from hotsite.replication.verify.repair import Repairer, ReverseRepairer
from hotsite.replication.verify.report import (
    IDENTICAL,
    NO_KEY,
    SCHEMA,
    SOURCE_ONLY,
    TARGET_ONLY,
    TableResult,
    VerifyReport,
    key_text,
)
from hotsite.replication.verify.schema_diff import schema_differences
from hotsite.tablematch import table_matcher

__all__ = [
    "IDENTICAL",
    "TableResult",
    "VerifyOptions",
    "VerifyProgress",
    "VerifyReport",
    "key_text",
    "verify_link",
]


@dataclass
class VerifyOptions:
    tables: list[str] = field(default_factory=list)  # narrow the link's tables further
    repair: bool = False
    authority: str | None = None  # the site whose rows are right (default: link source)
    wait_timeout: float = 30.0
    chunk_seconds: float = 0.25
    max_rounds: int = 8
    detail_limit: int = 1000


class VerifyProgress:
    """Callbacks for a progress display; the default does nothing."""

    def start(self, tables: list[tuple[str, int]]) -> None:
        """The tables to compare, each with its estimated row count."""

    def rows(self, table: str, rows: int) -> None:
        """``rows`` more rows of ``table`` were verified."""

    def table_done(self, result: TableResult) -> None:
        """A table is finished (compared, or reported without comparing)."""


def verify_link(
    config: ProjectConfig,
    link: LinkConfig,
    options: VerifyOptions,
    progress: VerifyProgress | None = None,
) -> VerifyReport:
    progress = progress or VerifyProgress()
    authority = options.authority or link.source
    if authority not in (link.source, link.target):
        raise ConfigError(
            f"--from {authority!r} is not a site of the link {link.source}->{link.target}"
        )
    for pattern in options.tables:
        if pattern.count(".") != 1:
            raise ConfigError(
                f"table pattern {pattern!r} must look like 'schema.table' or 'schema.*'"
            )
    source_url = config.site(link.source).database_url
    target_url = config.site(link.target).database_url
    in_link = table_matcher(link.tables, source_url.database)
    narrowed = table_matcher(options.tables, source_url.database) if options.tables else None

    def matches(schema: str, table: str) -> bool:
        return bool(in_link(schema, table)) and (narrowed is None or bool(narrowed(schema, table)))

    report = VerifyReport(link.name, link.source, link.target, repair=options.repair)
    sites = _open_sites(config, link, options.wait_timeout)
    repair_sites: list[SourceSite | TargetSite] = []
    try:
        # A source database that is not there would verify as 'identical: 0 rows'.
        require_database(sites.check_source.conn, link.source, source_url.database)
        # Fail fast, with the reason, when the target is not being fed.
        sites.scan_target.wait_for(sites.scan_source.begin())
        sites.scan_source.end()
        settings = Settings(
            hash_fn=_hash_function(sites),
            chunk_seconds=options.chunk_seconds,
            max_rounds=options.max_rounds,
            detail_limit=options.detail_limit,
        )
        mine = read_tables(sites.check_source.conn, matches)
        theirs = read_tables(sites.check_target.conn, matches)
        names = sorted(mine.keys() | theirs.keys())
        if not names and options.tables:
            raise ConfigError(
                f"no table matches {', '.join(options.tables)} on either site",
                f"the link replicates {', '.join(link.tables) or source_url.database + '.*'}",
            )
        repairer: Repairer | ReverseRepairer | None = None
        if options.repair:
            repair_source = SourceSite(source_url, link.source)
            repair_target = TargetSite(
                target_url, link.target, link.source, config.link_key(link), options.wait_timeout
            )
            repair_sites += [repair_source, repair_target]
            if authority == link.source:
                repairer = Repairer(repair_source, repair_target, sites.journal)
            else:
                repairer = ReverseRepairer(repair_source, repair_target)
        progress.start([(f"{s}.{t}", _estimate(sites, s, t)) for s, t in names if (s, t) in mine])
        for name in names:
            result = _verify_table(
                sites, settings, progress, repairer, mine.get(name), theirs.get(name)
            )
            report.tables.append(result)
            progress.table_done(result)
    finally:
        sites.close()
        for site in repair_sites:
            site.close()
    report.seconds = time.monotonic() - report.started
    return report


def _verify_table(
    sites: Sites,
    settings: Settings,
    progress: VerifyProgress,
    repairer: Repairer | ReverseRepairer | None,
    mine: TableInfo | None,
    theirs: TableInfo | None,
) -> TableResult:
    if mine is None or theirs is None:
        shape = mine or theirs
        assert shape is not None
        return TableResult(shape.label, status=SOURCE_ONLY if theirs is None else TARGET_ONLY)
    if not mine.primary_key:
        return TableResult(mine.label, status=NO_KEY)
    differences = schema_differences(mine, theirs)
    if differences:
        return TableResult(mine.label, mine.primary_key, status=SCHEMA, schema=differences)
    return TableVerifier(sites, mine, settings, progress.rows, repairer).run()


def _open_sites(config: ProjectConfig, link: LinkConfig, wait_timeout: float) -> Sites:
    source_url = config.site(link.source).database_url
    target_url = config.site(link.target).database_url
    opened: list[SourceSite | TargetSite] = []
    try:
        for _ in range(2):
            opened.append(SourceSite(source_url, link.source))
            opened.append(
                TargetSite(
                    target_url, link.target, link.source, config.link_key(link), wait_timeout
                )
            )
    except HotsiteError:
        for site in opened:
            site.close()
        raise
    scan_source, scan_target, check_source, check_target = opened
    assert isinstance(scan_source, SourceSite) and isinstance(check_source, SourceSite)
    assert isinstance(scan_target, TargetSite) and isinstance(check_target, TargetSite)
    journal = JournalReader(config.journal_path(link))
    return Sites(scan_source, scan_target, check_source, check_target, journal)


def _hash_function(sites: Sites) -> str:
    """CRC32C when both servers have it (MariaDB 10.8+), else CRC32."""
    for site in (sites.check_source, sites.check_target):
        try:
            site.query("SELECT CRC32C('')")
        except HotsiteError:
            return "CRC32"
    return "CRC32C"


def _estimate(sites: Sites, schema: str, table: str) -> int:
    rows = sites.check_source.query(
        "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
        " AND TABLE_NAME = %s",
        (schema, table),
    )
    return int(rows[0][0] or 0) if rows else 0
