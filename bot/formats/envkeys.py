"""The configuration keys a deployment file sets, with the lines that set them.

`env-drift` compares these between environments, so each shape names its keys the way
another environment's file of the same shape would:

* Helm values files (`values*.yaml`): dotted paths of the leaves (`externalRedis.host`);
  a list is one leaf (its items are not keys of their own);
* other YAML (Kubernetes manifests, docker-compose): container `env:` names
  (`- name: REDIS_URL`) and compose `environment:` keys, as a map or `KEY=value` list;
* `.env` files (`.env`, `.env.production`, `app.env`): `KEY=value` lines.

Environment variable names are one namespace whatever file sets them, so a `REDIS_URL`
in production's manifest is "set elsewhere" when staging's `.env` sets it. Nothing here
knows about policies or environments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from posixpath import basename

from bot.formats import yamldoc
from bot.formats.yamldoc import MappingNode, Node, ScalarNode, SequenceNode
from bot.views.base import FileView

__all__ = ["ConfigKey", "KeyedFile", "config_keys", "is_config_file"]

_YAML_SUFFIXES = (".yaml", ".yml")
_VALUES_RE = re.compile(r"values[^/]*\.ya?ml$", re.I)
_ENV_LINE_RE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=")
_ENV_ITEM_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?:=|$)")


@dataclass(frozen=True)
class ConfigKey:
    """One key set in a file: its name and the lines (first to last) that set it."""

    name: str
    line: int
    last_line: int

    def touched_by(self, lines: frozenset[int]) -> bool:
        return any(n in lines for n in range(self.line, self.last_line + 1))


@dataclass
class KeyedFile:
    """The keys of one file, or why it could not be read (then `keys` is empty)."""

    keys: list[ConfigKey] = field(default_factory=list)
    problem: str | None = None
    problem_line: int | None = None


def is_env_file(path: str) -> bool:
    name = basename(path).lower()
    return name == ".env" or name.startswith(".env.") or name.endswith(".env")


def is_config_file(path: str) -> bool:
    """Whether `path` is a shape whose keys `config_keys` reads (decided by name alone,
    so that thousands of other files are never read)."""
    return is_env_file(path) or path.lower().endswith(_YAML_SUFFIXES)


def config_keys(view: FileView, path: str) -> KeyedFile:
    """The keys `path` sets at head; a problem when it exists but cannot be read."""
    text = view.text(path)
    if text is None:
        reason = view.unreadable_reason(path)
        return KeyedFile(problem=reason) if reason else KeyedFile()
    if is_env_file(path):
        return KeyedFile(keys=_env_lines(text))
    doc = view.yaml(path)
    if not doc.ok:
        return KeyedFile(problem=doc.problem or "unreadable", problem_line=doc.problem_line)
    keys: list[ConfigKey] = []
    for root in doc.documents:
        if _VALUES_RE.search(basename(path)):
            keys.extend(_dotted(root))
        else:
            keys.extend(_env_vars(root))
    return KeyedFile(keys=keys)


def _env_lines(text: str) -> list[ConfigKey]:
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _ENV_LINE_RE.match(line)
        if match:
            out.append(ConfigKey(match.group(1), number, number))
    return out


def _last_line(node: Node) -> int:
    """1-based last line of a node (a block node ends at column 0 of the line after it)."""
    end = node.end_mark
    last = int(end.line) + (1 if end.column > 0 else 0)
    return max(last, yamldoc.line_of(node))


def _dotted(root: Node) -> list[ConfigKey]:
    """Leaves of a Helm values document as dotted paths."""
    out: list[ConfigKey] = []
    stack: list[tuple[str, Node]] = [("", root)]
    seen: set[int] = set()
    while stack:
        prefix, node = stack.pop()
        if id(node) in seen:  # an alias is set where its anchor is written
            continue
        seen.add(id(node))
        for key, key_node, value in yamldoc.items(node):
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, MappingNode) and value.value:
                stack.append((name, value))
            else:
                out.append(ConfigKey(name, yamldoc.line_of(key_node), _last_line(value)))
    return sorted(out, key=lambda k: k.line)


def _env_vars(root: Node) -> list[ConfigKey]:
    """Container `env:` names and compose `environment:` keys anywhere in a document."""
    out: list[ConfigKey] = []
    for _path, node in yamldoc.walk(root):
        for key, _key_node, value in yamldoc.items(node):
            if key == "env" and isinstance(value, SequenceNode):
                for item in value.value:
                    name = yamldoc.scalar(yamldoc.get(item, "name"))
                    if name:
                        out.append(ConfigKey(name, yamldoc.line_of(item), _last_line(item)))
            elif key == "environment" and isinstance(value, MappingNode):
                for name, name_node, setting in yamldoc.items(value):
                    out.append(ConfigKey(name, yamldoc.line_of(name_node), _last_line(setting)))
            elif key == "environment" and isinstance(value, SequenceNode):
                for item in value.value:
                    match = _ENV_ITEM_RE.match(yamldoc.scalar(item) or "")
                    if match and isinstance(item, ScalarNode):
                        out.append(
                            ConfigKey(match.group(1), yamldoc.line_of(item), _last_line(item))
                        )
    return sorted(out, key=lambda k: k.line)
