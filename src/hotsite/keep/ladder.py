"""The healing ladder: from probe results to actions, within budgets.

Per service and node: its check failing ``failures`` probes in a row → restart it;
after ``restarts`` restarts within ``window`` → replace the node; after
``replacements`` replaced nodes of the service within the hour → give up (the service
is marked failed and no longer healed). A node that answers no probe at all (SSH) for
``unreachable_after`` probes in a row is replaced at once: no restart can reach it.
A node of a stateful group (the database) is never replaced: that is a failover, so
healing reports it instead, once.

Only decisions here, no I/O but the budget counts: the duty (heal.py) executes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from hotsite.config_keep import HealingConfig

Kind = Literal["restart", "replace", "give-up", "report"]


class Budgets(Protocol):
    def restarts(self, node: str, service: str, window: float) -> int: ...

    def replacements(self, service: str) -> int: ...

    def failed(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class Action:
    kind: Kind
    node: str
    services: tuple[str, ...]
    reason: str  # what failed, in words
    since: float  # when the failure was first seen (time to healthy counts from here)
    reachable: bool = True


@dataclass
class Ladder:
    config: HealingConfig
    budgets: Budgets
    stateful_groups: frozenset[str] = frozenset()
    _failing: dict[tuple[str, str], int] = field(default_factory=dict)
    _first_seen: dict[tuple[str, str], float] = field(default_factory=dict)
    _silent: dict[str, int] = field(default_factory=dict)
    _reported: set[str] = field(default_factory=set)

    def reset(self) -> None:
        """Forget the counts in a row (the site was changed by someone else meanwhile)."""
        self._failing.clear()
        self._first_seen.clear()
        self._silent.clear()

    def observe(
        self, probes: Mapping[tuple[str, str], str], groups: Mapping[str, str], now: float
    ) -> list[Action]:
        """``probes``: (node, service) → ok / failed / unreachable; ``groups``: node →
        its group. At most one action per node."""
        given_up = self.budgets.failed()
        by_node: dict[str, dict[str, str]] = {}
        for (node, service), health in probes.items():
            by_node.setdefault(node, {})[service] = health
        for key in [k for k in self._failing if k not in probes]:  # gone nodes
            self._failing.pop(key, None)
            self._first_seen.pop(key, None)
        actions = []
        for node, services in sorted(by_node.items()):
            action = self._node(node, services, groups.get(node, ""), given_up, now)
            if action is not None:
                actions.append(action)
                self._forget(node)
        return actions

    def _forget(self, node: str) -> None:
        self._silent.pop(node, None)
        for key in [k for k in self._failing if k[0] == node]:
            self._failing.pop(key, None)
            self._first_seen.pop(key, None)

    def _node(
        self, node: str, services: dict[str, str], group: str, given_up: dict[str, str], now: float
    ) -> Action | None:
        live = {s: h for s, h in services.items() if s not in given_up}
        if not live:
            return None
        if all(h == "unreachable" for h in services.values()):
            self._silent[node] = self._silent.get(node, 0) + 1
            self._first_seen.setdefault((node, ""), now)
        else:
            self._silent.pop(node, None)
            self._first_seen.pop((node, ""), None)
        # Probes come faster while something is wrong: a node must also have been silent
        # for as long as that many probes take at the normal interval (a blip is no loss).
        span = (self.config.unreachable_after - 1) * self.config.interval
        silent_since = self._first_seen.get((node, ""), now)
        if (
            self._silent.get(node, 0) >= self.config.unreachable_after
            and now - silent_since >= span
        ):
            since = self._first_seen.pop((node, ""), now)
            reason = f"node {node} answered no probe (SSH) {self._silent[node]} times in a row"
            return self._replace_or_stop(node, tuple(sorted(live)), group, reason, since, False)
        if node in self._silent:
            return None  # not yet: a lost probe or two is no lost node
        for service, health in sorted(live.items()):
            key = (node, service)
            if health == "ok":
                self._failing.pop(key, None)
                self._first_seen.pop(key, None)
                continue
            self._failing[key] = self._failing.get(key, 0) + 1
            self._first_seen.setdefault(key, now)
            if self._failing[key] < self.config.failures:
                continue
            since = self._first_seen[key]
            reason = f"{service} on {node}: check failed {self._failing[key]} times in a row"
            if health == "unreachable":
                reason = f"{service} on {node}: probe did not come back {self._failing[key]} times"
            done = self.budgets.restarts(node, service, self.config.window)
            if done < self.config.restarts:
                return Action("restart", node, (service,), reason, since)
            reason += f"; {done} restart(s) within {self.config.window:g} s"
            return self._replace_or_stop(node, (service,), group, reason, since, True)
        return None

    def _replace_or_stop(
        self,
        node: str,
        services: tuple[str, ...],
        group: str,
        reason: str,
        since: float,
        reachable: bool,
    ) -> Action | None:
        if group in self.stateful_groups:
            if not reachable:
                if node in self._reported:
                    return None
                self._reported.add(node)
                return Action("report", node, services, reason, since, reachable)
            return Action(
                "give-up",
                node,
                services,
                reason + f"; group {group!r} is stateful: its node is never replaced by healing",
                since,
                reachable,
            )
        spent = [s for s in services if self.budgets.replacements(s) >= self.config.replacements]
        if spent:
            return Action(
                "give-up",
                node,
                services,
                reason + f"; {self.config.replacements} node replacement(s) within the hour"
                " already (healing.replacements)",
                since,
                reachable,
            )
        return Action("replace", node, services, reason, since, reachable)
