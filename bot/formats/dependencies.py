"""Dependency versions from manifests and lockfiles, with the line each is declared on.

One reader per file format, all returning `Dep`s in file order. Knows nothing of policy:
`dependency-major-upgrade` decides what to report; this module only says which package is
at which version, and what "major" means for a version (`Dep.major_key`).

Choices worth knowing:

* "The version" of a constraint is the lowest version it admits: `==4.2.7` is 4.2.7,
  `>=4.2,<5` and `~=4.2` are 4.2, npm `^1.2.3` is 1.2.3, `~1.2` and `1.x` are 1.2.0 and
  1.0.0, `>=2 <3` is 2.0.0, `^17 || ^18` is 17.0.0. Widening a range therefore never looks
  like an upgrade; raising its floor does. A constraint with no lower bound (`*`, `<3`,
  `latest`, a git URL, `file:`/`workspace:` references) has no version: the dependency is
  left out, as there is nothing to compare.
* Several entries may share one name (requirements with environment markers, `syn` 1.x and
  2.x side by side in Cargo.lock, nested `node_modules` in package-lock.json, gem platform
  variants, Go `mod` and `mod/v2`); all are returned and the caller compares the highest.
* Local packages are skipped, their versions are the team's own: workspace members and
  path dependencies in uv.lock, poetry.lock, Cargo.lock (no `source`), package-lock.json
  (`link`) and Gemfile.lock (`PATH` sections).
* Names are normalised per ecosystem: PEP 503 for Python; Go module paths lose their major
  suffix (`example.com/mod/v2` and `gopkg.in/yaml.v3` are `example.com/mod` and
  `gopkg.in/yaml`), so moving to the `/v2` path is an upgrade of the same module. npm, Ruby
  and Rust names are kept as written (those registries are case-sensitive).
"""

from __future__ import annotations

import bisect
import enum
import json
import posixpath
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

__all__ = [
    "Dep",
    "DependencyFileError",
    "Ecosystem",
    "is_manifest",
    "lowest_admitted",
    "read_dependencies",
]


class Ecosystem(enum.StrEnum):
    PYTHON = "python"
    JAVASCRIPT = "javascript"
    RUBY = "ruby"
    GO = "go"
    RUST = "rust"


