"""`changegate scan PATH...`: every file under the given paths, as if newly added."""

from __future__ import annotations

import os
from pathlib import Path

from bot.change import Change, ChangedFile, FileStatus
from bot.views.base import FileView

SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", ".venv", "__pycache__", ".terraform"}


class DirectoryView(FileView):
    """Paths are shown as named on the command line: `scan deploy/` yields `deploy/app.yaml`."""

    def __init__(self, roots: list[str]) -> None:
        super().__init__(Change(repo="local", base=None, head="working-tree"))
        self._files: dict[str, Path] = {}
        for root in roots:
            self._add(root)

    def _add(self, root: str) -> None:
        path = Path(root)
        if path.is_file():
            self._files[_display(root)] = path
            return
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            for name in filenames:
                full = Path(dirpath) / name
                if full.is_file() and not full.is_symlink():
                    self._files[_display(str(full))] = full

    def changed_files(self) -> list[ChangedFile]:
        return [ChangedFile(p, FileStatus.ADDED) for p in sorted(self._files)]

    def read(self, path: str, rev: str = "head") -> bytes | None:
        if rev != "head":
            return None
        file = self._files.get(path)
        if file is None:
            return None
        try:
            return file.read_bytes()
        except OSError:
            return None

    def head_paths(self) -> list[str]:
        return sorted(self._files)


def _display(path: str) -> str:
    return os.path.normpath(path).replace(os.sep, "/").removeprefix("./")
