"""The project file's ``conflicts:`` section: how apply settles a change that finds the
target row changed at the target too (sites that both take writes; docs/conflicts.md)."""

from __future__ import annotations

import fnmatch
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Policy = Literal["source-wins", "target-wins", "newest-wins", "site-priority", "manual"]
Detect = Literal["all-columns", "changed-columns"]
ROLE_POLICIES = frozenset({"source-wins", "target-wins"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TablePolicy(_Model):
    policy: Policy
    column: str | None = Field(
        default=None, description="newest-wins: the timestamp or version column compared"
    )
    detect: Detect | None = Field(default=None, description="default: the project's")


class ConflictsConfig(_Model):
    policy: Policy = Field(default="site-priority", description="the project's default policy")
    column: str | None = Field(default=None, description="newest-wins: the default column")
    detect: Detect = "all-columns"
    site_priority: list[str] = Field(
        default_factory=list,
        description="sites, highest first; default: the order of sites in the file",
    )
    tables: dict[str, TablePolicy] = Field(
        default_factory=dict, description="'schema.table' or 'schema.*' → its policy"
    )

    @field_validator("tables")
    @classmethod
    def _patterns(cls, tables: dict[str, TablePolicy]) -> dict[str, TablePolicy]:
        for pattern in tables:
            if pattern.count(".") != 1:
                raise ValueError(
                    f"table pattern {pattern!r} must look like 'schema.table' or 'schema.*'"
                )
        return tables

    def for_table(self, schema: str, table: str) -> TablePolicy:
        """The policy of one table: an exact name first, then the first matching pattern."""
        name = f"{schema}.{table}".lower()
        by_name = {pattern.lower(): rule for pattern, rule in self.tables.items()}
        rule = by_name.get(name) or next(
            (r for p, r in by_name.items() if fnmatch.fnmatchcase(name, p)), None
        )
        if rule is None:
            return TablePolicy(policy=self.policy, column=self.column, detect=self.detect)
        column = rule.column or (self.column if rule.policy == "newest-wins" else None)
        return TablePolicy(policy=rule.policy, column=column, detect=rule.detect or self.detect)

    def problems(self, sites: list[str], writers: set[str]) -> list[tuple[tuple[str, ...], str]]:
        """Checks against the sites (the columns are checked against the database at start)."""
        found: list[tuple[tuple[str, ...], str]] = []
        unknown = [s for s in self.site_priority if s not in sites]
        if unknown:
            found.append(
                (
                    ("conflicts", "site_priority"),
                    f"unknown site{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"
                    f" (sites: {', '.join(sites)})",
                )
            )
        elif self.site_priority:
            missing = sorted(writers - set(self.site_priority))
            if missing:
                found.append(
                    (
                        ("conflicts", "site_priority"),
                        f"lists no place for {', '.join(missing)}, which take writes: list"
                        " every such site, highest first",
                    )
                )
        rules = [(("conflicts",), self.policy, self.column)] + [
            (("conflicts", "tables", p), r.policy, r.column or self.column)
            for p, r in self.tables.items()
        ]
        for at, policy, column in rules:
            if policy == "newest-wins" and not column:
                found.append(
                    (at, "newest-wins needs 'column': the timestamp or version column to compare")
                )
            if policy in ROLE_POLICIES and len(writers) > 2:
                found.append(
                    (
                        at,
                        f"{policy} settles a conflict between two sites; {len(writers)} sites"
                        f" take writes ({', '.join(sorted(writers))}): use newest-wins or"
                        " site-priority",
                    )
                )
        return found

    def priority(self, sites: list[str]) -> list[str]:
        return self.site_priority or list(sites)