class DependencyFileError(ValueError):
    """A manifest that cannot be read at all (bad JSON or TOML); `line` when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


_RELEASE = re.compile(r"\s*[vV]?(\d+(?:\.\d+)*)")


@dataclass(frozen=True)
class Dep:
    """One declared or locked dependency.

    `version` is the version compared (exact pin, locked version, or a range's lowest);
    `spec` is the constraint as written when the file gives a range rather than a version.
    """

    name: str
    version: str
    line: int | None
    ecosystem: Ecosystem
    spec: str | None = None

    @property
    def release(self) -> tuple[int, ...]:
        """(epoch, major, minor, patch, ...): the numeric part, padded to three components."""
        epoch, parts = _release(self.version, self.ecosystem) or (0, ())
        return (epoch, *parts, *(0,) * (3 - len(parts)))

    @property
    def major_key(self) -> tuple[int, ...]:
        """What must stay equal for an upgrade to be compatible.

        The release up to its leftmost non-zero component (plus the epoch): semver promises
        nothing across 0.x minors, so 0.3 -> 0.4 is as breaking as 1.x -> 2.0 (and 0.0.3 ->
        0.0.4 too), the same rule as Cargo's and npm's caret.
        """
        epoch, *parts = self.release
        for index, part in enumerate(parts):
            if part:
                return (epoch, *parts[: index + 1])
        return (epoch, *parts)

    @property
    def shown(self) -> str:
        """How to print the version: the range as written, or the bare version for a pin."""
        if self.spec is None:
            return self.version
        spec = self.spec.replace(" ", "")
        if spec.lstrip("=") == self.version:
            return self.version
        return self.spec


def _release(version: str, ecosystem: Ecosystem) -> tuple[int, tuple[int, ...]] | None:
    if ecosystem is Ecosystem.PYTHON:
        try:
            parsed = Version(version)
        except InvalidVersion:
            pass
        else:
            return parsed.epoch, parsed.release
    match = _RELEASE.match(version)
    if match is None:
        return None
    return 0, tuple(int(p) for p in match.group(1).split("."))


def _dep(
    name: str, version: str | None, line: int | None, eco: Ecosystem, spec: str | None = None
) -> Dep | None:
    """A Dep, or None when `version` is not a version at all."""
    if not version or _release(version, eco) is None:
        return None
    return Dep(name=name, version=version, line=line, ecosystem=eco, spec=spec)


# -- which files ---------------------------------------------------------------------------

Reader = Callable[[str], list[Dep]]


def _reader_for(path: str) -> Reader | None:
    name = posixpath.basename(path)
    exact = _READERS.get(name)
    if exact is not None:
        return exact
    lower = name.lower()
    stem, dot, ext = lower.rpartition(".")
    parent = posixpath.basename(posixpath.dirname(path)).lower()
    if dot and ext in ("txt", "in", "lock"):
        if "requirements" in stem or stem.startswith("constraints"):
            return _requirements_txt
        if parent in ("requirements", "requirements.d") and ext != "lock":
            return _requirements_txt
    return None


def is_manifest(path: str) -> bool:
    """Whether the file name is one `read_dependencies` reads.

    Python requirements are `*requirements*.txt|.in|.lock` (pip, pip-tools, rye),
    `constraints*.txt|.in`, or any `.txt|.in` under a `requirements/` directory; other
    `.in` files (MANIFEST.in, Makefile.in) are not requirements.
    """
    return _reader_for(path) is not None


def read_dependencies(path: str, text: str) -> list[Dep]:
    """The dependencies `text` declares, in file order; [] for a file that is no manifest.

    Raises DependencyFileError when the file cannot be parsed at all.
    """
    reader = _reader_for(path)
    return [] if reader is None else reader(text)


# -- lines -----------------------------------------------------------------------------------


class _Lines:
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


class _Claims:
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


class _JsonObject(dict[str, Any]):
    """A JSON object that also knows the line of each of its keys."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs
        self.key_lines: dict[str, int] = {}


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"(\s*:)?')


def _json(text: str) -> _JsonObject:
    """Parse JSON, then give every object key its line.

    Outside strings JSON has no quotes, so the strings of the text, in order, are the
    document's strings in order; those followed by `:` are its keys, in the order a
    pre-order walk of the parsed objects (duplicates included) meets them.
    """
    try:
        data = json.loads(text, object_pairs_hook=_JsonObject)
    except json.JSONDecodeError as exc:
        raise DependencyFileError(f"not valid JSON: {exc.msg}", exc.lineno) from exc
    except RecursionError as exc:
        raise DependencyFileError("JSON nested too deeply") from exc
    if not isinstance(data, _JsonObject):
        raise DependencyFileError("not a JSON object", 1)
    lines = _Lines(text)
    key_lines = (lines.line_at(m.start()) for m in _JSON_STRING.finditer(text) if m.group(1))
    stack: list[Iterator[tuple[_JsonObject | None, str, Any]]] = [_json_entries(data)]
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


def _json_entries(value: Any) -> Iterator[tuple[_JsonObject | None, str, Any]]:
    if isinstance(value, _JsonObject):
        return ((value, key, item) for key, item in value.pairs)
    return ((None, "", item) for item in value)


# -- ranges ------------------------------------------------------------------------------------

_OPERATOR = re.compile(r"(===|==|~=|~>|>=|<=|!=|\^|~|>|<|=)?\s*(.*)")
_PARTIAL = re.compile(r"[vV]?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(.*)")
_WILDCARDS = {"", "*", "x", "X", "latest"}


def lowest_admitted(spec: str, *, npm: bool = False) -> str | None:
    """The lowest version a range admits, or None when it has no lower bound.

    Understands npm/semver ranges (`^1.2.3`, `~1.2`, `1.x`, `>=2 <3`, `1.2 - 2.0`,
    `a || b`) and Poetry constraints (the same plus `,` and PEP 440 `~=`/`==`).
    `npm=True` reads `>1` as npm does (`>=2.0.0`).
    """
    lows = []
    for alternative in re.split(r"\s*\|\|?\s*", spec.strip()):
        low = _lowest_of_set(alternative, npm=npm)
        if low is None:
            return None
        lows.append(low)
    if not lows:
        return None
    return min(lows, key=lambda v: _release(v, Ecosystem.JAVASCRIPT) or (0, ()))


def _lowest_of_set(comparators: str, *, npm: bool) -> str | None:
    hyphen = re.fullmatch(r"\s*(\S+)\s+-\s+(\S+)\s*", comparators)
    if hyphen:
        comparators = ">=" + hyphen.group(1)
    comparators = re.sub(r"(===|==|~=|~>|>=|<=|!=|\^|~|>|<|=)\s+", r"\1", comparators)
    floors: list[tuple[tuple[int, ...], str]] = []
    for comparator in re.split(r"[\s,]+", comparators.strip()):
        if comparator in _WILDCARDS:
            continue
        op_match = _OPERATOR.fullmatch(comparator)
        assert op_match is not None  # the pattern matches any string
        op, version = op_match.group(1) or "", op_match.group(2)
        if op in ("<", "<=", "!="):
            continue
        partial = _PARTIAL.fullmatch(version)
        if partial is None:
            return None  # not a range: a tag name, URL or path
        given = [int(p) for p in _given_parts(partial.groups()[:3])]
        if not given:
            continue  # `*`, `x.x`: no floor from this comparator
        suffix = partial.group(4) if len(given) == 3 else ""
        if op == ">" and npm:
            given[-1] += 1
            suffix = ""
        padded = given + [0] * (3 - len(given))
        floors.append((tuple(padded), ".".join(map(str, padded)) + suffix))
    if not floors:
        return None
    return max(floors, key=lambda f: f[0])[1]


def _given_parts(parts: Iterable[str | None]) -> Iterator[str]:
    for part in parts:
        if part is None or part in ("x", "X", "*"):
            return
        yield part


# -- Python ------------------------------------------------------------------------------------

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
    return _dep(canonicalize_name(req.name), version, line, Ecosystem.PYTHON, spec)


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


def _requirements_txt(text: str) -> list[Dep]:
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


def _toml(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise DependencyFileError(
            f"not valid TOML: {exc}", int(found.group(1)) if found else None
        ) from exc
    except RecursionError as exc:
        raise DependencyFileError("TOML nested too deeply") from exc


def _table(data: Any, *keys: str) -> dict[str, Any]:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


_TOML_HEADER = re.compile(r"\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_TOML_KEY = re.compile(r"""\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_.-]+))\s*=""")
_TOML_STRING = re.compile(r""""([^"\\]*(?:\\.[^"\\]*)*)"|'([^']*)'""")


