"""JavaScript: package.json, package-lock.json / npm-shrinkwrap.json, yarn.lock (classic v1
and berry) and pnpm-lock.yaml (lockfile 5.x, 6.x, 9.x). Names are kept as written."""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.formats import yamldoc
from bot.formats.dependencies.model import Dep, DependencyFileError, Ecosystem, make_dep
from bot.formats.dependencies.parsing import (
    JsonObject,
    json_sections,
    load_json,
    string_or_none,
    toml_string,
    yaml_documents,
)
from bot.formats.dependencies.ranges import lowest_admitted

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


def read_package_json(text: str) -> list[Dep]:
    deps: list[Dep] = []
    for table, name, spec in json_sections(load_json(text), NPM_SECTIONS):
        if not isinstance(spec, str):
            continue
        line = table.key_lines.get(name)
        dep = make_dep(name, _npm_range(spec.strip()), line, _JS, spec.strip())
        if dep is not None:
            deps.append(dep)
    return deps


def read_package_lock(text: str) -> list[Dep]:
    """package-lock.json / npm-shrinkwrap.json: v2/v3 `packages`, else v1 `dependencies`."""
    data = load_json(text)
    deps: list[Dep] = []
    packages = data.get("packages")
    if isinstance(packages, JsonObject):
        for key, entry in packages.items():
            if "node_modules/" not in key or not isinstance(entry, dict) or entry.get("link"):
                continue
            name = key.rsplit("node_modules/", 1)[1]
            dep = make_dep(
                name, string_or_none(entry.get("version")), packages.key_lines.get(key), _JS
            )
            if dep is not None:
                deps.append(dep)
        return deps
    stack = [data.get("dependencies")]
    while stack:  # depth-first in file order, without recursion (the nesting is untrusted)
        table = stack.pop()
        if not isinstance(table, JsonObject):
            continue
        nested = []
        for name, entry in table.items():
            if not isinstance(entry, dict):
                continue
            dep = make_dep(
                name, string_or_none(entry.get("version")), table.key_lines.get(name), _JS
            )
            if dep is not None and not dep.version.startswith("file:"):
                deps.append(dep)
            nested.append(entry.get("dependencies"))
        stack.extend(reversed(nested))
    return sorted(deps, key=lambda dep: dep.line or 0)


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


def read_yarn_lock(text: str) -> list[Dep]:
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
            dep = make_dep(name, version.group(1), number, _JS)
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
        patterns.append(toml_string(found))  # basic strings escape as JSON does
        start = found.end()
    return patterns


def _yarn_berry(text: str) -> list[Dep]:
    """Berry entries `"react@npm:^18.2.0, react@npm:^18.0.0":` with `version: 18.2.0`.

    Entries whose descriptors or `resolution` are local (`workspace:`, `link:`, ...) or
    `patch:` are skipped.
    """
    deps: list[Dep] = []
    for document in yaml_documents(text):
        for key, _, entry in yamldoc.items(document):
            if key == "__metadata":
                continue
            version = yamldoc.get(entry, "version")
            resolution = yamldoc.scalar(yamldoc.get(entry, "resolution")) or ""
            if version is None or _npm_descriptor(resolution)[1].startswith(_YARN_LOCAL):
                continue
            for name in _yarn_names(key.split(",")):
                line = yamldoc.line_of(version)
                dep = make_dep(name, yamldoc.scalar(version), line, _JS)
                if dep is not None:
                    deps.append(dep)
    return deps


# `/name/1.0.0_peer@2.0.0` (v5), `/name@1.0.0(peer@2.0.0)` (v6), `name@1.0.0` (v9)
_PNPM_KEY = re.compile(r"/?((?:@[^/@]+/)?[^/@()]+)[/@]([^/_()@:]+)(?:[_(].*)?")


def read_pnpm_lock(text: str) -> list[Dep]:
    """pnpm-lock.yaml `packages` (every locked package), at the line of its key.

    Registry packages have their version in the key; others (git, tarballs) in a
    `version` field, at whose line they are. `file:`/`link:` and directory packages are
    local and skipped. Importers are not read: their versions are all in `packages`.
    """
    deps: list[Dep] = []
    for document in yaml_documents(text):
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
        return make_dep(registry.group(1), registry.group(2), yamldoc.line_of(key_node), _JS)
    version = yamldoc.get(entry, "version")
    if version is None:
        return None
    name = yamldoc.scalar(yamldoc.get(entry, "name")) or _npm_descriptor(key)[0]
    return make_dep(name, yamldoc.scalar(version), yamldoc.line_of(version), _JS)
