"""Real git repositories for the forge stand-ins, built and read with git plumbing.

Commits are written with `git fast-import` into a bare repository: no working tree, no
checkout, one process per commit however many files it holds. Reads go through `cat-file`,
`ls-tree` and `diff-tree`, so a stand-in serves exactly what git holds. Nothing here knows
about GitHub or GitLab.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ZERO_SHA = "0" * 40
_SHA = re.compile(r"[0-9a-f]{40}")


class GitCommandError(Exception):
    pass


@dataclass(frozen=True)
class TreeEntry:
    path: str
    mode: str
    type: str  # "blob" | "tree" | "commit"
    sha: str
    size: int | None  # blobs only


@dataclass(frozen=True)
class DiffEntry:
    status: str  # git letter: A M D R C T
    path: str
    old_path: str | None
    old_sha: str  # ZERO_SHA when added
    new_sha: str  # ZERO_SHA when deleted
    additions: int = 0
    deletions: int = 0


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    timestamp: int
    message: str


class GitRepo:
    """A bare repository under `path` whose default branch is `default_branch`."""

    def __init__(self, path: Path | str, default_branch: str = "main") -> None:
        self.path = Path(path)
        self.default_branch = default_branch
        self._clock = 1_700_000_000  # deterministic, strictly increasing commit times
        self._memo: dict[tuple[str, ...], Any] = {}  # reads keyed by immutable SHAs
        if not (self.path / "HEAD").exists():
            self.path.mkdir(parents=True, exist_ok=True)
            self.git("init", "--bare", "--quiet", "-b", default_branch)

    # -- plumbing -------------------------------------------------------------------
    def git(
        self, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> bytes:
        proc = subprocess.run(
            ["git", "-C", str(self.path), *args],
            input=input,
            capture_output=True,
            check=False,
            env={
                "GIT_CONFIG_NOSYSTEM": "1",
                "HOME": str(self.path),
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                **(env or {}),
            },
        )
        if proc.returncode != 0:
            raise GitCommandError(proc.stderr.decode("utf-8", "replace").strip())
        return proc.stdout

    # -- writing ----------------------------------------------------------------------
    def commit(
        self,
        branch: str,
        files: Mapping[str, str | bytes | None],
        message: str = "change",
        *,
        parent: str | None = None,
        author: str = "Dev Eloper",
        email: str = "dev@example.com",
    ) -> str:
        """Commit `files` on top of `branch` (or `parent`); a None value deletes the file.

        A branch that does not exist yet starts from `parent`, else from the default branch
        (or from nothing in an empty repository). Returns the new commit SHA.
        """
        start = parent or self.branch_sha(branch)
        if start is None and branch != self.default_branch:
            start = self.branch_sha(self.default_branch)
        self._clock += 60
        stamp = f"{self._clock} +0000"
        msg = message.encode()
        chunks = [
            f"commit refs/heads/{branch}\n".encode(),
            f"author {author} <{email}> {stamp}\n".encode(),
            f"committer {author} <{email}> {stamp}\n".encode(),
            f"data {len(msg)}\n".encode() + msg + b"\n",
        ]
        if start is not None:
            chunks.append(f"from {start}\n".encode())
        for path, content in files.items():
            if content is None:
                chunks.append(f"D {path}\n".encode())
                continue
            data = content.encode() if isinstance(content, str) else content
            chunks.append(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")
        chunks.append(b"done\n")
        self.git("fast-import", "--quiet", "--done", "--force", input=b"".join(chunks))
        sha = self.branch_sha(branch)
        assert sha is not None
        return sha

    def squash_merge(self, branch: str, source: str, message: str) -> str:
        """Squash-merge `source` into `branch`, as GitHub and GitLab do: one new commit on
        `branch` whose tree is the three-way merge of the two (git merge-tree; a conflict
        raises). Returns the new commit SHA."""
        parent = self.branch_sha(branch)
        assert parent is not None, f"no branch {branch}"
        self._clock += 60
        who = {"NAME": "Dev Eloper", "EMAIL": "dev@example.com", "DATE": f"{self._clock} +0000"}
        env = {f"GIT_{role}_{key}": v for role in ("AUTHOR", "COMMITTER") for key, v in who.items()}
        tree = self.git("merge-tree", "--write-tree", parent, source).decode().split()[0]
        sha = self.git("commit-tree", tree, "-p", parent, "-m", message, env=env).decode().strip()
        self.git("update-ref", f"refs/heads/{branch}", sha)
        self._memo.clear()
        return sha

    def branch(self, name: str, start: str | None = None) -> str:
        """Create or move branch `name` to `start` (default: the default branch's tip)."""
        target = start or self.branch_sha(self.default_branch)
        if target is None:
            raise GitCommandError("empty repository: nothing to branch from")
        self.git("update-ref", f"refs/heads/{name}", target)
        return target

    def delete_branch(self, name: str) -> None:
        self.git("update-ref", "-d", f"refs/heads/{name}")

    # -- reading ----------------------------------------------------------------------
    def branch_sha(self, name: str) -> str | None:
        try:
            return (
                self.git("rev-parse", "--verify", "--quiet", f"refs/heads/{name}").decode().strip()
            )
        except GitCommandError:
            return None

    def resolve(self, rev: str) -> str | None:
        """A commit SHA for a SHA, branch name or ref; None if unknown."""
        try:
            return (
                self.git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").decode().strip()
            )
        except GitCommandError:
            return None

    def _memoized(self, key: tuple[str, ...], compute: Any) -> Any:
        """Results that depend only on full SHAs never change: compute them once."""
        if not all(_SHA.fullmatch(k) for k in key[1:]):
            return compute()
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def commit_info(self, sha: str) -> CommitInfo:
        return self._memoized(("commit", sha), lambda: self._commit_info(sha))

    def _commit_info(self, sha: str) -> CommitInfo:
        out = self.git("cat-file", "commit", sha).decode("utf-8", "replace")
        header, _, message = out.partition("\n\n")
        tree, parents, name, email, ts = "", [], "", "", 0
        for line in header.splitlines():
            key, _, value = line.partition(" ")
            if key == "tree":
                tree = value
            elif key == "parent":
                parents.append(value)
            elif key == "author":
                who, _, rest = value.rpartition(" <")
                name = who
                email, _, when = rest.partition("> ")
                ts = int(when.split()[0])
        return CommitInfo(sha, tree, tuple(parents), name, email, ts, message.rstrip("\n"))

    def blob(self, sha: str) -> bytes | None:
        try:
            if self.git("cat-file", "-t", sha).strip() != b"blob":
                return None
            return self.git("cat-file", "blob", sha)
        except GitCommandError:
            return None

    def object_type(self, sha: str) -> str | None:
        try:
            return self.git("cat-file", "-t", sha).decode().strip()
        except GitCommandError:
            return None

    def file_at(self, rev: str, path: str) -> tuple[str, bytes] | None:
        """(blob sha, contents) of `path` at `rev`, or None when absent or not a file."""
        try:
            sha = self.git("rev-parse", "--verify", "--quiet", f"{rev}:{path}").decode().strip()
        except GitCommandError:
            return None
        data = self.blob(sha)
        return None if data is None else (sha, data)

    def tree(self, rev: str, *, recursive: bool = True) -> list[TreeEntry]:
        """Entries of the tree of `rev` (a commit or tree SHA), subtrees included."""
        args = ["ls-tree", "-l", "-z"]
        if recursive:
            args += ["-r", "-t"]
        out = self.git(*args, rev)
        entries = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, path = record.partition(b"\t")
            mode, kind, sha, size = meta.decode().split()
            entries.append(
                TreeEntry(path.decode(), mode, kind, sha, int(size) if size != "-" else None)
            )
        return entries

    def tree_sha(self, rev: str) -> str:
        return self.git("rev-parse", f"{rev}^{{tree}}").decode().strip()

    def merge_base(self, a: str, b: str) -> str | None:
        return self._memoized(("merge-base", a, b), lambda: self._merge_base(a, b))

    def _merge_base(self, a: str, b: str) -> str | None:
        try:
            return self.git("merge-base", a, b).decode().strip() or None
        except GitCommandError:
            return None

    def commits_between(self, base: str, head: str) -> list[str]:
        """Commits reachable from head and not from base, oldest first."""
        return self._memoized(("between", base, head), lambda: self._between(base, head))

    def _between(self, base: str, head: str) -> list[str]:
        out = self.git("rev-list", "--reverse", f"{base}..{head}").decode()
        return out.split()

    def diff(self, base: str, head: str) -> list[DiffEntry]:
        """Changes from `base` to `head` with rename detection, sorted by path."""
        return self._memoized(("diff", base, head), lambda: self._diff(base, head))

    def _diff(self, base: str, head: str) -> list[DiffEntry]:
        raw = self.git("diff-tree", "-r", "-M", "-z", "--no-commit-id", base, head)
        counts = self._numstat(base, head)
        fields = raw.split(b"\0")
        entries: list[DiffEntry] = []
        i = 0
        while i < len(fields) and fields[i]:
            meta = fields[i].decode().lstrip(":").split()
            old_sha, new_sha, status = meta[2], meta[3], meta[4][0]
            if status in "RC":
                old_path, path = fields[i + 1].decode(), fields[i + 2].decode()
                i += 3
            else:
                old_path, path = None, fields[i + 1].decode()
                i += 2
            adds, dels = counts.get(path, (0, 0))
            entries.append(DiffEntry(status, path, old_path, old_sha, new_sha, adds, dels))
        return sorted(entries, key=lambda e: e.path)

    def _numstat(self, base: str, head: str) -> dict[str, tuple[int, int]]:
        out = self.git("diff-tree", "-r", "-M", "-z", "--numstat", "--no-commit-id", base, head)
        fields = out.split(b"\0")
        counts: dict[str, tuple[int, int]] = {}
        i = 0
        while i < len(fields) and fields[i]:
            adds, dels, path = fields[i].decode().split("\t")
            if path == "":  # rename: old and new path follow
                path = fields[i + 2].decode()
                i += 3
            else:
                i += 1
            counts[path] = (int(adds) if adds != "-" else 0, int(dels) if dels != "-" else 0)
        return counts