def _pyproject_lines(text: str) -> tuple[_Claims, _Claims]:
    """Lines of quoted strings (PEP 508 requirements) and of keys in Poetry's tables."""
    strings, poetry_keys = _Claims(), _Claims()
    in_poetry_deps = False
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TOML_HEADER.match(line)
        if header:
            parts = [p.strip().strip("\"'") for p in header.group(1).split(".")]
            in_poetry_deps = parts[:2] == ["tool", "poetry"] and any(
                p in ("dependencies", "dev-dependencies") for p in parts
            )
            if in_poetry_deps and parts[-1] not in ("dependencies", "dev-dependencies"):
                poetry_keys.add(parts[-1], number)  # [tool.poetry.dependencies.celery]
            continue
        for found in _TOML_STRING.finditer(line):
            strings.add(_toml_string(found), number)
        key = _TOML_KEY.match(line) if in_poetry_deps else None
        if key:
            poetry_keys.add(next(g for g in key.groups() if g is not None), number)
    return strings, poetry_keys


def _toml_string(found: re.Match[str]) -> str:
    """The value of a one-line TOML string (basic strings escape as JSON does)."""
    if found.group(1) is None:
        return found.group(2)
    try:
        value = json.loads(f'"{found.group(1)}"')
    except ValueError:
        return found.group(1)
    return value if isinstance(value, str) else found.group(1)


