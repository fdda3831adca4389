"""`FileView`: the lazily read, cached view of one change's files that every rule reads.

Subclasses live beside it (git, directory, memory) and in bot/forges (GitHub, GitLab).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable

from bot.change import Change, ChangedFile
from bot.formats.yamldoc import YamlFile, load_yaml
from bot.views.decoding import decode_text, decoding_note, undecodable_reason
from bot.views.lines import lines_changed


class FileView(abc.ABC):
    """A lazily read, cached view of the files of one change.

    Subclasses (git repository, directory, GitHub, GitLab) implement the four primitive
    reads; decoding and parsing are cached here so that every rule shares one per file.
    What can be read is read: undecodable bytes become U+FFFD, a large file is read in full
    up to `MAX_FILE_BYTES` (docs/reading-files.md).
    """

    #: Above this size a file is still read, with a note that it is large.
    SOFT_MAX_FILE_BYTES = 5 * 1024 * 1024
    #: Above this size a file is not read; the rules that needed it say so at their action.
    MAX_FILE_BYTES = 25 * 1024 * 1024

    def __init__(self, change: Change) -> None:
        self.change = change
        self._yaml_cache: dict[tuple[str, str], YamlFile] = {}
        self._text_cache: dict[tuple[str, str], str | None] = {}

    # -- primitives -------------------------------------------------------------
    @abc.abstractmethod
    def changed_files(self) -> list[ChangedFile]:
        """Files the change adds, modifies, renames or deletes (all files, for a scan)."""

    @abc.abstractmethod
    def read(self, path: str, rev: str = "head") -> bytes | None:
        """Contents of `path` at "head" or "base"; None when absent there."""

    @abc.abstractmethod
    def head_paths(self) -> list[str]:
        """Every file path at the head revision (whole-environment context)."""

    def prefetch(self, paths: Iterable[str]) -> None:
        """Read the head contents of `paths` ahead, together, because rules are about to
        (a forge view fetches them concurrently). A hint only: nothing is read here by
        default, and every read still goes through `read()`."""
        return None

    def shown_base(self) -> str | None:
        """The commit the change is shown against (its merge base)."""
        return self.change.base

    def unlisted(self) -> str | None:
        """Why the change could not be listed whole (the forge's cap, a listing by trees
        that ran out of budget), or None. A change not listed whole never passes."""
        return None

    @property
    def has_base(self) -> bool:
        """False for a directory scan: there is no 'before'."""
        return self.change.base is not None

    def changed_line_count(self) -> int:
        """Lines added plus lines removed over every changed text file (a binary or
        unreadable file counts as one line: it did change)."""
        total = 0
        for changed in self.changed_files():
            old_path = changed.old_path or changed.path
            before = self.text(old_path, "base") if self.has_base else None
            after = self.text(changed.path) if changed.exists_at_head else None
            if (before is None and self.has_base and self.read(old_path, "base") is not None) or (
                after is None and changed.exists_at_head
            ):
                total += 1
                continue
            total += lines_changed(before or "", after or "")
        return total

    def exists(self, path: str, rev: str = "head") -> bool:
        return self.read(path, rev) is not None

    # -- cached decoding ------------------------------------------------------------
    def text(self, path: str, rev: str = "head") -> str | None:
        """Decoded text (bad bytes as U+FFFD); None if absent, binary or over the hard cap."""
        key = (rev, path)
        if key not in self._text_cache:
            self._text_cache[key] = decode_text(self.read(path, rev), self.MAX_FILE_BYTES)
        return self._text_cache[key]

    def unreadable_reason(self, path: str, rev: str = "head") -> str | None:
        """Why `text()` returned None for an existing file: what, and how to get it read."""
        data = self.read(path, rev)
        if data is None:
            return None
        return undecodable_reason(data, self.MAX_FILE_BYTES)

    def read_note(self, path: str, rev: str = "head") -> str | None:
        """What a reader of `text()` should know (bad bytes replaced, a large file), or None."""
        data = self.read(path, rev)
        if data is None or undecodable_reason(data, self.MAX_FILE_BYTES) is not None:
            return None
        return decoding_note(data, self.SOFT_MAX_FILE_BYTES)

    def yaml(self, path: str, rev: str = "head") -> YamlFile:
        key = (rev, path)
        cached = self._yaml_cache.get(key)
        if cached is None:
            text = self.text(path, rev)
            if text is not None:
                cached = load_yaml(text, path=path)
            elif self.read(path, rev) is None:
                cached = YamlFile(documents=[], problem=None, missing=True)
            else:
                cached = YamlFile(
                    documents=[], problem=self.unreadable_reason(path, rev) or "unreadable"
                )
            self._yaml_cache[key] = cached
        return cached
