"""Rust: Cargo.toml dependency tables (with the line of each version) and Cargo.lock."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from bot.formats.dependencies.model import Dep, Ecosystem, make_dep
from bot.formats.dependencies.parsing import (
    TOML_HEADER,
    load_toml,
    table_at,
    toml_packages,
    toml_string,
)
from bot.formats.dependencies.ranges import lowest_admitted


def read_cargo_lock(text: str) -> list[Dep]:
    return toml_packages(text, Ecosystem.RUST, local=lambda p: "source" not in p)


_CARGO_SECTIONS = (
    "dependencies",
    "dev-dependencies",
    "build-dependencies",
    "dev_dependencies",
    "build_dependencies",
)


def read_cargo_toml(text: str) -> list[Dep]:
    """Cargo.toml dependency tables: top-level, `target.<cfg>.` and `workspace.`.

    `"1.2"` is Cargo's `^1.2` (lowest 1.2.0), `>1.2` is `>=1.3.0` as in npm. `package =`
    renames report the registry name. Path dependencies are local, with or without a
    version; git ones without a version, and `workspace = true` (read where the workspace
    declares it), have none.
    """
    data = load_toml(text)
    lines = _cargo_lines(text)
    deps: list[Dep] = []
    for path, table in _cargo_tables(data):
        for key, value in table.items():
            spec, name = value, key
            if isinstance(value, dict):
                spec, name = value.get("version"), value.get("package", key)
                if "path" in value:
                    continue
            if not isinstance(spec, str) or not isinstance(name, str):
                continue
            floor = lowest_admitted(spec, npm=True)
            dep = make_dep(name, floor, lines.get((*path, key)), Ecosystem.RUST, spec)
            if dep is not None:
                deps.append(dep)
    return sorted(deps, key=lambda dep: dep.line or 0)


def _cargo_tables(data: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    for section in _CARGO_SECTIONS:
        yield (section,), table_at(data, section)
    yield ("workspace", "dependencies"), table_at(data, "workspace", "dependencies")
    for target in table_at(data, "target"):
        for section in _CARGO_SECTIONS:
            yield ("target", target, section), table_at(data, "target", target, section)


def _cargo_table_depth(path: list[str]) -> int | None:
    """How many leading keys of `path` name a dependency table, if they do."""
    if path[:1] and path[0] in _CARGO_SECTIONS:
        return 1
    if path[:2] == ["workspace", "dependencies"]:
        return 2
    if len(path) > 2 and path[0] == "target" and path[2] in _CARGO_SECTIONS:
        return 3
    return None


_TOML_KEY_PART = re.compile(r""""([^"\\]*(?:\\.[^"\\]*)*)"|'([^']*)'|([A-Za-z0-9_-]+)""")
_TOML_KEY_PATH = re.compile(
    rf"\s*((?:{_TOML_KEY_PART.pattern})(?:\s*\.\s*(?:{_TOML_KEY_PART.pattern}))*)\s*="
)


def _toml_key_path(written: str) -> list[str]:
    """`target.'cfg(unix)'.dependencies` as its keys."""
    return [
        found.group(3) if found.group(3) is not None else toml_string(found)
        for found in _TOML_KEY_PART.finditer(written)
    ]


def _cargo_lines(text: str) -> dict[tuple[str, ...], int]:
    """The line of each dependency's version, by (*table, key).

    The line of `serde = "1.0"`, `serde = { version = "1.0" }` or `serde.version = "1.0"`;
    in a `[dependencies.serde]` table, its `version` line. Multi-line strings are passed over.
    """
    lines: dict[tuple[str, ...], int] = {}
    table: list[str] = []
    in_string: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string is not None:
            if line.count(in_string) % 2:
                in_string = None
            continue
        header = TOML_HEADER.match(line)
        key = None if header else _TOML_KEY_PATH.match(line)
        if header:
            table = path = _toml_key_path(header.group(1))
        elif key:
            path = table + _toml_key_path(key.group(1))
            value = line[key.end() :]
            in_string = next((q for q in ('"""', "'''") if value.count(q) % 2), None)
        else:
            continue
        depth = _cargo_table_depth(path)
        if depth is not None and len(path) > depth and path[depth + 1 :] in ([], ["version"]):
            lines[tuple(path[: depth + 1])] = number
    return lines