def _pyproject(text: str) -> list[Dep]:
    """PEP 621 `[project]` dependencies and extras, PEP 735 groups, Poetry dependencies."""
    data = _toml(text)
    strings, poetry_keys = _pyproject_lines(text)
    deps: list[Dep] = []
    project = _table(data, "project")
    lists: list[Any] = [project.get("dependencies")]
    lists += list(_table(project, "optional-dependencies").values())
    lists += list(_table(data, "dependency-groups").values())
    for requirements in lists:
        for requirement in requirements if isinstance(requirements, list) else []:
            if not isinstance(requirement, str):
                continue  # {include-group = "..."}
            dep = _pep508(requirement, strings.take(requirement))
            if dep is not None:
                deps.append(dep)
    poetry = _table(data, "tool", "poetry")
    tables = [_table(poetry, "dependencies"), _table(poetry, "dev-dependencies")]
    tables += [_table(group, "dependencies") for group in _table(poetry, "group").values()]
    for table in tables:
        for name, value in table.items():
            if name.lower() == "python":
                continue
            line = poetry_keys.take(name)
            for constraint in _poetry_constraints(value):
                floor = lowest_admitted(constraint)
                dep = _dep(canonicalize_name(name), floor, line, Ecosystem.PYTHON, constraint)
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


def _toml_packages(
    text: str, eco: Ecosystem, *, local: Callable[[dict[str, Any]], bool]
) -> list[Dep]:
    """`[[package]]` name/version tables: poetry.lock, uv.lock, Cargo.lock."""
    data = _toml(text)
    packages = data.get("package", [])
    if not isinstance(packages, list):
        raise DependencyFileError("`package` is not an array of tables")
    lines = _Lines(text)
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
        dep = _dep(name, version, line, eco)
        if dep is not None:
            deps.append(dep)
    return deps


def _poetry_lock(text: str) -> list[Dep]:
    return _toml_packages(
        text,
        Ecosystem.PYTHON,
        local=lambda p: _table(p, "source").get("type") == "directory",
    )


def _uv_lock(text: str) -> list[Dep]:
    local_kinds = ("editable", "virtual", "directory")
    return _toml_packages(
        text,
        Ecosystem.PYTHON,
        local=lambda p: any(kind in _table(p, "source") for kind in local_kinds),
    )


def _cargo_lock(text: str) -> list[Dep]:
    return _toml_packages(text, Ecosystem.RUST, local=lambda p: "source" not in p)


# -- JavaScript ----------------------------------------------------------------------------------

_JS = Ecosystem.JAVASCRIPT
NPM_SECTIONS = ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies")


def _npm_range(spec: str) -> str | None:
    """The lowest version of a package.json value; aliases `npm:name@range` read the range."""
    if spec.startswith("npm:"):
        _, at, spec = spec[4:].rpartition("@")
        if not at:
            return None
    elif re.match(r"[a-z+]+:", spec) or "/" in spec:
        return None  # file:, link:, workspace:, git URLs, github shorthand
    return lowest_admitted(spec, npm=True)


def _package_json(text: str) -> list[Dep]:
    data = _json(text)
    deps: list[Dep] = []
    for section in (key for key in data if key in NPM_SECTIONS):
        table = data[section]
        if not isinstance(table, _JsonObject):
            continue
        for name, spec in table.items():
            if not isinstance(spec, str):
                continue
            line = table.key_lines.get(name)
            dep = _dep(name, _npm_range(spec.strip()), line, _JS, spec.strip())
            if dep is not None:
                deps.append(dep)
    return deps


