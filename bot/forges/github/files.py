"""A GitHub pull request's or push's files, read through the API only when a rule asks.

API economy: file contents are fetched only when a rule reads them and are cached by blob
SHA in a bounded, process-wide LRU; path-to-blob lookups, trees, merge bases and pull request
file lists are cached by the immutable commit SHAs they depend on. A re-evaluation of the
same head therefore makes no content requests at all.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from github import Auth, UnknownObjectException
from github.GithubException import GithubException
from github.Repository import Repository
from github.Requester import Requester

from bot.change import Change, ChangedFile, FileStatus
from bot.forges.common import Caches
from bot.forges.github.client import GitHubApi
from bot.forges.treediff import Budget, Entry, ListingIncomplete, diff_trees, list_tree
from bot.views.base import FileView

log = logging.getLogger(__name__)

MAX_PULL_FILES = 3000  # GitHub lists at most 3,000 files of a pull request
MAX_COMPARE_FILES = 300  # and at most 300 files of a compare
PROBES_BEFORE_TREE = 2  # path lookups per commit answered one by one before fetching the tree

_STATUS = {
    "added": FileStatus.ADDED,
    "copied": FileStatus.ADDED,
    "removed": FileStatus.DELETED,
    "renamed": FileStatus.RENAMED,
    "modified": FileStatus.MODIFIED,
    "changed": FileStatus.MODIFIED,
    "unchanged": FileStatus.MODIFIED,
}


@dataclass(frozen=True)
class _File:
    path: str
    status: FileStatus
    sha: str | None
    old_path: str | None = None


@dataclass(frozen=True)
class _Listing:
    files: tuple[_File, ...]
    complete: bool  # False when GitHub's cap cut the list short
    merge_base: str | None = None
    unlisted: str | None = None  # why the change could not be listed whole


#: blob SHA -> contents, paths, trees, merge bases and file lists of GitHub
CACHES: Caches[_Listing] = Caches()


class GitHubView(FileView):
    """A pull request's or push's files, read through the API only when a rule asks.

    Changed files come from the pull request's file list (or compare, for pushes); head
    contents by blob SHA; base contents at the merge base (what the pull request shows).
    """

    def __init__(self, api: GitHubApi, change: Change) -> None:
        super().__init__(change)
        self.github = api
        self.api = api.api_url
        self.repo = api.repo(change.repo)
        self._listing: _Listing | None = None
        self._by_path: dict[str, _File] = {}
        self._renamed_from: set[str] = set()
        self._lookups: dict[str, int] = {}  # commit -> path lookups without a tree
        self._tree_unlisted: str | None = None  # a tree a rule needed could not be read whole

    # -- listing ------------------------------------------------------------------------
    def _list(self) -> _Listing:
        if self._listing is not None:
            return self._listing
        c = self.change
        key = (self.api, c.repo.lower(), str(c.number or ""), c.base or "", c.head)
        hit, listing = CACHES.listings.get(key)
        if not hit or listing is None:
            listing = self._fetch_listing()
            if listing.unlisted is None:  # a listing cut by the budget may finish next time
                CACHES.listings.put(key, listing)
        self._listing = listing
        self._by_path = {f.path: f for f in listing.files}
        self._renamed_from = {f.old_path for f in listing.files if f.old_path}
        for f in listing.files:
            if f.status is not FileStatus.DELETED:
                CACHES.paths.put((self.api, c.repo.lower(), c.head, f.path), f.sha)
        return listing

    def _fetch_listing(self) -> _Listing:
        c = self.change
        if c.number is not None:
            files: list[_File] = []
            for item in self.repo.get_pull(c.number).get_files():
                files.append(_file(item))
                if len(files) >= MAX_PULL_FILES:
                    break
            if len(files) < MAX_PULL_FILES:
                return _Listing(tuple(files), True)
            return self._listing_by_trees(
                files, self.merge_base, f"GitHub lists at most {MAX_PULL_FILES:,} files"
            )
        if c.base is None:  # a deploy names one commit: every file is in scope, as in a scan
            paths = self._tree(c.head)
            return _Listing(
                tuple(_File(p, FileStatus.ADDED, sha) for p, sha in sorted(paths.items())), True
            )
        comparison = self.repo.compare(c.base, c.head)
        files = [_file(item) for item in comparison.files]
        merge_base = comparison.merge_base_commit.sha
        CACHES.merge_bases.put((self.api, c.repo.lower(), c.base, c.head), merge_base)
        if len(files) < MAX_COMPARE_FILES:
            return _Listing(tuple(files), True, merge_base)
        return self._listing_by_trees(
            files, merge_base, f"GitHub compares at most {MAX_COMPARE_FILES} files"
        )

    def _listing_by_trees(self, listed: list[_File], merge_base: str, cap: str) -> _Listing:
        """The change by comparing the git trees of the merge base and the head, when
        GitHub's file list was cut at its cap. If even that cannot be done within the
        budget, the listing says so and the verdict fails."""
        c = self.change
        log.info("%s %s: %s; listing by git trees", c.repo, c.number or c.head[:12], cap)
        try:
            changes = diff_trees(
                _GitHubTrees(self.repo), merge_base, c.head, self.github.listing_budget()
            )
        except ListingIncomplete as exc:
            log.warning("%s %s: change not listed whole: %s", c.repo, c.number or "", exc)
            return _Listing(
                tuple(listed),
                False,
                merge_base,
                unlisted=f"{cap}, so changegate compared the git trees of "
                f"{merge_base[:12]} and {c.head[:12]} instead, and could not finish: {exc}. "
                "Files beyond the first "
                f"{len(listed):,} were not checked.",
            )
        files = tuple(_File(ch.path, ch.status, ch.sha) for ch in changes)
        return _Listing(files, True, merge_base)

    def unlisted(self) -> str | None:
        return self._list().unlisted or self._tree_unlisted

    def shown_base(self) -> str | None:
        return self.merge_base if self.change.base is not None else None

    def changed_files(self) -> list[ChangedFile]:
        return sorted(
            (ChangedFile(f.path, f.status, f.old_path) for f in self._list().files),
            key=lambda f: f.path,
        )

    @property
    def merge_base(self) -> str:
        c = self.change
        if c.base is None:
            raise ValueError("no base revision")
        key = (self.api, c.repo.lower(), c.base, c.head)
        hit, sha = CACHES.merge_bases.get(key)
        if hit and sha:
            return sha
        sha = self.repo.compare(c.base, c.head).merge_base_commit.sha
        CACHES.merge_bases.put(key, sha)
        return sha

    # -- reading ---------------------------------------------------------------------------
    def prefetch(self, paths: Iterable[str]) -> None:
        """Fetch the head blobs of `paths` that the listing names and the cache lacks, up to
        `max_concurrent_reads` at a time (one request each, as `read` would make)."""
        width = self.github.max_concurrent_reads
        if width <= 1:
            return
        self._list()
        wanted = {self._by_path[p].sha for p in paths if p in self._by_path}
        missing = sorted(sha for sha in wanted if sha and not CACHES.blobs.get(sha)[0])
        if len(missing) > 1:
            fetch_blobs(self.repo, missing, width)

    def read(self, path: str, rev: str = "head") -> bytes | None:
        sha = self._blob_sha(path, rev)
        return None if sha is None else blob(self.repo, sha)

    def blob_id(self, path: str) -> str | None:
        """The blob SHA of `path` at the head, None where the head has no such file."""
        return self._blob_sha(path, "head")

    def _blob_sha(self, path: str, rev: str) -> str | None:
        listing = self._list()
        entry = self._by_path.get(path)
        if rev == "head":
            if entry is not None:
                return None if entry.status is FileStatus.DELETED else entry.sha
            if path in self._renamed_from:
                return None
            return self._sha_at(self.change.head, path)
        if not self.has_base:
            return None
        if entry is not None and entry.status in (FileStatus.ADDED, FileStatus.RENAMED):
            return None
        if entry is None and path not in self._renamed_from and listing.complete:
            return self._sha_at(self.change.head, path)  # unchanged: the head blob is the base blob
        return self._sha_at(self.merge_base, path)

    def _sha_at(self, commit: str, path: str) -> str | None:
        """The blob SHA of `path` at `commit`: from a cached tree, else the contents API
        (whose answer also carries the contents, saving the blob request). Rules probe for
        files that may not exist (kustomization.yaml in every parent directory...): after
        `PROBES_BEFORE_TREE` lookups at one commit, one tree request answers all the rest."""
        repo_key = self.change.repo.lower()
        key = (self.api, repo_key, commit, path)
        hit, sha = CACHES.paths.get(key)
        if hit:
            return sha
        tree_hit, tree = CACHES.trees.get((self.api, repo_key, commit))
        if not tree_hit or tree is None:
            self._lookups[commit] = self._lookups.get(commit, 0) + 1
            if self._lookups[commit] > PROBES_BEFORE_TREE:
                tree = self._tree(commit)
        sha = tree.get(path) if tree is not None else self._contents_sha(commit, path)
        CACHES.paths.put(key, sha)
        return sha

    def _contents_sha(self, commit: str, path: str) -> str | None:
        try:
            found = self.repo.get_contents(path, ref=commit)
        except UnknownObjectException:
            return None
        if isinstance(found, list) or found.type != "file":
            return None
        if found.encoding == "base64" and found.content is not None:
            data = found.decoded_content
            if len(data) == found.size:
                CACHES.blobs.put(found.sha, data, len(data))
        return found.sha

    def head_paths(self) -> list[str]:
        return sorted(self._tree(self.change.head))

    def _tree(self, commit: str) -> dict[str, str]:
        key = (self.api, self.change.repo.lower(), commit)
        hit, tree = CACHES.trees.get(key)
        if hit and tree is not None:
            return tree
        found = self.repo.get_git_tree(commit, recursive=True)
        tree = {e.path: e.sha for e in found.tree if e.type == "blob"}
        if found.truncated:  # GitHub cut the listing: read it tree by tree
            try:
                tree = list_tree(_GitHubTrees(self.repo), commit, self.github.listing_budget())
            except ListingIncomplete as exc:
                log.warning("%s@%s: tree not listed whole: %s", self.change.repo, commit[:12], exc)
                self._tree_unlisted = (
                    f"GitHub cut the file tree of {commit[:12]} short, and changegate could "
                    f"not read it tree by tree: {exc}"
                )
                return tree
        CACHES.trees.put(key, tree)
        return tree


class _GitHubTrees:
    """Git trees through the API, for `treediff` (a commit SHA names its root tree)."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    def whole(self, commit: str, budget: Budget) -> tuple[list[Entry], bool]:
        budget.charge()
        found = self.repo.get_git_tree(commit, recursive=True)
        return [Entry(e.path, e.type, e.sha) for e in found.tree], bool(found.truncated)

    def level(self, commit: str, path: str, sha: str, budget: Budget) -> list[Entry]:
        budget.charge()
        found = self.repo.get_git_tree(sha)
        if found.truncated:
            raise ListingIncomplete(
                f"GitHub cut the listing of {path or 'the root'}/ at {commit[:12]}"
            )
        prefix = f"{path}/" if path else ""
        return [Entry(prefix + e.path, e.type, e.sha) for e in found.tree]


