"""What the readers share: JSON and TOML with the line of each key, YAML lockfile documents,
`[[package]]` tables, and line bookkeeping that stays linear on hostile input."""

from __future__ import annotations

import bisect
import json
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from packaging.utils import canonicalize_name

from bot.formats import yamldoc
from bot.formats.dependencies.model import Dep, DependencyFileError, Ecosystem, make_dep


class Lines:
    """Offsets to 1-based lines, and bounded forward searches (linear on hostile input)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._starts = [0] + [m.end() for m in re.finditer(r"\n", text)]

    def line_at(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset)

    def search(self, pattern: str, start: int, end: int | None = None) -> re.Match[str] | None:
        """The first match of `pattern` (re.M) within text[start:end]."""
        return re.compile(pattern, re.M).search(
            self.text, start, len(self.text) if end is None else end
        )


class Claims:
    """Lines keyed by what is written there; each lookup claims the next one.

    One name in two dependency groups thus gets the line of each; a key asked more often
    than it occurs keeps its last line.
    """

    def __init__(self) -> None:
        self._lines: dict[str, list[int]] = {}
        self._taken: dict[str, int] = {}

    def add(self, key: str, line: int) -> None:
        self._lines.setdefault(key, []).append(line)

    def take(self, key: str) -> int | None:
        lines = self._lines.get(key)
        if not lines:
            return None
        nth = self._taken.get(key, 0)
        self._taken[key] = nth + 1
        return lines[min(nth, len(lines) - 1)]


class JsonObject(dict[str, Any]):
    """A JSON object that also knows the line of each of its keys."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs
        self.key_lines: dict[str, int] = {}


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"(\s*:)?')


def load_json(text: str) -> JsonObject:
    """Parse JSON, then give every object key its line.

    Outside strings JSON has no quotes, so the strings of the text, in order, are the
    document's strings in order; those followed by `:` are its keys, in the order a
    pre-order walk of the parsed objects (duplicates included) meets them.
    """
    try:
        data = json.loads(text, object_pairs_hook=JsonObject)
    except json.JSONDecodeError as exc:
        raise DependencyFileError(f"not valid JSON: {exc.msg}", exc.lineno) from exc
    except RecursionError as exc:
        raise DependencyFileError("JSON nested too deeply") from exc
    if not isinstance(data, JsonObject):
        raise DependencyFileError("not a JSON object", 1)
    lines = Lines(text)
    key_lines = (lines.line_at(m.start()) for m in _JSON_STRING.finditer(text) if m.group(1))
    stack: list[Iterator[tuple[JsonObject | None, str, Any]]] = [_json_entries(data)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        owner, key, value = entry
        if owner is not None:
            line = next(key_lines, None)
            if line is not None:
                owner.key_lines[key] = line
        if isinstance(value, dict | list):
            stack.append(_json_entries(value))
    return data


def json_sections(
    data: JsonObject, sections: Iterable[str]
) -> Iterator[tuple[JsonObject, str, Any]]:
    """(table, key, value) of every entry of the named top-level tables, in file order."""
    for section in (key for key in data if key in sections):
        table = data[section]
        if isinstance(table, JsonObject):
            for key, value in table.items():
                yield table, key, value


def _json_entries(value: Any) -> Iterator[tuple[JsonObject | None, str, Any]]:
    if isinstance(value, JsonObject):
        return ((value, key, item) for key, item in value.pairs)
    return ((None, "", item) for item in value)


#: tomllib takes quadratic time on a very long dotted key (a 400 KB line: ~100 s); no
#: manifest or lockfile written by a tool has a line anywhere near this long.
MAX_TOML_LINE = 20_000


def load_toml(text: str) -> dict[str, Any]:
    long_line = re.search(rf"^[^\n]{{{MAX_TOML_LINE + 1}}}", text, re.M)
    if long_line is not None:
        line = text.count("\n", 0, long_line.start()) + 1
        raise DependencyFileError(f"a line over {MAX_TOML_LINE:,} characters; not read", line)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise DependencyFileError(
            f"not valid TOML: {exc}", int(found.group(1)) if found else None
        ) from exc
    except RecursionError as exc:
        raise DependencyFileError("TOML nested too deeply") from exc


def table_at(data: Any, *keys: str) -> dict[str, Any]:
    """The table at `keys` in parsed TOML; {} when a key is missing or not a table."""
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


TOML_HEADER = re.compile(r"\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")


def toml_string(found: re.Match[str]) -> str:
    """The value of a one-line TOML string (basic strings escape as JSON does)."""
    if found.group(1) is None:
        return found.group(2)
    try:
        value = json.loads(f'"{found.group(1)}"')
    except ValueError:
        return found.group(1)
    return value if isinstance(value, str) else found.group(1)


def toml_packages(
    text: str, eco: Ecosystem, *, local: Callable[[dict[str, Any]], bool]
) -> list[Dep]:
    """`[[package]]` name/version tables: poetry.lock, uv.lock, Cargo.lock."""
    data = load_toml(text)
    packages = data.get("package", [])
    if not isinstance(packages, list):
        raise DependencyFileError("`package` is not an array of tables")
    lines = Lines(text)
    headers = [m.end() for m in re.finditer(r"^\[\[package\]\][ \t]*(?:#.*)?$", text, re.M)]
    deps: list[Dep] = []
    for index, package in enumerate(packages):
        if not isinstance(package, dict) or local(package):
            continue
        name, version = package.get("name"), package.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            continue
        line = None
        if index < len(headers):
            until = headers[index + 1] if index + 1 < len(headers) else None
            found = lines.search(r"^name\s*=", headers[index], until)
            line = lines.line_at(found.start() if found else headers[index])
        if eco is Ecosystem.PYTHON:
            name = canonicalize_name(name)
        dep = make_dep(name, version, line, eco)
        if dep is not None:
            deps.append(dep)
    return deps


def yaml_documents(text: str) -> list[yamldoc.Node]:
    """The YAML documents of a lockfile, each a mapping."""
    parsed = yamldoc.load_yaml(text)
    if parsed.problem is not None:
        raise DependencyFileError(parsed.problem, parsed.problem_line)
    for document in parsed.documents:
        if not isinstance(document, yamldoc.MappingNode):
            raise DependencyFileError("not a YAML mapping", yamldoc.line_of(document))
    return parsed.documents


def string_or_none(value: Any) -> str | None:
    """`value` if a parsed file gave a string there (untrusted data may hold anything)."""
    return value if isinstance(value, str) else None