def _package_lock(text: str) -> list[Dep]:
    """package-lock.json / npm-shrinkwrap.json: v2/v3 `packages`, else v1 `dependencies`."""
    data = _json(text)
    deps: list[Dep] = []
    packages = data.get("packages")
    if isinstance(packages, _JsonObject):
        for key, entry in packages.items():
            if "node_modules/" not in key or not isinstance(entry, dict) or entry.get("link"):
                continue
            name = key.rsplit("node_modules/", 1)[1]
            dep = _dep(name, _string(entry.get("version")), packages.key_lines.get(key), _JS)
            if dep is not None:
                deps.append(dep)
        return deps
    stack = [data.get("dependencies")]
    while stack:  # depth-first in file order, without recursion (the nesting is untrusted)
        table = stack.pop()
        if not isinstance(table, _JsonObject):
            continue
        nested = []
        for name, entry in table.items():
            if not isinstance(entry, dict):
                continue
            dep = _dep(name, _string(entry.get("version")), table.key_lines.get(name), _JS)
            if dep is not None and not dep.version.startswith("file:"):
                deps.append(dep)
            nested.append(entry.get("dependencies"))
        stack.extend(reversed(nested))
    return sorted(deps, key=lambda dep: dep.line or 0)


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# -- Ruby ------------------------------------------------------------------------------------------

_GEM_SPEC = re.compile(r"^    (\S+) \(([^)\s]+)\)\s*$")


def _gemfile_lock(text: str) -> list[Dep]:
    """Gemfile.lock `specs:` of GEM and GIT sources (PATH gems are local).

    Gems are the four-space lines `name (version[-platform])`; six-space lines are their
    own requirements and are skipped.
    """
    deps: list[Dep] = []
    section = ""
    in_specs = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line and not line[0].isspace():
            section, in_specs = line.strip(), False
            continue
        if line.strip() == "specs:":
            in_specs = section in ("GEM", "GIT", "PLUGIN SOURCE")
            continue
        match = _GEM_SPEC.match(line) if in_specs else None
        if match is None:
            continue
        version = match.group(2).split("-", 1)[0]  # `1.15.4-x86_64-linux`: platform variant
        dep = _dep(match.group(1), version, number, Ecosystem.RUBY)
        if dep is not None:
            deps.append(dep)
    return deps


# -- Go ------------------------------------------------------------------------------------------


def go_module_name(path: str) -> str:
    """The module without its major-version suffix: `/v2` paths and gopkg.in's `.v3`."""
    if path.startswith("gopkg.in/"):
        return re.sub(r"\.v\d+$", "", path)
    return re.sub(r"/v(?:[2-9]|[1-9]\d+)$", "", path)


def _go_mod(text: str) -> list[Dep]:
    """`require` lines and blocks; `replace` and `exclude` are not read."""
    deps: list[Dep] = []
    in_block = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("//", 1)[0].strip()
        if in_block:
            if line.startswith(")"):
                in_block = False
                continue
            fields = line.split()
        elif re.match(r"require\s*\($", line):
            in_block = True
            continue
        elif line.startswith("require ") or line.startswith("require\t"):
            fields = line.split()[1:]
        else:
            continue
        if len(fields) != 2:
            continue
        module = fields[0].strip('"`')
        dep = _dep(go_module_name(module), fields[1], number, Ecosystem.GO)
        if dep is not None:
            deps.append(dep)
    return deps


_READERS: dict[str, Reader] = {
    "pyproject.toml": _pyproject,
    "poetry.lock": _poetry_lock,
    "uv.lock": _uv_lock,
    "package.json": _package_json,
    "package-lock.json": _package_lock,
    "npm-shrinkwrap.json": _package_lock,
    "Gemfile.lock": _gemfile_lock,
    "gems.locked": _gemfile_lock,
    "go.mod": _go_mod,
    "Cargo.lock": _cargo_lock,
}
