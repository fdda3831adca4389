"""Fixtures shared by every test directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import WorkTreeRepo


@pytest.fixture
def git_repo(tmp_path: Path) -> WorkTreeRepo:
    return WorkTreeRepo(tmp_path / "repo")
