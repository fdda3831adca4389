"""ruff and mypy are part of the test run: a lint failure is a failing test."""

from __future__ import annotations

import subprocess
import sys

from support import REPO_ROOT


def run_tool(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_is_clean() -> None:
    proc = run_tool("ruff", "check", "bot", "tests", "bench")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_is_clean() -> None:
    proc = run_tool("mypy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
