"""A GitLab merge request's or push's files, read lazily through the API.

API economy: file contents are fetched only when a rule reads them, one request per file
(the raw-file endpoint names the blob id in `X-Gitlab-Blob-Id`), and cached by blob id in a
bounded, process-wide LRU; path-to-blob lookups, trees and changed-file listings are cached
by the immutable commit SHAs they depend on. A re-run on the same head makes no content
requests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from gitlab.exceptions import GitlabHttpError

from bot.change import Change, ChangedFile, FileStatus
from bot.forges.common import Caches
from bot.forges.gitlab.client import GitLabApi
from bot.forges.treediff import Budget, Entry, ListingIncomplete, diff_trees
from bot.views.base import FileView

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # entries per page of a repository tree
DIFF_FILES_LIMIT = 1000  # GitLab's default `diff_max_files`: at or over it, a list may be cut


@dataclass(frozen=True)
class _Listing:
    files: tuple[ChangedFile, ...]
    unlisted: str | None = None  # why the change could not be listed whole


#: blob id -> contents, paths, trees and changed-file listings of GitLab
CACHES: Caches[tuple[ChangedFile, ...]] = Caches()


class GitLabFiles:
    """Files, trees and changed-file listings through the API and the caches."""

    def __init__(self, api: GitLabApi) -> None:
        self.api = api

    def read_at(self, repo: str, commit: str, path: str) -> bytes | None:
        """A file at a commit: blob id from cache or tree, else one raw-file request."""
        key = (self.api.url, repo.lower(), commit, path)
        known, blob = CACHES.paths.get(key)
        if not known:
            hit, tree = CACHES.trees.get((self.api.url, repo.lower(), commit))
            if hit and tree is not None:
                known, blob = True, tree.get(path)
                CACHES.paths.put(key, blob)
        if known:
            return None if blob is None else self.blob(repo, blob)
        try:
            response = self.api.gl.http_get(
                f"/projects/{self.api.encoded(repo)}/repository/files/{quote(path, safe='')}/raw",
                query_data={"ref": commit},
                raw=True,
            )
        except GitlabHttpError as exc:
            if exc.response_code == 404:
                CACHES.paths.put(key, None)
                return None
            raise
        assert isinstance(response, requests.Response)
        data = response.content
        blob = response.headers.get("X-Gitlab-Blob-Id")
        if blob:
            CACHES.blobs.put(blob, data, len(data))
            CACHES.paths.put(key, blob)
        return data

    def blob(self, repo: str, blob: str) -> bytes:
        hit, data = CACHES.blobs.get(blob)
        if hit and data is not None:
            return data
        raw = self.api.project(repo).repository_raw_blob(blob)
        data = bytes(raw)
        CACHES.blobs.put(blob, data, len(data))
        return data

    def tree(self, repo: str, commit: str) -> dict[str, str]:
        """{path: blob id} of every file at `commit` (submodules and trees left out)."""
        key = (self.api.url, repo.lower(), commit)
        hit, cached = CACHES.trees.get(key)
        if hit and cached is not None:
            return cached
        rows = self.api.project(repo).repository_tree(
            ref=commit, recursive=True, get_all=True, per_page=100
        )
        tree = {str(r["path"]): str(r["id"]) for r in rows if r.get("type") == "blob"}
        CACHES.trees.put(key, tree)
        return tree

    def changed(self, change: Change) -> tuple[ChangedFile, ...]:
        """Changed files of the MR (or of base..head for a push)."""
        return self.listing(change).files

    def listing(self, change: Change) -> _Listing:
        """Changed files of the MR (or of base..head for a push), complete however large,
        or as many as could be listed with the reason the rest could not."""
        if change.base is None:
            return _Listing(())
        key = (
            self.api.url,
            change.repo.lower(),
            str(change.number or ""),
            change.base,
            change.head,
        )
        hit, cached = CACHES.listings.get(key)
        if hit and cached is not None:
            return _Listing(cached)
        listed: list[ChangedFile] | None = None
        complete = False
        if change.number is not None:
            listed, complete = self._mr_changes(change)
        if listed is None:
            listed, complete = self._compare(change)
        if complete:
            listing = _Listing(tuple(sorted(listed, key=_by_path)))
        else:
            listing = self._tree_diff(change, listed)
        if listing.unlisted is None:  # a listing cut by the budget may finish next time
            CACHES.listings.put(key, listing.files)
        return listing

    def _mr_changes(self, change: Change) -> tuple[list[ChangedFile] | None, bool]:
        """`/changes` and whether it is whole: GitLab cuts it (`overflow`, "1000+"). None
        when the MR moved on past our head."""
        assert change.base is not None and change.number is not None
        mr = self.api.project(change.repo).mergerequests.get(change.number, lazy=True)
        data = mr.changes()
        assert isinstance(data, dict)
        refs = data.get("diff_refs") or {}
        if refs.get("head_sha") != change.head or refs.get("base_sha") != change.base:
            return None, False  # the MR has a newer diff; the compare API answers for our range
        files = [_changed_file(d) for d in data.get("changes") or []]
        if data.get("overflow") or str(data.get("changes_count") or "").endswith("+"):
            log.info(
                "%s!%s: diff over GitLab's limits; listing by tree", change.repo, change.number
            )
            return files, False
        return files, True

    def _compare(self, change: Change) -> tuple[list[ChangedFile], bool]:
        assert change.base is not None
        data = self.api.project(change.repo).repository_compare(
            change.base, change.head, straight="true"
        )
        assert isinstance(data, dict)
        diffs = data.get("diffs") or []
        whole = not data.get("compare_timeout") and len(diffs) < DIFF_FILES_LIMIT
        return [_changed_file(d) for d in diffs], whole

    def _tree_diff(self, change: Change, listed: list[ChangedFile]) -> _Listing:
        """Changed files by comparing the two trees (`treediff`): exact, never truncated
        (renames show as a deletion and an addition), or the reason it could not finish."""
        assert change.base is not None
        trees = _GitLabTrees(self.api.project(change.repo))
        try:
            changes = diff_trees(trees, change.base, change.head, self.api.listing_budget())
        except ListingIncomplete as exc:
            log.warning("%s!%s: change not listed whole: %s", change.repo, change.number, exc)
            return _Listing(
                tuple(listed),
                unlisted="GitLab cut the diff at its limits, so changegate compared the git "
                f"trees of {change.base[:12]} and {change.head[:12]} instead, and could not "
                f"finish: {exc}",
            )
        return _Listing(tuple(ChangedFile(c.path, c.status) for c in changes))


class GitLabView(FileView):
    """A merge request's (or push's) files, read lazily through the forge's caches."""

    def __init__(self, files: GitLabFiles, change: Change) -> None:
        super().__init__(change)
        self._files = files
        self._listing: _Listing | None = None

    def _list(self) -> _Listing:
        if self._listing is None:  # once per view, even when it could not be listed whole
            self._listing = self._files.listing(self.change)
        return self._listing

    def changed_files(self) -> list[ChangedFile]:
        return list(self._list().files)

    def unlisted(self) -> str | None:
        return self._list().unlisted

    def read(self, path: str, rev: str = "head") -> bytes | None:
        commit = self.change.head if rev == "head" else self.change.base
        if commit is None:
            return None
        return self._files.read_at(self.change.repo, commit, path)

    def head_paths(self) -> list[str]:
        return sorted(self._files.tree(self.change.repo, self.change.head))


