"""A view over files held in memory: the base for tests and for forge adapters' caches."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TypedDict, Unpack

from bot.change import Change, ChangedFile, FileStatus
from bot.views.base import FileView


class ChangeFields(TypedDict, total=False):
    """What a test may say about the change besides its files (see `Change`)."""

    description: str
    author: str | None
    forge: str
    repo: str
    title: str
    base_ref: str | None
    labels: tuple[str, ...] | None
    draft: bool | None


class MemoryView(FileView):
    """Head (and optionally base) trees as {path: bytes}; changed files derived by comparison.

    With `base=None` it behaves like a scan: every head file is "added" and there is no base.
    """

    def __init__(
        self,
        head: Mapping[str, bytes | str],
        base: Mapping[str, bytes | str] | None = None,
        **change: Unpack[ChangeFields],
    ) -> None:
        about = Change(repo="local", base="base" if base is not None else None, head="head")
        super().__init__(dataclasses.replace(about, **change))
        self._head = {p: _bytes(c) for p, c in head.items()}
        self._base = {p: _bytes(c) for p, c in base.items()} if base is not None else None

    def changed_files(self) -> list[ChangedFile]:
        if self._base is None:
            return [ChangedFile(p, FileStatus.ADDED) for p in sorted(self._head)]
        out = []
        for path in sorted(set(self._head) | set(self._base)):
            before, after = self._base.get(path), self._head.get(path)
            if before == after:
                continue
            if before is None:
                out.append(ChangedFile(path, FileStatus.ADDED))
            elif after is None:
                out.append(ChangedFile(path, FileStatus.DELETED))
            else:
                out.append(ChangedFile(path, FileStatus.MODIFIED))
        return out

    def read(self, path: str, rev: str = "head") -> bytes | None:
        tree = self._head if rev == "head" else self._base
        return None if tree is None else tree.get(path)

    def head_paths(self) -> list[str]:
        return sorted(self._head)


def _bytes(content: bytes | str) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content
