"""Values in a blueprint: ``{{ inputs.port }}``, ``{{ nodes.db[0].address }}``, secrets.

A deliberately small template language (no loops, no code): a dotted path with list
indexes, ``[*]`` to take an attribute of every item, and four filters: ``join("sep")``,
``default(value)``, ``quote`` (one shell word: ``shlex.quote``; a list becomes one
quoted word per item) and ``safe_dir`` (the value must be a directory a step may
``rm -rf``: absolute, not ``/``, no ``..``). Enough to wire a site together, small
enough that a typo gives an error naming the key rather than an empty string.

Values are text, not shell: a step that puts one into a command line writes
``{{ inputs.dir | quote }}``, or an input holding a space or a ``;`` changes the command.

Secrets are allowed only in ``env`` values: commands and files that reach the node's
command log never contain them, and ``redact`` scrubs them from any output we keep.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from hotsite.blueprint.agent_service import AgentSetup
from hotsite.blueprint.model import Blueprint
from hotsite.errors import ConfigError
from hotsite.redaction import check_secret_length, redact
from hotsite.shellsafe import removable_dir

_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.S)
_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+|\*)\]")
_FILTER = re.compile(r"^(join|default|quote|safe_dir)(?:\((.*)\))?$", re.S)
_FILTERS = "join, default, quote, safe_dir"
_ARGUMENTS = {"join": True, "default": True, "quote": False, "safe_dir": False}


class RenderError(ConfigError):
    """A template names something that does not exist."""


@dataclass(frozen=True)
class NodeView:
    """What a template may read about a node."""

    name: str
    group: str
    index: int
    address: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "group": self.group,
            "index": self.index,
            "address": self.address,
        }


@dataclass
class Values:
    """Everything templates can see while rendering one site."""

    site: str
    inputs: dict[str, Any]
    secrets: dict[str, str]
    nodes: dict[str, list[NodeView]] = field(default_factory=dict)
    service_groups: dict[str, str] = field(default_factory=dict)
    # Built-in services' own secrets (the deployed agent's token and project file): not
    # for templates, but hidden and masked like the blueprint's secrets.
    hidden: set[str] = field(default_factory=set)
    agent: AgentSetup | None = None  # when the site's agent has duties (agent_service.py)

    @property
    def secret_values(self) -> list[str]:
        return [*self.secrets.values(), *sorted(self.hidden)]

    def context(self, node: NodeView | None, allow_secrets: bool) -> dict[str, Any]:
        groups = {g: [n.as_dict() for n in views] for g, views in self.nodes.items()}
        ctx: dict[str, Any] = {
            "site": self.site,
            "inputs": self.inputs,
            "nodes": groups,
            "services": {
                name: {"nodes": groups.get(group, [])}
                for name, group in self.service_groups.items()
            },
        }
        if node is not None:
            ctx["node"] = node.as_dict()
        if allow_secrets:
            ctx["secrets"] = self.secrets
        return ctx

    def redact(self, text: str) -> str:
        return redact(text, self.secret_values)


def resolve_inputs(
    blueprint: Blueprint, given: dict[str, Any], site: str, where: str
) -> dict[str, Any]:
    """Inputs: the blueprint's defaults (with its site overrides), then the project file's."""
    unknown = sorted(set(given) - set(blueprint.inputs))
    if unknown:
        raise ConfigError(
            f"{where}: input {unknown[0]!r} is not declared by the blueprint",
            f"declared inputs: {', '.join(sorted(blueprint.inputs)) or 'none'}",
        )
    values: dict[str, Any] = {}
    for name, spec in blueprint.inputs.items():
        value = given.get(name, spec.default)
        if value is None:
            raise ConfigError(
                f"site {site!r}: input {name!r} has no value",
                f"set sites.{site}.inputs.{name} in the project file",
            )
        values[name] = value
    return values


def read_secrets(blueprint: Blueprint) -> dict[str, str]:
    """Secret values from the controller's environment; never stored anywhere."""
    values: dict[str, str] = {}
    for name, secret in blueprint.secrets.items():
        value = os.environ.get(secret.env)
        if value is None:
            raise ConfigError(
                f"secret {name!r}: environment variable {secret.env} is not set",
                f"export {secret.env}=... before running hotsite",
            )
        too_short = check_secret_length(name, value, f"environment variable {secret.env}")
        if too_short:
            raise ConfigError(too_short, f"export a longer {secret.env} before running hotsite")
        values[name] = value
    return values


