"""Load a YAML file and keep the line of every key, so errors can point at it.

PyYAML's composed node tree carries marks; we walk it once to map each key path to
its line (and to find keys written twice, which PyYAML would silently resolve to the
last one), then construct plain Python data. Used by the project file and blueprints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hotsite.errors import ConfigError, ConfigErrors

KeyPath = tuple[str | int, ...]


@dataclass
class YamlDocument:
    path: Path
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    # 'file:line: key: what' for every problem found while reading (duplicate keys)
    problems: list[tuple[int, str]] = field(default_factory=list)

    def line_of(self, key_path: KeyPath) -> int | None:
        """The line of the deepest known key along ``key_path`` (1-based)."""
        for end in range(len(key_path), -1, -1):
            line = self.lines.get(tuple(key_path[:end]))
            if line is not None:
                return line
        return None

    def where(self, key_path: KeyPath) -> str:
        line = self.line_of(key_path)
        name = dotted(key_path)
        return f"{self.path}:{line}: {name}" if line else f"{self.path}: {name}"


def dotted(key_path: KeyPath) -> str:
    return ".".join(str(k) for k in key_path) or "(top level)"


def _record_lines(doc: YamlDocument, node: yaml.Node, path: KeyPath) -> None:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key in seen:
                    doc.problems.append(
                        (
                            line,
                            f"{doc.path}:{line}: {dotted((*path, key))}: key {key!r} is written"
                            f" twice (lines {seen[key]} and {line}); keep one",
                        )
                    )
                seen.setdefault(key, line)
            doc.lines[(*path, key)] = line
            _record_lines(doc, value_node, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(doc, item, (*path, index))


def load_yaml(path: Path, *, collect: bool = False) -> YamlDocument:
    """Read ``path``; raise ConfigError (one line, with file and line) when it is not YAML.

    Keys written twice are refused, all at once; with ``collect`` they are left in
    ``problems`` instead, for a caller that reports them together with its own.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found", "create it or pass --config PATH") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})",
            "save the file as UTF-8",
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line_text = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line_text}: not valid YAML ({exc.problem})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    doc = YamlDocument(path=path, data=data)
    if node is not None:
        _record_lines(doc, node, ())
    if doc.problems and not collect:
        raise ConfigErrors(doc.problems)
    return doc


def pydantic_error_messages(doc: YamlDocument, exc: Any) -> list[tuple[int, str]]:
    """Every error of a pydantic ValidationError as (line, 'file:line: key: what')."""
    errors = exc.errors()
    # A misspelt key also shows up as a missing one; the spelling is the real cause.
    misspelt = {_key_path(doc, e["loc"])[:-1] for e in errors if e["type"] == "extra_forbidden"}
    found: list[tuple[int, str]] = []
    for error in errors:
        loc = _key_path(doc, error["loc"])
        if error["type"] == "missing" and loc[:-1] in misspelt:
            continue
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (check its spelling; see docs/config.md)"
        elif error["type"] == "missing":
            message = "required key is missing"
        message = message.removeprefix("Value error, ")
        entry = (doc.line_of(loc) or 0, f"{doc.where(loc)}: {message}")
        if entry not in found:
            found.append(entry)
    return found


def pydantic_error_message(doc: YamlDocument, exc: Any) -> str:
    """The first error of a pydantic ValidationError as 'file:line: key: what'."""
    return pydantic_error_messages(doc, exc)[0][1]


def _key_path(doc: YamlDocument, raw_loc: tuple[Any, ...]) -> KeyPath:
    """A pydantic location as a key path of the document.

    Drop parts that are not keys of the document (a tagged union's tag, like 'byon' in
    nodes.providers.rack.byon.hosts, or a validator's name); the last part may be a
    missing key.
    """
    loc = tuple(part for part in raw_loc if not str(part).startswith("function-"))
    kept: KeyPath = ()
    for index, part in enumerate(loc):
        if (*kept, part) in doc.lines or index == len(loc) - 1:
            kept = (*kept, part)
    return kept
