"""The fact model `kind: expression` rules are written against (docs/policy-language.md).

Facts are plain dicts of strings, integers, booleans and lists, so that any CEL engine reads
them as maps. They are built from what the other rules already extract: images from
`bot.formats.images`, endpoints from `bot.formats.endpoints`, dependency versions from
`bot.formats.dependencies`: there is no second parser. Each collection is built only when an
expression names it, from the changed files (existing at head) under the rule's `paths`.

A file that cannot be read is reported back as a `Problem`, so that the rule fails closed on
it, as every rule that reads contents does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from bot.change import ChangedFile
from bot.formats.dependencies import (
    Dep,
    DependencyFileError,
    Ecosystem,
    is_manifest,
    read_dependencies,
)
from bot.formats.endpoints import find_endpoints
from bot.formats.images import extract
from bot.rules.dependency_upgrade import highest_per_package
from bot.views.base import FileView


class FileFact(TypedDict):
    path: str
    status: str
    old_path: str
    environment: str


class ChangeFact(TypedDict):
    files: list[FileFact]
    author: str | None
    labels: list[str] | None
    title: str
    description: str
    target_branch: str | None
    draft: bool | None


class ImageFact(TypedDict):
    reference: str
    registry: str
    repository: str
    tag: str
    digest: str
    template: bool
    source: str
    environment: str
    file: str
    line: int


class EndpointFact(TypedDict):
    kind: str
    host: str
    port: int
    environment: str
    file: str
    line: int


DependencyFact = TypedDict(
    "DependencyFact",
    {
        "ecosystem": str,
        "name": str,
        "from": str,
        "to": str,
        "major_upgrade": bool,
        "file": str,
        "line": int,
    },
)

#: What `over:` iterates, and the name each match is bound to in the expression.
COLLECTIONS: dict[str, str] = {
    "files": "file",
    "images": "image",
    "endpoints": "endpoint",
    "dependencies": "dependency",
}
#: The fields of each kind of fact, by the name an expression or a message uses for it.
FIELDS: dict[str, tuple[str, ...]] = {
    "change": tuple(ChangeFact.__annotations__),
    "file": tuple(FileFact.__annotations__),
    "image": tuple(ImageFact.__annotations__),
    "endpoint": tuple(EndpointFact.__annotations__),
    "dependency": tuple(DependencyFact.__annotations__),
}


@dataclass(frozen=True)
class Problem:
    """A file the facts could not be read from: the rule reports it at its action."""

    path: str
    reason: str
    line: int | None = None


@dataclass
class FactSource:
    """Builds the facts of one change for one rule, each collection once and on demand.

    `files` are the changed files under the rule's `paths` (deleted ones too: contents are
    read from those that exist at head); `environment_of` names the environment a path
    belongs to ("" for none)."""

    change: ChangeFact
    files: list[ChangedFile]
    environment_of: Callable[[str], str]
    view: FileView
    problems: list[Problem] = field(default_factory=list)
    _built: dict[str, list[Any]] = field(default_factory=dict)

    def collection(self, name: str) -> list[Any]:
        """`files`, `images`, `endpoints` or `dependencies`, built at most once."""
        if name not in self._built:
            builders: dict[str, Callable[[], list[Any]]] = {
                "files": lambda: list(self.change["files"]),
                "images": self._images,
                "endpoints": self._endpoints,
                "dependencies": self._dependencies,
            }
            builder = builders[name]
            self._built[name] = builder()
        return self._built[name]

    def _at_head(self) -> list[ChangedFile]:
        return [f for f in self.files if f.exists_at_head]

    def _images(self) -> list[ImageFact]:
        out: list[ImageFact] = []
        for changed in self._at_head():
            found = extract(self.view, changed.path)
            if found.problem is not None:
                self.problems.append(Problem(changed.path, found.problem, found.problem_line))
            for image in found.images:
                ref = image.reference
                out.append(
                    {
                        "reference": image.value,
                        "registry": ref.domain if ref else "",
                        "repository": ref.repository if ref else "",
                        "tag": (ref.tag or "") if ref else "",
                        "digest": (ref.digest or "") if ref else "",
                        "template": image.template,
                        "source": image.source,
                        "environment": self.environment_of(image.path),
                        "file": image.path,
                        "line": image.line or 0,
                    }
                )
        return out

    def _endpoints(self) -> list[EndpointFact]:
        out: list[EndpointFact] = []
        for changed in self._at_head():
            if self.view.text(changed.path) is None:
                reason = self.view.unreadable_reason(changed.path)
                if reason and not reason.startswith("binary"):
                    self.problems.append(Problem(changed.path, reason))
                continue
            for endpoint in find_endpoints(self.view, changed.path):
                out.append(
                    {
                        "kind": endpoint.kind,
                        "host": endpoint.host,
                        "port": endpoint.port,
                        "environment": self.environment_of(endpoint.path),
                        "file": endpoint.path,
                        "line": endpoint.line,
                    }
                )
        return out

    def _dependencies(self) -> list[DependencyFact]:
        out: list[DependencyFact] = []
        for changed in self._at_head():
            if is_manifest(changed.path):
                out.extend(self._dependency_changes(changed))
        return out

    def _dependency_changes(self, changed: ChangedFile) -> list[DependencyFact]:
        """Packages whose (highest) version differs between base and head: added ones have
        `from` "", removed ones `to` "" and line 0. Without a base (a scan), all are added."""
        path = changed.path
        head = self._read_deps(path, "head", path)
        base_path = changed.old_path or path
        base = self._read_deps(base_path, "base", path) if self.view.has_base else []
        if head is None or base is None:
            return []
        before, after = highest_per_package(base), highest_per_package(head)
        out: list[DependencyFact] = []
        for key in [*after, *(k for k in before if k not in after)]:
            old, new = before.get(key), after.get(key)
            if old is not None and new is not None and old.version == new.version:
                continue
            out.append(_dependency_fact(key, old, new, path))
        return out

    def _read_deps(self, path: str, rev: str, shown: str) -> list[Dep] | None:
        """The dependencies of `path` at `rev` ([] when absent); None, with a problem
        recorded, when the file cannot be read."""
        text = self.view.text(path, rev)
        prefix = "" if rev == "head" else "base revision: "
        if text is None:
            reason = self.view.unreadable_reason(path, rev)
            if reason is None:
                return []
            self.problems.append(Problem(shown, prefix + reason))
            return None
        try:
            return read_dependencies(path, text)
        except DependencyFileError as exc:
            self.problems.append(
                Problem(shown, prefix + str(exc), exc.line if not prefix else None)
            )
            return None


def _dependency_fact(
    key: tuple[Ecosystem, str], old: Dep | None, new: Dep | None, path: str
) -> DependencyFact:
    return {
        "ecosystem": str(key[0]),
        "name": key[1],
        "from": old.version if old else "",
        "to": new.version if new else "",
        "major_upgrade": bool(old and new and new.major_key > old.major_key),
        "file": path,
        "line": (new.line or 0) if new else 0,
    }


def change_fact(
    view: FileView, files: list[ChangedFile], environment_of: Callable[[str], str]
) -> ChangeFact:
    """`change`: what the forge said about the change, and its files under the rule's paths.
    Facts the forge did not supply (labels and draft on a push, an author locally) are null."""
    change = view.change
    return {
        "files": [
            {
                "path": f.path,
                "status": str(f.status),
                "old_path": f.old_path or "",
                "environment": environment_of(f.path),
            }
            for f in files
        ],
        "author": change.author,
        "labels": list(change.labels) if change.labels is not None else None,
        "title": change.title,
        "description": change.description,
        "target_branch": change.base_ref,
        "draft": change.draft,
    }


def specimen(name: str) -> dict[str, Any]:
    """A fact of kind `name` with every field set, to try an expression on at load time."""
    values: dict[str, Any] = {
        "files": [],
        "labels": [],
        "draft": False,
        "line": 1,
        "port": 1,
        "template": False,
        "major_upgrade": False,
    }
    return {key: values.get(key, "") for key in FIELDS[name]}
