"""Issue 15.7: the suite's prerequisites are written down, and a missing one is named."""

from __future__ import annotations

from pathlib import Path

import npm_packages
import pytest

from payloads import octokit
from support import REPO_ROOT


def test_readme_lists_npm_beside_python_and_git() -> None:
    line = next(
        line
        for line in (REPO_ROOT / "README.md").read_text().splitlines()
        if "Python 3.11+" in line
    )
    assert "git" in line and "npm" in line


def test_without_npm_the_suite_says_it_needs_npm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHANGEGATE_OCTOKIT_EXAMPLES", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setattr(npm_packages, "CACHE", tmp_path / "cache")  # not the shared cache
    with pytest.raises(RuntimeError) as caught:
        octokit.package_dir()
    assert str(caught.value).startswith(
        f"the test suite needs npm (Node.js's package manager) to fetch {octokit.PACKAGE}: "
        "install npm (e.g. `apt-get install npm`)"
    )


def test_the_examples_are_the_pinned_version() -> None:
    import json

    package = json.loads((octokit.package_dir() / "package.json").read_text())
    assert (package["name"], package["version"]) == (octokit.PACKAGE, octokit.VERSION)
