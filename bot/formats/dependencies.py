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
  left out, as there is nothing to compare. Cargo.toml requirements read the same way: a
  bare `"1.2"` is Cargo's `^1.2`, so 1.2.0.
* Several entries may share one name (requirements with environment markers, `syn` 1.x and
  2.x side by side in Cargo.lock, nested `node_modules` in package-lock.json, several
  versions in yarn.lock and pnpm-lock.yaml, gem platform variants, Go `mod` and `mod/v2`);
  all are returned and the caller compares the highest.
* Local packages are skipped, their versions are the team's own: workspace members and
  path dependencies in uv.lock, poetry.lock, Cargo.lock (no `source`), Cargo.toml (`path`,
  even with a `version`), package-lock.json (`link`), yarn.lock (`workspace:`, `link:`,
  `portal:`, `file:`, `exec:`), pnpm-lock.yaml (`link:`, `file:`, directories),
  Pipfile.lock (`path`, `file`, `editable`) and Gemfile.lock (`PATH` sections). yarn
  berry's `patch:` entries are skipped too: the unpatched package has its own entry.
* Lockfile lines: the line that states the version (`version` in yarn.lock and
  Pipfile.lock; the key, which holds it, in pnpm-lock.yaml), except that `[[package]]`
  tables (poetry.lock, uv.lock, Cargo.lock) point at their `name`.
* Names are normalised per ecosystem: PEP 503 for Python; Go module paths lose their major
  suffix (`example.com/mod/v2` and `gopkg.in/yaml.v3` are `example.com/mod` and
  `gopkg.in/yaml`), so moving to the `/v2` path is an upgrade of the same module. npm, Ruby
  and Rust names are kept as written (those registries are case-sensitive). npm aliases
  (`old-react@npm:react@^16`) keep the alias, as package.json and node_modules do; Cargo
  renames (`package = "rustls"`) report the registry name.

Formats: requirements files, pyproject.toml (PEP 621, PEP 735, Poetry), poetry.lock,
uv.lock, Pipfile.lock, package.json, package-lock.json / npm-shrinkwrap.json, yarn.lock
(classic v1 and berry), pnpm-lock.yaml (lockfile 5.x, 6.x, 9.x), Gemfile.lock, go.mod,
Cargo.toml, Cargo.lock.
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

from bot.formats import yamldoc

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


def _json_sections(
    data: _JsonObject, sections: Iterable[str]
) -> Iterator[tuple[_JsonObject, str, Any]]:
    """(table, key, value) of every entry of the named top-level tables, in file order."""
    for section in (key for key in data if key in sections):
        table = data[section]
        if isinstance(table, _JsonObject):
            for key, value in table.items():
                yield table, key, value


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
    `npm=True` reads `>1` as npm and Cargo do (`>=2.0.0`).
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


#: tomllib takes quadratic time on a very long dotted key (a 400 KB line: ~100 s); no
#: manifest or lockfile written by a tool has a line anywhere near this long.
MAX_TOML_LINE = 20_000


def _toml(text: str) -> dict[str, Any]:
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


def _pipfile_lock(text: str) -> list[Dep]:
    """Pipfile.lock `default` and `develop` pins (`"version": "==2.31.0"`), at their line.

    `path`, `file` and `editable` entries are local (or a bare archive) and skipped; git
    entries carry a `ref`, no version.
    """
    deps: list[Dep] = []
    for _, name, entry in _json_sections(_json(text), ("default", "develop")):
        if not isinstance(entry, _JsonObject) or any(
            key in entry for key in ("path", "file", "editable")
        ):
            continue
        pin = re.fullmatch(r"\s*===?\s*(\S+)\s*", _string(entry.get("version")) or "")
        line = entry.key_lines.get("version")
        version = pin.group(1) if pin else None
        dep = _dep(canonicalize_name(name), version, line, Ecosystem.PYTHON)
        if dep is not None:
            deps.append(dep)
    return deps


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
    deps: list[Dep] = []
    for table, name, spec in _json_sections(_json(text), NPM_SECTIONS):
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


