"""Where scopes come from: `KEY=value` text files (with INI/TOML sections), and YAML/JSON
mappings, `env:`-style name/value lists and embedded `.env` blocks."""

from __future__ import annotations

import re
from collections.abc import Iterator

from bot.formats import yamldoc
from bot.formats.endpoints.kinds import HOST_ROLES, SCOPE_ROLES, URL_ROLES, WORD_KINDS, words_of
from bot.formats.endpoints.scopes import Collector, Endpoint, Entry, is_comment, read_scope
from bot.formats.yamldoc import MappingNode, Node, ScalarNode, SequenceNode
from bot.views.base import FileView

_KV_LINE_RE = re.compile(
    r"""^\s*(?:export\s+)?["']?(?P<key>[A-Za-z_][\w.\-]*)["']?\s*(?:=|:(?!//))\s*(?P<value>.*)$"""
)
_SECTION_RE = re.compile(r"^\s*\[+\s*(?P<name>[A-Za-z_][\w.\-\" ]*?)\s*\]+\s*$")


_YAML_SUFFIXES = (".yaml", ".yml", ".json")
_MAX_LINE = 4000  # longer lines are minified data, not hand-written configuration


def find_endpoints(view: FileView, path: str) -> list[Endpoint]:
    """Every datastore endpoint in `path` at head; [] for absent or binary files."""
    text = view.text(path)
    if text is None:
        return []
    if path.lower().endswith(_YAML_SUFFIXES):
        doc = view.yaml(path)
        if doc.ok:
            out = Collector(path, text)
            out.urls()
            for root in doc.documents:
                _yaml_document(out, root)
            return out.result()
    return endpoints_in_text(path, text)


def endpoints_in_text(path: str, text: str) -> list[Endpoint]:
    """Endpoints in a text file read line by line (`.env`, properties, INI, TOML, ...)."""
    out = Collector(path, text)
    out.urls()
    _key_values(out, text.splitlines(), first_line=1)
    return out.result()


def _key_values(out: Collector, lines: list[str], first_line: int) -> None:
    """`KEY=value` / `key: value` lines; INI/TOML `[section]` headers give context."""
    sections: dict[str, list[Entry]] = {}
    section = ""
    for offset, line in enumerate(lines):
        if len(line) > _MAX_LINE or is_comment(line):
            continue
        header = _SECTION_RE.match(line)
        if header:
            section = header.group("name").strip('" ')
            continue
        match = _KV_LINE_RE.match(line)
        if match is None:
            continue
        value = _unquote(match.group("value"))
        if not value:
            continue
        key = match.group("key")
        sections.setdefault(section, []).append(
            Entry(key, words_of(key), value, first_line + offset)
        )
    for name, entries in sections.items():
        read_scope(out, entries, list(reversed(words_of(name))))


def _unquote(value: str) -> str:
    value = value.strip().rstrip(",").strip()
    if value[:1] in ("'", '"'):
        end = value.find(value[0], 1)
        return value[1:end] if end > 0 else value[1:]
    return value.split(" #", 1)[0].strip()


def _yaml_document(out: Collector, root: Node) -> None:
    for key_path, node in yamldoc.walk(root):
        if isinstance(node, ScalarNode):
            if node.style == "|" and "\n" in node.value:
                # An embedded .env / properties file in a ConfigMap, a line below its key.
                _key_values(out, str(node.value).splitlines(), yamldoc.line_of(node) + 1)
            continue
        if isinstance(node, MappingNode):
            entries = [e for e in _mapping_entries(node) if e.role in SCOPE_ROLES]
        elif isinstance(node, SequenceNode):
            entries = [e for e in _name_value_entries(node) if e.role in SCOPE_ROLES]
        else:
            continue
        if entries:
            # key_path ends with this node's own key, then its ancestors': nearest first.
            read_scope(out, entries, _context(key_path))


def _context(key_path: tuple[str | int, ...]) -> list[str]:
    return [w for part in reversed(key_path) if isinstance(part, str) for w in words_of(part)]


def _mapping_entries(node: MappingNode) -> Iterator[Entry]:
    for key, _key_node, value in yamldoc.items(node):
        key_words = words_of(key)
        if isinstance(value, ScalarNode) and not yamldoc.is_null(value):
            yield Entry(key, key_words, str(value.value), yamldoc.line_of(value))
        elif isinstance(value, SequenceNode) and key_words:
            role = key_words[-1]
            if role in HOST_ROLES or role in URL_ROLES or role in WORD_KINDS:
                for item in value.value:
                    if isinstance(item, ScalarNode) and not yamldoc.is_null(item):
                        yield Entry(key, key_words, str(item.value), yamldoc.line_of(item))


def _name_value_entries(node: SequenceNode) -> Iterator[Entry]:
    """k8s `env: [{name: REDIS_HOST, value: ...}]`, helmfile `set: [{name, value}]`, and
    docker-compose `environment: ["REDIS_HOST=..."]`."""
    for item in node.value:
        if isinstance(item, ScalarNode):
            pair = _ENV_ITEM_RE.match(str(item.value))
            if pair:
                key, value = pair.groups()
                yield Entry(key, words_of(key), value, yamldoc.line_of(item))
            continue
        name = yamldoc.scalar(yamldoc.get(item, "name"))
        value_node = yamldoc.get(item, "value")
        if name and isinstance(value_node, ScalarNode) and not yamldoc.is_null(value_node):
            yield Entry(name, words_of(name), str(value_node.value), yamldoc.line_of(value_node))


_ENV_ITEM_RE = re.compile(r"([A-Za-z_][\w.]*)=(.*)", re.DOTALL)