class _GitLabTrees:
    """Repository trees through the API, for `treediff`, every page charged to the budget.
    GitLab pages a recursive tree but never cuts it: past a quarter of the budget, the
    walk that reads only the subtrees that differ is cheaper."""

    def __init__(self, project: Any) -> None:
        self.project = project

    def _rows(self, budget: Budget, limit: int | None, **query: Any) -> tuple[list[Any], bool]:
        """Page by page, one charged request each; cut (True) after `limit` pages."""
        rows: list[Any] = []
        page = 1
        while limit is None or page <= limit:
            budget.charge()
            found = self.project.repository_tree(
                page=page, per_page=PAGE_SIZE, get_all=False, **query
            )
            rows.extend(found)
            if len(found) < PAGE_SIZE:
                return rows, False
            page += 1
        return rows, True

    def whole(self, commit: str, budget: Budget) -> tuple[list[Entry], bool]:
        quarter = max(budget.max_requests // 4, 1)
        rows, cut = self._rows(budget, quarter, ref=commit, recursive=True)
        return [_entry(r) for r in rows], cut

    def level(self, commit: str, path: str, sha: str, budget: Budget) -> list[Entry]:
        query: dict[str, Any] = {"ref": commit}
        if path:
            query["path"] = path
        rows, _ = self._rows(budget, None, **query)
        return [_entry(r) for r in rows]


def _entry(row: dict[str, Any]) -> Entry:
    return Entry(str(row["path"]), str(row["type"]), str(row["id"]))


def _by_path(f: ChangedFile) -> str:
    return f.path


def _changed_file(diff: dict[str, Any]) -> ChangedFile:
    path = str(diff.get("new_path") or diff.get("old_path"))
    if diff.get("deleted_file"):
        return ChangedFile(str(diff.get("old_path") or path), FileStatus.DELETED)
    if diff.get("new_file"):
        return ChangedFile(path, FileStatus.ADDED)
    if diff.get("renamed_file"):
        return ChangedFile(path, FileStatus.RENAMED, str(diff.get("old_path")))
    return ChangedFile(path, FileStatus.MODIFIED)
