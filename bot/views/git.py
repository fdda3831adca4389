"""`changegate check --repo DIR --base REV --head REV`: a change read with git plumbing.

Contents come from one long-lived `git cat-file --batch` process, so reading a thousand
files costs one process, not a thousand. The base is the merge-base of base and head (what
a pull request shows); when there is none (unrelated histories, a shallow clone cut above
it) the base itself is used.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from bot.change import Change, ChangedFile, FileStatus
from bot.views.base import FileView


class GitError(Exception):
    """A revision or repository git could not read; the CLI reports it with exit code 2."""


def git(repo: Path, *args: str) -> bytes:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise GitError(proc.stderr.decode("utf-8", "replace").strip() or f"git {args[0]} failed")
    return proc.stdout


def resolve(repo: Path, rev: str) -> str:
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").decode().strip()
    except GitError:
        raise GitError(f"{repo}: unknown revision {rev!r}") from None


_STATUS = {
    "A": FileStatus.ADDED,
    "M": FileStatus.MODIFIED,
    "D": FileStatus.DELETED,
    "R": FileStatus.RENAMED,
    "C": FileStatus.ADDED,
    "T": FileStatus.MODIFIED,
}


@dataclass(frozen=True)
class Stated:
    """What git cannot tell about a change and the caller may state: the description,
    author, labels and draft flag that `if:` / `unless:` conditions read (None: not said,
    and a condition needing it fails closed)."""

    description: str = ""
    author: str | None = None
    labels: tuple[str, ...] | None = None
    draft: bool | None = None


class GitView(FileView):
    def __init__(
        self, repo: str | Path, base: str, head: str, *, stated: Stated = Stated()
    ) -> None:
        self.repo = Path(repo)
        if not (self.repo / ".git").exists() and not _is_git_dir(self.repo):
            raise GitError(f"{self.repo}: not a git repository")
        head_sha = resolve(self.repo, head)
        base_sha = resolve(self.repo, base)
        super().__init__(
            Change(
                repo=str(self.repo),
                base=base_sha,
                head=head_sha,
                author=stated.author,
                description=stated.description,
                labels=stated.labels,
                draft=stated.draft,
            )
        )
        self.merge_base = self._merge_base(base_sha, head_sha)
        if self.merge_base == head_sha and base_sha != head_sha:
            # Replacing the base by the merge-base would leave nothing to judge and report
            # a silent pass for what is almost always `--base` and `--head` swapped.
            raise GitError(
                f"--base {base} is a descendant of --head {head}: the range is reversed, "
                "nothing lies between them (swap --base and --head)"
            )
        self._lock = threading.Lock()
        self._catfile: subprocess.Popen[bytes] | None = None
        self._blobs: dict[tuple[str, str], bytes | None] = {}

    def _merge_base(self, base: str, head: str) -> str:
        try:
            return git(self.repo, "merge-base", base, head).decode().strip() or base
        except GitError:
            return base

    @cached_property
    def _changed(self) -> list[ChangedFile]:
        out = git(
            self.repo,
            "diff",
            "--no-ext-diff",
            "--name-status",
            "-z",
            "-M",
            self.merge_base,
            self.change.head,
            "--",
        )
        fields = out.split(b"\0")
        changed: list[ChangedFile] = []
        i = 0
        while i < len(fields) and fields[i]:
            code = fields[i].decode()[0]
            if code in "RC":
                old, new = fields[i + 1].decode(), fields[i + 2].decode()
                status = _STATUS[code]
                changed.append(ChangedFile(new, status, old if code == "R" else None))
                i += 3
            else:
                changed.append(
                    ChangedFile(fields[i + 1].decode(), _STATUS.get(code, FileStatus.MODIFIED))
                )
                i += 2
        return sorted(changed, key=lambda c: c.path)

    def changed_files(self) -> list[ChangedFile]:
        return self._changed

    def read(self, path: str, rev: str = "head") -> bytes | None:
        commit = self.change.head if rev == "head" else self.merge_base
        key = (commit, path)
        if key not in self._blobs:
            self._blobs[key] = self._cat(f"{commit}:{path}")
        return self._blobs[key]

    def read_at(self, commit: str, path: str) -> bytes | None:
        """A file at any revision (the policy at the base revision, for instance)."""
        return self._cat(f"{commit}:{path}")

    @cached_property
    def _head_paths(self) -> list[str]:
        out = git(self.repo, "ls-tree", "-r", "-z", "--name-only", self.change.head)
        return sorted(p.decode() for p in out.split(b"\0") if p)

    def head_paths(self) -> list[str]:
        return self._head_paths

    def _cat(self, spec: str) -> bytes | None:
        with self._lock:
            proc = self._catfile
            if proc is None or proc.poll() is not None:
                proc = self._catfile = subprocess.Popen(
                    ["git", "-C", str(self.repo), "cat-file", "--batch"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(spec.encode() + b"\n")
            proc.stdin.flush()
            header = proc.stdout.readline().split()
            if len(header) != 3 or header[1] != b"blob":
                if len(header) == 3:  # a tree or commit: skip its body
                    proc.stdout.read(int(header[2]) + 1)
                return None
            size = int(header[2])
            data = proc.stdout.read(size)
            proc.stdout.read(1)  # the newline after the contents
            return data

    def close(self) -> None:
        if self._catfile is not None:
            if self._catfile.stdin:
                self._catfile.stdin.close()
            self._catfile.wait(timeout=5)
            self._catfile = None

    def __del__(self) -> None:  # best effort; close() is the way
        with contextlib.suppress(Exception):
            self.close()


def _is_git_dir(path: Path) -> bool:
    try:
        git(path, "rev-parse", "--git-dir")
        return True
    except GitError:
        return False
