"""A link's table patterns (``replication[].tables``) as a predicate.

Apart from the configuration models: the capture process needs only this, and loading
the models (pydantic) cost its start a seventh of a second."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable


def table_matcher(patterns: list[str], default_schema: str) -> Callable[[str, str], bool]:
    """A predicate (schema, table) -> bool for a link's table patterns."""
    compiled = [p.lower() for p in patterns] or [f"{default_schema.lower()}.*"]

    def matches(schema: str, table: str) -> bool:
        name = f"{schema}.{table}".lower()
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in compiled)

    return matches
