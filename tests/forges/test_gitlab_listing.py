"""Merge requests over GitLab's diff limits are read from their trees (the routine GitHub
shares, bot/forges/treediff.py), within a bounded number of requests; a change that cannot
be listed whole fails. Through the real python-gitlab against the stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_gitlab import BASE_FILES, PATH, TOKEN, check, deliver

from bot.change import ChangedFile, Decision, FileStatus
from bot.forges.gitlab import GitLabForge, GitLabOptions, clear_caches
from bot.forges.treediff import Budget

from standins.gitlab import GitLabStandIn
from standins.gitrepo import GitRepo


@pytest.fixture
def small_limits() -> Iterator[GitLabStandIn]:
    """A GitLab whose instance diff limit is 3 files."""
    with GitLabStandIn(token=TOKEN, max_diff_files=3) as server:
        clear_caches()
        yield server


def big_mr(server: GitLabStandIn, tmp_path: Path) -> int:
    git = GitRepo(tmp_path / "big.git")
    unchanged = {f"static/s{i:04}.txt": "same\n" for i in range(1000)}
    git.commit("main", {**BASE_FILES, **unchanged}, "initial")
    server.add_project(PATH, git)
    files: dict[str, str | bytes | None] = {f"src/d{i % 4}/m{i}.py": f"x = {i}\n" for i in range(8)}
    files["db/migrate/001_init.rb"] = "create_table :t\n"
    files["README.md"] = None
    git.commit("big", files, "Big change")
    return server.open_mr(PATH, "big").iid


def test_a_diff_over_the_limit_walks_only_the_subtrees_that_differ(
    small_limits: GitLabStandIn, tmp_path: Path
) -> None:
    server = small_limits
    # 20 requests: a recursive tree may take 5 pages, so the 1,000-file tree is walked
    forge = GitLabForge(
        server.url, TOKEN, GitLabOptions(listing_budget=lambda: Budget(max_requests=20))
    )
    iid = big_mr(server, tmp_path)
    work = deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid))
    assert work.change is not None
    view = forge.view(work.change)

    changed = view.changed_files()

    assert len(changed) == 10
    assert ChangedFile("README.md", FileStatus.DELETED) in changed
    assert ChangedFile("db/migrate/001_init.rb", FileStatus.ADDED) in changed
    assert view.unlisted() is None
    walked = [c.query for c in server.calls("GET", r"/repository/tree$")]
    assert not any("path=static" in q for q in walked), walked  # same tree id: not read
    assert check(forge, work).decision is Decision.FAIL


def test_a_diff_that_cannot_be_listed_within_the_budget_fails(
    small_limits: GitLabStandIn, tmp_path: Path
) -> None:
    server = small_limits
    forge = GitLabForge(
        server.url, TOKEN, GitLabOptions(listing_budget=lambda: Budget(max_requests=3))
    )
    iid = big_mr(server, tmp_path)
    work = deliver(forge, "Merge Request Hook", server.merge_request_payload(PATH, iid))
    assert work.change is not None

    verdict = check(forge, work)

    assert verdict.decision is Decision.FAIL
    [finding] = [f for f in verdict.findings if f.rule == "changegate"]
    assert (finding.kind, finding.path) == ("incomplete-change", "")
    assert "more than 3 API requests" in finding.message
    assert len(server.calls("GET", r"/repository/tree$")) <= 3