def _lookup(ctx: Any, path: str, where: str) -> Any:
    pos, value, mapped = 0, ctx, False
    for match in _TOKEN.finditer(path):
        if match.start() != pos:
            break
        pos = match.end()
        key, index = match.group(1), match.group(2)
        try:
            if mapped:
                value = [_step(item, key, index) for item in value]
            else:
                value = _step(value, key, index)
        except (KeyError, IndexError, TypeError):
            raise RenderError(f"{where}: {{{{ {path} }}}}: {_missing(ctx, path)}") from None
        if index == "*":
            mapped = True
    if pos != len(path) or not path:
        raise RenderError(f"{where}: {{{{ {path} }}}}: not a valid reference")
    return value


def _step(value: Any, key: str | None, index: str | None) -> Any:
    if key is not None:
        if not isinstance(value, dict):
            raise TypeError(key)
        return value[key]
    if index == "*":
        if not isinstance(value, list):
            raise TypeError(index)
        return value
    assert index is not None
    if not isinstance(value, list):
        raise TypeError(index)
    return value[int(index)]


def _missing(ctx: dict[str, Any], path: str) -> str:
    head = path.split(".")[0].split("[")[0]
    if head == "secrets":
        return "secrets may only be used in 'env' values (and must be declared under secrets)"
    if head not in ctx:
        return f"unknown name {head!r} (known: {', '.join(sorted(ctx))})"
    if head == "nodes":
        return f"no such node (groups and their sizes: {_sizes(ctx['nodes'])})"
    if head == "inputs":
        return f"no such input (declared: {', '.join(sorted(ctx['inputs'])) or 'none'})"
    return "no such value"


def _sizes(groups: dict[str, list[Any]]) -> str:
    return ", ".join(f"{g}[{len(v)}]" for g, v in sorted(groups.items())) or "none"


def _apply_filter(value: Any, spec: str, where: str) -> Any:
    match = _FILTER.match(spec.strip())
    if not match:
        raise RenderError(f"{where}: unknown filter {spec.strip()!r} (known: {_FILTERS})")
    name, raw = match.groups()
    if not _ARGUMENTS[name]:
        if raw is not None and raw.strip():
            raise RenderError(f"{where}: filter {name} takes no argument")
        return _quote(value) if name == "quote" else _safe_dir(value, where)
    raw = raw or ""
    try:
        arg = ast.literal_eval(raw.strip()) if raw.strip() else ""
    except (ValueError, SyntaxError):
        raise RenderError(f"{where}: filter {name}: argument must be a quoted string") from None
    if name == "join":
        return str(arg).join(str(v) for v in value)
    return arg if value in (None, "") else value


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict) else str(value)


def _quote(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(shlex.quote(_text(v)) for v in value)
    return shlex.quote(_text(value))


def _safe_dir(value: Any, where: str) -> str:
    try:
        return removable_dir("" if value is None else str(value))
    except ValueError as exc:
        raise RenderError(f"{where}: refused as a directory to remove: {exc}") from None


def _evaluate(expression: str, ctx: dict[str, Any], where: str) -> Any:
    path, *filters = expression.split("|")
    path = path.strip()
    try:
        value = _lookup(ctx, path, where)
    except RenderError:
        if filters and filters[0].strip().startswith("default("):
            value = None
        else:
            raise
    for spec in filters:
        value = _apply_filter(value, spec, where)
    return value


def render(text: str, ctx: dict[str, Any], where: str) -> str:
    """Replace every ``{{ ... }}`` in ``text``; unknown names are errors, not blanks."""
    if "{{" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        value = _evaluate(match.group(1), ctx, where)
        if isinstance(value, (list, dict)):
            return json.dumps(value)
        return str(value)

    return _TEMPLATE.sub(one, text)


def render_value(value: Any, ctx: dict[str, Any], where: str) -> Any:
    """Render strings inside nested data (outputs, ports)."""
    if isinstance(value, str):
        return render(value, ctx, where)
    if isinstance(value, dict):
        return {k: render_value(v, ctx, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, ctx, f"{where}[{i}]") for i, v in enumerate(value)]
    return value
