"""Fixtures for forge tests: an App key pair, the GitHub stand-in, and a forge pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.forges.github import GitHubForge, GitHubOptions, clear_caches

from standins.github import GitHubStandIn, app_key_pair
from standins.gitrepo import GitRepo

APP_ID = 4242


@pytest.fixture(scope="session")
def app_key() -> tuple[str, str]:
    """(private PEM, public PEM) of the test App, generated once per session."""
    return app_key_pair()


@pytest.fixture(scope="session")
def github_server(app_key: tuple[str, str]) -> Iterator[GitHubStandIn]:
    with GitHubStandIn(APP_ID, app_key[1]) as standin:
        yield standin


@pytest.fixture
def github(github_server: GitHubStandIn) -> GitHubStandIn:
    """The stand-in, emptied: every test starts from a GitHub with nothing on it."""
    github_server.reset()
    return github_server


@pytest.fixture
def forge(github: GitHubStandIn, app_key: tuple[str, str]) -> GitHubForge:
    clear_caches()
    return GitHubForge(
        APP_ID, app_key[0], github.url, GitHubOptions(throttle=False, backoff_factor=0.001)
    )


@pytest.fixture
def make_repo(tmp_path: Path, github: GitHubStandIn) -> Callable[..., GitRepo]:
    """Create a real git repository served by the stand-in as `acme/<name>`."""

    def make(name: str = "app", files: dict[str, str | bytes | None] | None = None) -> GitRepo:
        repo = GitRepo(tmp_path / f"{name}.git")
        repo.commit("main", files or {"README.md": "# app\n"}, "initial commit")
        github.add_repo(f"acme/{name}", repo, installation_id=1)
        return repo

    return make