def fetch_blobs(repo: Repository, shas: list[str], width: int) -> None:
    """Blobs into the cache, `width` requests in flight. PyGithub's requester keeps one
    connection whose request and response are two calls, so it is not shared between
    threads: each thread gets its own, on the installation token in use now. Retries and
    rate-limit waits (Retry-After, x-ratelimit-reset) are the same `ForgeRetry`'s. A blob
    that fails here is left to `read`, which asks again and raises."""
    requester = repo.requester
    token = Auth.Token(requester.auth.token) if requester.auth is not None else None
    queue = list(shas)
    lock = threading.Lock()

    def drain() -> None:
        mine = Requester(**{**requester.kwargs, "auth": token})
        while True:
            with lock:
                if not queue:
                    return
                sha = queue.pop()
            try:
                _, data = mine.requestJsonAndCheck("GET", f"{repo.url}/git/blobs/{sha}")
            except GithubException as exc:
                log.info("blob %s not fetched ahead: %s", sha[:12], exc)
                continue
            _keep(sha, str(data.get("content") or ""), str(data.get("encoding") or ""))

    with ThreadPoolExecutor(max_workers=min(width, len(shas))) as pool:
        for running in [pool.submit(drain) for _ in range(min(width, len(shas)))]:
            running.result()


def _keep(sha: str, content: str, encoding: str) -> bytes:
    data = base64.b64decode(content) if encoding == "base64" else content.encode()
    CACHES.blobs.put(sha, data, len(data))
    return data


def blob(repo: Repository, sha: str) -> bytes:
    """A blob's contents, from the cache or one request."""
    hit, data = CACHES.blobs.get(sha)
    if hit and data is not None:
        return data
    found = repo.get_git_blob(sha)
    return _keep(sha, found.content, found.encoding)


def _file(item: Any) -> _File:
    status = _STATUS.get(item.status, FileStatus.MODIFIED)
    old = item.previous_filename if status is FileStatus.RENAMED else None
    return _File(item.filename, status, item.sha, old)