def _npm_descriptor(descriptor: str) -> tuple[str, str]:
    """`name@range` or `@scope/name@range` split at the `@` that ends the name."""
    at = descriptor.find("@", 1)
    return (descriptor, "") if at < 0 else (descriptor[:at], descriptor[at + 1 :])


#: Ranges and resolutions that name no registry package: the project's own (workspaces,
#: paths, portals), generated ones (`exec:`), and berry's `patch:` entries, whose
#: unpatched package is locked in an entry of its own.
_YARN_LOCAL = ("workspace:", "link:", "portal:", "file:", "exec:", "patch:")


def _yarn_names(descriptors: Iterable[str]) -> list[str]:
    """The names of an entry's non-local descriptors, each once (aliases keep theirs)."""
    names: list[str] = []
    for descriptor in descriptors:
        name, spec = _npm_descriptor(descriptor.strip())
        if name and not spec.startswith(_YARN_LOCAL) and name not in names:
            names.append(name)
    return names


def _yarn_lock(text: str) -> list[Dep]:
    """yarn.lock: berry (v2+) is YAML with a `__metadata` entry; classic v1 is not YAML."""
    if re.search(r"^__metadata:", text, re.M):
        return _yarn_berry(text)
    return _yarn_v1(text)


_YARN_V1_PATTERN = re.compile(r'\s*(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^\s",]+))\s*(?:,|$)')
_YARN_V1_VERSION = re.compile(r'^  version\s+"?([^"\s]+)"?\s*$')


def _yarn_v1(text: str) -> list[Dep]:
    """Classic entries: `"@babel/core@^7.0.0", "@babel/core@^7.22":` then `  version "…"`.

    An unindented line that is no entry header (a merge conflict marker, say) is an error.
    """
    deps: list[Dep] = []
    names: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            header = line.rstrip()
            if not header.endswith(":"):
                raise DependencyFileError(f"not a yarn.lock entry: {header[:80]!r}", number)
            names = _yarn_names(_yarn_v1_patterns(header[:-1], number))
            continue
        version = _YARN_V1_VERSION.match(line)
        if version is None:
            continue
        for name in names:
            dep = _dep(name, version.group(1), number, _JS)
            if dep is not None:
                deps.append(dep)
        names = []
    return deps


def _yarn_v1_patterns(header: str, number: int) -> list[str]:
    """The comma-separated patterns of a v1 header; quoted ones are JSON strings."""
    patterns: list[str] = []
    start = 0
    while start < len(header):
        found = _YARN_V1_PATTERN.match(header, start)
        if found is None or found.end() == start:
            raise DependencyFileError(f"unreadable yarn.lock entry: {header[:80]!r}", number)
        patterns.append(_toml_string(found))  # basic strings escape as JSON does
        start = found.end()
    return patterns


def _yaml_documents(text: str) -> list[yamldoc.Node]:
    """The YAML documents of a lockfile, each a mapping."""
    parsed = yamldoc.load_yaml(text)
    if parsed.problem is not None:
        raise DependencyFileError(parsed.problem, parsed.problem_line)
    for document in parsed.documents:
        if not isinstance(document, yamldoc.MappingNode):
            raise DependencyFileError("not a YAML mapping", yamldoc.line_of(document))
    return parsed.documents


def _yarn_berry(text: str) -> list[Dep]:
    """Berry entries `"react@npm:^18.2.0, react@npm:^18.0.0":` with `version: 18.2.0`.

    Entries whose descriptors or `resolution` are local (`workspace:`, `link:`, ...) or
    `patch:` are skipped.
    """
    deps: list[Dep] = []
    for document in _yaml_documents(text):
        for key, _, entry in yamldoc.items(document):
            if key == "__metadata":
                continue
            version = yamldoc.get(entry, "version")
            resolution = yamldoc.scalar(yamldoc.get(entry, "resolution")) or ""
            if version is None or _npm_descriptor(resolution)[1].startswith(_YARN_LOCAL):
                continue
            for name in _yarn_names(key.split(",")):
                line = yamldoc.line_of(version)
                dep = _dep(name, yamldoc.scalar(version), line, _JS)
                if dep is not None:
                    deps.append(dep)
    return deps


