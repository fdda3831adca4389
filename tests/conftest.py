"""Fixtures shared by every test directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from standins import contract
from support import WorkTreeRepo


@pytest.fixture
def git_repo(tmp_path: Path) -> WorkTreeRepo:
    return WorkTreeRepo(tmp_path / "repo")


@pytest.fixture(autouse=True)
def _stand_ins_refuse_what_the_real_apis_refuse() -> Iterator[None]:
    """Fail the test during which a stand-in received a request that GitHub's or Slack's
    published API description rules out (see `standins/contract.py`)."""
    before = len(contract.VIOLATIONS)
    yield
    refused = contract.VIOLATIONS[before:]
    if refused:
        pytest.fail("a stand-in received requests the real API refuses:\n" + "\n".join(refused))
