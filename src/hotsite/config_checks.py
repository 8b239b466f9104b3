"""Checks of the project file that look at more than one key: links against sites and
against each other.

They run on the parts of the file that validated on their own (each link, each site's
URL), so a file with a misspelt key elsewhere still gets all of these reported in the
same run. Each problem names the key to change, so the error points at its line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from hotsite.dburl import DatabaseURL
from hotsite.yamlfile import KeyPath, YamlDocument

Problem = tuple[KeyPath, str]


class Link(Protocol):
    """What these checks read of a link (``config.LinkConfig`` has it): config.py calls
    this module, so it cannot be imported back here."""

    @property
    def source(self) -> str: ...

    @property
    def target(self) -> str: ...

    @property
    def server_id(self) -> int | None: ...


L = TypeVar("L", bound=Link)


def link_problems(
    links: list[tuple[int, L]],
    sites: list[str],
    urls: dict[str, DatabaseURL],
    journal_of: Callable[[L], Path],
    doc: YamlDocument,
) -> list[Problem]:
    """Links must name two different known sites, exist once, own their journal and
    server id, and join databases of the same name (hotsite does not map schemas)."""
    problems: list[Problem] = []
    pairs: dict[tuple[str, str], int] = {}
    journals: dict[Path, int] = {}
    server_ids: dict[int, int] = {}

    def first(index: int) -> str:
        line = doc.line_of(("replication", index))
        return f"replication.{index}" + (f", line {line}" if line else "")

    for index, link in links:
        at: KeyPath = ("replication", index)
        unknown = [(end, site) for end, site in (("from", link.source), ("to", link.target))]
        unknown = [(end, site) for end, site in unknown if site not in sites]
        for end, site in unknown:
            known = ", ".join(sorted(sites)) or "none"
            problems.append(((*at, end), f"site {site!r} is not under sites (known: {known})"))
        if unknown:
            continue
        if link.source == link.target:
            problems.append(((*at, "to"), f"a link from {link.source!r} to itself"))
            continue
        pair = (link.source, link.target)
        if pair in pairs:
            problems.append(
                (
                    (*at, "from"),
                    f"a second link {link.source}->{link.target} (the first is"
                    f" {first(pairs[pair])}); remove one or merge their tables",
                )
            )
            continue
        pairs[pair] = index
        journal = journal_of(link)
        if journal in journals:
            problems.append(
                (
                    (*at, "journal"),
                    f"journal {journal} is also the journal of the link at"
                    f" {first(journals[journal])}; give each link its own journal file",
                )
            )
        journals.setdefault(journal, index)
        if link.server_id is not None:
            if link.server_id in server_ids:
                problems.append(
                    (
                        (*at, "server_id"),
                        f"server_id {link.server_id} is also the server_id of the link at"
                        f" {first(server_ids[link.server_id])}; give each link its own",
                    )
                )
            server_ids.setdefault(link.server_id, index)
        problems += _same_database(link, urls)
    return problems


def _same_database(link: Link, urls: dict[str, DatabaseURL]) -> list[Problem]:
    source, target = urls.get(link.source), urls.get(link.target)
    if source is None or target is None or source.database == target.database:
        return []
    return [
        (
            ("sites", link.target, "database"),
            f"database {target.database!r} is not {link.source}'s {source.database!r}"
            f" (link {link.source}->{link.target}): hotsite does not map schemas"
            " — use the same database name on both sites",
        )
    ]