# `/name/1.0.0_peer@2.0.0` (v5), `/name@1.0.0(peer@2.0.0)` (v6), `name@1.0.0` (v9)
_PNPM_KEY = re.compile(r"/?((?:@[^/@]+/)?[^/@()]+)[/@]([^/_()@:]+)(?:[_(].*)?")


def _pnpm_lock(text: str) -> list[Dep]:
    """pnpm-lock.yaml `packages` (every locked package), at the line of its key.

    Registry packages have their version in the key; others (git, tarballs) in a
    `version` field, at whose line they are. `file:`/`link:` and directory packages are
    local and skipped. Importers are not read: their versions are all in `packages`.
    """
    deps: list[Dep] = []
    for document in _yaml_documents(text):
        packages = yamldoc.get(document, "packages")
        if packages is not None and not (
            isinstance(packages, yamldoc.MappingNode) or yamldoc.is_null(packages)
        ):
            raise DependencyFileError("`packages` is not a mapping", yamldoc.line_of(packages))
        for key, key_node, entry in yamldoc.items(packages):
            dep = _pnpm_package(key, key_node, entry)
            if dep is not None:
                deps.append(dep)
    return deps


def _pnpm_package(key: str, key_node: yamldoc.Node, entry: yamldoc.Node) -> Dep | None:
    directory = yamldoc.get(entry, "resolution", "directory")
    if "file:" in key or "link:" in key or directory is not None:
        return None
    registry = _PNPM_KEY.fullmatch(key)
    if registry is not None:
        return _dep(registry.group(1), registry.group(2), yamldoc.line_of(key_node), _JS)
    version = yamldoc.get(entry, "version")
    if version is None:
        return None
    name = yamldoc.scalar(yamldoc.get(entry, "name")) or _npm_descriptor(key)[0]
    return _dep(name, yamldoc.scalar(version), yamldoc.line_of(version), _JS)


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


# -- Rust ------------------------------------------------------------------------------------------

_CARGO_SECTIONS = (
    "dependencies",
    "dev-dependencies",
    "build-dependencies",
    "dev_dependencies",
    "build_dependencies",
)


def _cargo_toml(text: str) -> list[Dep]:
    """Cargo.toml dependency tables: top-level, `target.<cfg>.` and `workspace.`.

    `"1.2"` is Cargo's `^1.2` (lowest 1.2.0), `>1.2` is `>=1.3.0` as in npm. `package =`
    renames report the registry name. Path dependencies are local, with or without a
    version; git ones without a version, and `workspace = true` (read where the workspace
    declares it), have none.
    """
    data = _toml(text)
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
            dep = _dep(name, floor, lines.get((*path, key)), Ecosystem.RUST, spec)
            if dep is not None:
                deps.append(dep)
    return sorted(deps, key=lambda dep: dep.line or 0)


def _cargo_tables(data: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    for section in _CARGO_SECTIONS:
        yield (section,), _table(data, section)
    yield ("workspace", "dependencies"), _table(data, "workspace", "dependencies")
    for target in _table(data, "target"):
        for section in _CARGO_SECTIONS:
            yield ("target", target, section), _table(data, "target", target, section)


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
        found.group(3) if found.group(3) is not None else _toml_string(found)
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
        header = _TOML_HEADER.match(line)
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
    "Cargo.toml": _cargo_toml,
    "yarn.lock": _yarn_lock,
    "pnpm-lock.yaml": _pnpm_lock,
    "Pipfile.lock": _pipfile_lock,
}
