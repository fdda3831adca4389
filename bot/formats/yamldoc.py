"""The one YAML reader: composed nodes (with line numbers), safe against hostile input.

Composing with libyaml's C loader keeps every node's position and costs about the same as
a bare parse. Nothing is constructed, so CloudFormation short tags (`!Ref`, `!Sub`, ...)
need no constructors and plain scalars keep both their text and their resolved tag
(what `yaml-version-coercion` needs). Aliases compose to shared node objects, so an alias
bomb costs nothing until somebody expands it; `walk()` visits each node once and
`load_yaml()` refuses documents whose expansion would be huge or recursive.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.formats.helm import is_helm_template, strip_actions

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - libyaml is a hard requirement in practice
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

__all__ = [
    "MappingNode",
    "Node",
    "ScalarNode",
    "SequenceNode",
    "YamlFile",
    "get",
    "items",
    "line_of",
    "load_yaml",
    "mapping_of",
    "scalar",
    "sequence",
    "text_of",
    "walk",
]

#: Deeper nesting than this is refused (real configuration rarely passes 30 levels;
#: libyaml's composer recurses in C and would overflow the stack near 100,000).
MAX_DEPTH = 400
#: A document whose aliases would expand to more nodes than this is refused.
MAX_EXPANDED_NODES = 2_000_000

STR_TAG = "tag:yaml.org,2002:str"


@dataclass
class YamlFile:
    """The documents of one YAML file, or why it could not be read."""

    documents: list[Node]
    problem: str | None = None
    problem_line: int | None = None
    missing: bool = False
    #: a Helm template's actions, which `__TPLn__` placeholders in its scalars stand for
    template_actions: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None and not self.missing


def load_yaml(text: str, *, path: str = "") -> YamlFile:
    """Compose every document of `text`; never raises on any input. A Helm template
    (by `path`) is read without its template actions (bot/formats/helm.py)."""
    if path and is_helm_template(path, text):
        stripped, actions = strip_actions(text)
        found = load_yaml(stripped)
        found.template_actions = actions
        if found.problem is not None:
            found.problem = f"Helm template, with its {{{{ }}}} actions taken out: {found.problem}"
        return found
    try:
        if _may_nest_deeply(text):
            depth_problem = _depth_problem(text)
            if depth_problem:
                return YamlFile(documents=[], problem=depth_problem)
        documents = [d for d in yaml.compose_all(text, Loader=_Loader) if d is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = mark.line + 1 if mark is not None else None
        reason = exc.problem or exc.context or "syntax error"
        return YamlFile(documents=[], problem=f"YAML syntax error: {reason}", problem_line=where)
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        return YamlFile(documents=[], problem=f"YAML error: {exc}")
    # k aliases can at most double the document k times: skip the walk when even that
    # stays small (most files have no alias at all).
    aliases = _alias_count(text)
    if aliases == 0 or (aliases < 40 and (len(text) << aliases) < 2 * MAX_EXPANDED_NODES):
        return YamlFile(documents=documents)
    for doc in documents:
        problem = _expansion_problem(doc)
        if problem:
            return YamlFile(documents=[], problem=problem, problem_line=line_of(doc))
    return YamlFile(documents=documents)


def _may_nest_deeply(text: str) -> bool:
    """A cheap upper bound on nesting: block nesting needs a long run of indentation or
    `- `/`? ` at the start of a line; flow nesting needs brackets (counted, strings and all)."""
    if _DEEP_BLOCK.search(text):
        return True
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth = deepest = 0
    for match in _BRACKET.finditer(text):
        depth = depth + 1 if match.group() in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    return deepest > MAX_DEPTH


_DEEP_BLOCK = re.compile(rf"^[ \t?:-]{{{MAX_DEPTH}}}", re.M)
_BRACKET = re.compile(r"[\[\]{}]")
# The sigil first (a fast literal scan), then a look-behind: at the start or after a space,
# a flow indicator, `:` or `-`.
_ANCHOR = re.compile(r"&(?<![^\s\[{,:-]&)([^\s,\[\]{}]+)")
_ALIAS = re.compile(r"\*(?<![^\s\[{,:-]\*)([^\s,\[\]{}]+)")


def _alias_count(text: str) -> int:
    """How many `*name` in the text name an `&name` anchor (an upper bound on aliases):
    `*.example.com` in a list of hosts is not one. Cheap when there is no `&` at all."""
    if "&" not in text or "*" not in text:
        return 0
    anchors = set(_ANCHOR.findall(text))
    if not anchors:
        return 0
    return sum(1 for name in _ALIAS.findall(text) if name in anchors)


def _depth_problem(text: str) -> str | None:
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    line = event.start_mark.line + 1 if event.start_mark else "?"
                    return f"nesting deeper than {MAX_DEPTH} levels (line {line}); not checked"
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        # the libyaml of PyYAML >= 6.0.4 has a nesting limit of its own, which its scanner
        # can meet while looking ahead, before the events reach MAX_DEPTH: the same problem
        if "nesting depth" not in str(exc.problem or ""):
            raise
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else "?"
        return f"nesting deeper than {MAX_DEPTH} levels (line {line}); not checked"
    return None


def _expansion_problem(root: Node) -> str | None:
    """How many nodes the document would have with every alias expanded, bounded."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            in_progress.discard(key)
            size = 1 + sum(sizes[id(c)] for c in _children(node))
            if size > MAX_EXPANDED_NODES:
                return (
                    f"aliases expand to more than {MAX_EXPANDED_NODES:,} nodes "
                    "(an alias bomb?); not checked"
                )
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in in_progress:
            return "recursive alias; not checked"
        if isinstance(node, ScalarNode):
            sizes[key] = 1
            continue
        in_progress.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in in_progress:
                return "recursive alias; not checked"
            if id(child) not in sizes:
                stack.append((child, False))
    return None


