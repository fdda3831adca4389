"""Reading a pull request's files ahead: bounded concurrent blob requests, counted at the
stand-in (bot/forges/github/files.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.forges import Delivery
from bot.forges.github import GitHubForge, GitHubOptions, clear_caches
from bot.forges.github.files import GitHubView

from standins.github import GitHubStandIn
from standins.gitrepo import GitRepo

FILES = 16
LATENCY = 0.3  # long beside the stand-in's own work, even on a loaded machine


def _view(forge: GitHubForge, github: GitHubStandIn, repo: GitRepo) -> GitHubView:
    files = {f"deploy/app-{i}.yaml": f"replicas: {i}\n" for i in range(FILES)}
    repo.commit("feature", files, "many files")
    number = github.open_pull("acme/app", "feature").number
    body, headers = GitHubStandIn.webhook(
        "pull_request", github.pull_request_payload("acme/app", number), "s", delivery="d"
    )
    work = forge.parse(Delivery("d", "github", "pull_request", body, headers))
    assert work.change is not None
    view = forge.view(work.change)
    view.changed_files()  # the listing: not what is measured
    return view


def _blobs(github: GitHubStandIn) -> int:
    return len(github.calls("GET", "/git/blobs/"))


def test_prefetch_reads_each_file_once_with_requests_in_flight_together(
    forge: GitHubForge, github: GitHubStandIn, make_repo: Callable[..., GitRepo]
) -> None:
    view = _view(forge, github, make_repo())
    paths = [f"deploy/app-{i}.yaml" for i in range(FILES)]
    github.latency = LATENCY
    try:
        started = time.monotonic()
        view.prefetch([*paths, "not/changed.yaml"])
        took = time.monotonic() - started
    finally:
        github.latency = 0.0
    assert _blobs(github) == FILES
    assert took < FILES * LATENCY / 2  # eight at a time: about FILES / 8 round trips
    assert [view.read(p) for p in paths] == [f"replicas: {i}\n".encode() for i in range(FILES)]
    assert _blobs(github) == FILES  # read from the cache
    view.prefetch(paths)
    assert _blobs(github) == FILES  # nothing left to fetch


def test_one_read_at_a_time_is_todays_reading(
    github: GitHubStandIn, app_key: tuple[str, str], make_repo: Callable[..., GitRepo]
) -> None:
    clear_caches()
    options = GitHubOptions(throttle=False, max_concurrent_reads=1)
    forge = GitHubForge(github.app_id, app_key[0], github.url, options)
    view = _view(forge, github, make_repo())
    view.prefetch([f"deploy/app-{i}.yaml" for i in range(FILES)])
    assert _blobs(github) == 0  # nothing ahead: each file is read when a rule asks
    assert view.read("deploy/app-3.yaml") == b"replicas: 3\n"
    assert _blobs(github) == 1
