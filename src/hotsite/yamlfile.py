"""Load a YAML file and keep the line of every key, so errors can point at it.

PyYAML's composed node tree carries marks; we walk it once to map each key path to
its line, then construct plain Python data. Used by the project file and blueprints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hotsite.errors import ConfigError

KeyPath = tuple[str | int, ...]


@dataclass
class YamlDocument:
    path: Path
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, key_path: KeyPath) -> int | None:
        """The line of the deepest known key along ``key_path`` (1-based)."""
        for end in range(len(key_path), -1, -1):
            line = self.lines.get(tuple(key_path[:end]))
            if line is not None:
                return line
        return None

    def where(self, key_path: KeyPath) -> str:
        line = self.line_of(key_path)
        dotted = ".".join(str(k) for k in key_path) or "(top level)"
        return f"{self.path}:{line}: {dotted}" if line else f"{self.path}: {dotted}"


def _record_lines(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            _record_lines(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, (*path, index), lines)


def load_yaml(path: Path) -> YamlDocument:
    """Read ``path``; raise ConfigError (one line, with file and line) when it is not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found", "create it or pass --config PATH") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({exc.problem})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _record_lines(node, (), lines)
    return YamlDocument(path=path, data=data, lines=lines)


def pydantic_error_message(doc: YamlDocument, exc: Any) -> str:
    """Turn the first error of a pydantic ValidationError into 'file:line: key: what'."""
    errors = exc.errors()
    # A misspelt key also shows up as a missing one; the spelling is the real cause.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(part for part in first["loc"] if not str(part).startswith("function-"))
    # Drop parts that are not keys of the document (a tagged union's tag, like
    # 'byon' in nodes.providers.rack.byon.hosts); the last part may be a missing key.
    kept: KeyPath = ()
    for index, part in enumerate(loc):
        if (*kept, part) in doc.lines or index == len(loc) - 1:
            kept = (*kept, part)
    loc = kept
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key (check its spelling; see docs/config.md)"
    elif first["type"] == "missing":
        message = "required key is missing"
    message = message.removeprefix("Value error, ")
    return f"{doc.where(loc)}: {message}"
