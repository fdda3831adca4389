"""Python: requirements files, pyproject.toml (PEP 621, PEP 735, Poetry), poetry.lock,
uv.lock and Pipfile.lock. Names are normalised by PEP 503."""

from __future__ import annotations

import re
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bot.formats.dependencies.model import Dep, Ecosystem, make_dep
from bot.formats.dependencies.parsing import (
    TOML_HEADER,
    Claims,
    JsonObject,
    json_sections,
    load_json,
    load_toml,
    string_or_none,
    table_at,
    toml_packages,
    toml_string,
)
from bot.formats.dependencies.ranges import lowest_admitted

_TOML_KEY = re.compile(r"""\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_.-]+))\s*=""")
_TOML_STRING = re.compile(r""""([^"\\]*(?:\\.[^"\\]*)*)"|'([^']*)'""")
_NAME_AND_EXTRAS = re.compile(r"\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*")


def _pep508(requirement: str, line: int | None) -> Dep | None:
    """A Dep from one PEP 508 string; None for URLs, paths and unpinned names."""
    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        return None
    if req.url:
        return None
    version = _python_floor(req)
    written = _NAME_AND_EXTRAS.sub("", requirement.split(";", 1)[0], count=1).strip()
    spec = written.strip("()").strip() or None
    return make_dep(canonicalize_name(req.name), version, line, Ecosystem.PYTHON, spec)


def _python_floor(req: Requirement) -> str | None:
    specs = list(req.specifier)
    for spec in specs:
        if spec.operator in ("==", "==="):
            return spec.version.removesuffix(".*")
    floors = [s.version for s in specs if s.operator in (">=", "~=", ">")]
    valid = []
    for floor in floors:
        try:
            valid.append((Version(floor), floor))
        except InvalidVersion:
            continue
    return max(valid)[1] if valid else None


def read_requirements_txt(text: str) -> list[Dep]:
    """pip requirements: continuation lines, comments, per-requirement `--hash` options.

    Option lines (`-r`, `-c`, `-e`, `--index-url`), URLs and local paths are skipped.
    """
    deps: list[Dep] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        start, logical = index, lines[index]
        while logical.endswith("\\") and index + 1 < len(lines):
            index += 1
            logical = logical[:-1] + " " + lines[index]
        index += 1
        logical = re.sub(r"(^|\s)#.*$", "", logical).strip()
        if not logical or logical.startswith("-"):
            continue
        logical = re.split(r"\s+--?[A-Za-z]", logical, maxsplit=1)[0]
        dep = _pep508(logical, start + 1)
        if dep is not None:
            deps.append(dep)
    return deps


def _pyproject_lines(text: str) -> tuple[Claims, Claims]:
    """Lines of quoted strings (PEP 508 requirements) and of keys in Poetry's tables."""
    strings, poetry_keys = Claims(), Claims()
    in_poetry_deps = False
    for number, line in enumerate(text.splitlines(), start=1):
        header = TOML_HEADER.match(line)
        if header:
            parts = [p.strip().strip("\"'") for p in header.group(1).split(".")]
            in_poetry_deps = parts[:2] == ["tool", "poetry"] and any(
                p in ("dependencies", "dev-dependencies") for p in parts
            )
            if in_poetry_deps and parts[-1] not in ("dependencies", "dev-dependencies"):
                poetry_keys.add(parts[-1], number)  # [tool.poetry.dependencies.celery]
            continue
        for found in _TOML_STRING.finditer(line):
            strings.add(toml_string(found), number)
        key = _TOML_KEY.match(line) if in_poetry_deps else None
        if key:
            poetry_keys.add(next(g for g in key.groups() if g is not None), number)
    return strings, poetry_keys


def read_pyproject(text: str) -> list[Dep]:
    """PEP 621 `[project]` dependencies and extras, PEP 735 groups, Poetry dependencies."""
    data = load_toml(text)
    strings, poetry_keys = _pyproject_lines(text)
    deps: list[Dep] = []
    project = table_at(data, "project")
    lists: list[Any] = [project.get("dependencies")]
    lists += list(table_at(project, "optional-dependencies").values())
    lists += list(table_at(data, "dependency-groups").values())
    for requirements in lists:
        for requirement in requirements if isinstance(requirements, list) else []:
            if not isinstance(requirement, str):
                continue  # {include-group = "..."}
            dep = _pep508(requirement, strings.take(requirement))
            if dep is not None:
                deps.append(dep)
    poetry = table_at(data, "tool", "poetry")
    tables = [table_at(poetry, "dependencies"), table_at(poetry, "dev-dependencies")]
    tables += [table_at(group, "dependencies") for group in table_at(poetry, "group").values()]
    for table in tables:
        for name, value in table.items():
            if name.lower() == "python":
                continue
            line = poetry_keys.take(name)
            for constraint in _poetry_constraints(value):
                floor = lowest_admitted(constraint)
                dep = make_dep(canonicalize_name(name), floor, line, Ecosystem.PYTHON, constraint)
                if dep is not None:
                    deps.append(dep)
    return deps


def _poetry_constraints(value: Any) -> list[str]:
    """`"^4.2"`, `{version = "^4.2", extras = [...]}`, or a list of those; git/path: none."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        version = value.get("version")
        return [version] if isinstance(version, str) else []
    if isinstance(value, list):
        return [c for item in value for c in _poetry_constraints(item)]
    return []


def read_poetry_lock(text: str) -> list[Dep]:
    return toml_packages(
        text,
        Ecosystem.PYTHON,
        local=lambda p: table_at(p, "source").get("type") == "directory",
    )


def read_uv_lock(text: str) -> list[Dep]:
    local_kinds = ("editable", "virtual", "directory")
    return toml_packages(
        text,
        Ecosystem.PYTHON,
        local=lambda p: any(kind in table_at(p, "source") for kind in local_kinds),
    )


def read_pipfile_lock(text: str) -> list[Dep]:
    """Pipfile.lock `default` and `develop` pins (`"version": "==2.31.0"`), at their line.

    `path`, `file` and `editable` entries are local (or a bare archive) and skipped; git
    entries carry a `ref`, no version.
    """
    deps: list[Dep] = []
    for _, name, entry in json_sections(load_json(text), ("default", "develop")):
        if not isinstance(entry, JsonObject) or any(
            key in entry for key in ("path", "file", "editable")
        ):
            continue
        pin = re.fullmatch(r"\s*===?\s*(\S+)\s*", string_or_none(entry.get("version")) or "")
        line = entry.key_lines.get("version")
        version = pin.group(1) if pin else None
        dep = make_dep(canonicalize_name(name), version, line, Ecosystem.PYTHON)
        if dep is not None:
            deps.append(dep)
    return deps
