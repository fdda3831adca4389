"""Fixtures of the first-run tests: the GitHub stand-in, and a server that has never
seen a GitHub setting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pages.test_browser import browser  # noqa: F401 - the page tests' Chromium fixture

from bot.forges.github import clear_caches

from .harness import FirstRun, first_run, standin
from standins.github import GitHubStandIn


@pytest.fixture
def github() -> Iterator[GitHubStandIn]:
    clear_caches()
    with standin() as server:
        yield server


@pytest.fixture
def fresh(tmp_path: Path, github: GitHubStandIn) -> Iterator[FirstRun]:
    yield from first_run(tmp_path, github)