def _children(node: Node) -> Iterator[Node]:
    if isinstance(node, MappingNode):
        for k, v in node.value:
            yield k
            yield v
    elif isinstance(node, SequenceNode):
        yield from node.value


# -- navigation ------------------------------------------------------------------------


def line_of(node: Node) -> int:
    """1-based line of a node."""
    return int(node.start_mark.line) + 1


def column_of(node: Node) -> int:
    return int(node.start_mark.column) + 1


def position_in_scalar(node: Node, source: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) in `source` of character `offset` of a scalar's value, so
    that an error inside a value (a CEL expression) points at the character itself.

    The value is walked line by line as YAML folds it: each source line gives its text
    (from the indentation, or the opening quote, on) and one character for the line break.
    Escapes in quoted scalars are not unfolded: a column after one may be off by its length."""
    lines = source.split("\n")
    start, end = node.start_mark, node.end_mark
    style = getattr(node, "style", None)
    if style in ("|", ">"):
        first = start.line + 1
        body = next((ln for ln in lines[first : end.line + 1] if ln.strip()), "")
        indent = len(body) - len(body.lstrip(" "))  # YAML's rule: the first line's
        segments = [(n, indent) for n in range(first, min(end.line + 1, len(lines)))]
    else:
        opening = start.column + (1 if style in ("'", '"') else 0)
        segments = [(start.line, opening)]
        for n in range(start.line + 1, min(end.line + 1, len(lines))):
            segments.append((n, len(lines[n]) - len(lines[n].lstrip())))
    remaining = max(offset, 0)
    for n, column in segments:
        width = max(len(lines[n].rstrip()) - column, 0)
        if remaining <= width:
            return n + 1, column + remaining + 1
        remaining -= width + 1
    return start.line + 1, start.column + 1


def scalar(node: Node | None) -> str | None:
    """The text of a scalar node (None for collections, nulls written as `~`/empty too)."""
    if isinstance(node, ScalarNode):
        return str(node.value)
    return None


def is_null(node: Node | None) -> bool:
    return node is None or (isinstance(node, ScalarNode) and node.tag.endswith(":null"))


def items(node: Node | None) -> Iterator[tuple[str, ScalarNode, Node]]:
    """(key text, key node, value node) of a mapping with scalar keys; nothing otherwise."""
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if isinstance(k, ScalarNode):
                yield str(k.value), k, v


def get(node: Node | None, *keys: str) -> Node | None:
    """Follow mapping keys; None as soon as one is absent."""
    for key in keys:
        found = None
        for name, _k, value in items(node):
            if name == key:
                found = value
        if found is None:
            return None
        node = found
    return node


def sequence(node: Node | None) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else []


def mapping_of(node: Node | None) -> dict[str, Node]:
    """A mapping's scalar keys and their values (a repeated key: the last one); {} otherwise."""
    if isinstance(node, MappingNode):
        return {str(k.value): v for k, v in node.value if isinstance(k, ScalarNode)}
    return {}


def text_of(node: Node | None) -> str | None:
    """The text of a scalar that is not null; None for nulls and collections."""
    if isinstance(node, ScalarNode) and not is_null(node):
        return str(node.value)
    return None


def walk(root: Node) -> Iterator[tuple[tuple[str | int, ...], Node]]:
    """Every node reachable from `root` with its key path, each node object once.

    Visiting each object once is what makes alias bombs harmless: an aliased subtree is
    reported where its anchor is written.
    """
    seen: set[int] = set()
    stack: list[tuple[tuple[str | int, ...], Node]] = [((), root)]
    while stack:
        path, node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield path, node
        if isinstance(node, MappingNode):
            for k, v in reversed(node.value):
                key: str | int = str(k.value) if isinstance(k, ScalarNode) else "?"
                stack.append(((*path, key), v))
        elif isinstance(node, SequenceNode):
            for i in range(len(node.value) - 1, -1, -1):
                stack.append(((*path, i), node.value[i]))
