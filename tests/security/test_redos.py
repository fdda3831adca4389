"""ReDoS: a repository's `link_pattern: '(x+x+)+y'` and a 40-character description held
the whole process (the GIL) for hours, webhook answers included. The real server runs
in a subprocess here, so the test itself keeps its clock: the server must keep
answering, and the verdict must come."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e.conftest import APP_ID, GITHUB_SECRET, POLICY, REPO, wait_for

from standins.github import GitHubStandIn
from standins.gitrepo import GitRepo
from support import REPO_ROOT

EVIL = "version: 1\nrules:\n  - id: evil-playbook\n    kind: migration-playbook\n" \
       "    action: block\n    paths: ['db/**']\n    options: {link_pattern: '(x+x+)+y'}\n"  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path, app_key: tuple[Path, str], github: GitHubStandIn) -> Iterator[str]:
    """`changegate serve` in its own process, against the GitHub stand-in."""
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "CHANGEGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'changegate.db'}",
        "CHANGEGATE_POLICY": str(policy),
        "CHANGEGATE_PUBLIC_URL": "https://changegate.example.com",
        "CHANGEGATE_GITHUB_APP_ID": str(APP_ID),
        "CHANGEGATE_GITHUB_PRIVATE_KEY_PATH": str(app_key[0]),
        "CHANGEGATE_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
        "CHANGEGATE_GITHUB_API_URL": github.url,
        "CHANGEGATE_GITHUB_THROTTLE": "false",
        "CHANGEGATE_WORKER_COUNT": "2",
        "CHANGEGATE_POLL_INTERVAL_SECONDS": "0.05",
        "CHANGEGATE_POLICY_RELOAD_SECONDS": "0",
        "CHANGEGATE_APPROVALS_TICK_SECONDS": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            return False

        wait_for(up, 90, "the server to start")  # a loaded 2-core machine: slow to start
        yield url
    finally:
        process.kill()
        process.wait(10)


def test_redos_link_pattern_in_repository_policy_does_not_freeze_the_server(
    server: str, github: GitHubStandIn, repo: GitRepo
) -> None:
    repo.commit("main", {".changegate.yml": EVIL}, "a repository rule")
    head = repo.commit("change", {"db/migrate/001.sql": "select 1;\n"}, "a migration")
    pull = github.open_pull(REPO, head="change", author="bob", body="x" * 40)
    body, headers = github.webhook(
        "pull_request", github.pull_request_payload(REPO, pull.number), GITHUB_SECRET
    )
    with httpx.Client(timeout=5) as http:
        assert (
            http.post(f"{server}/webhooks/github", content=body, headers=headers).status_code == 202
        )

        def judged() -> str | None:
            runs = [r for r in github.runs_for(REPO, head) if r.status == "completed"]
            return runs[-1].conclusion if runs else None

        assert wait_for(judged, 20, "the verdict") == "failure"
        # the process still answers: another webhook, and the health check
        again = github.pull_request_payload(REPO, pull.number, "edited")
        body, headers = github.webhook("pull_request", again, GITHUB_SECRET)
        assert (
            http.post(f"{server}/webhooks/github", content=body, headers=headers).status_code == 202
        )
        assert http.get(f"{server}/healthz").text == "ok"
    run = [r for r in github.runs_for(REPO, head) if r.status == "completed"][-1]
    assert any(a["path"] == "db/migrate/001.sql" for a in run.annotations)
    assert "links no playbook" in str(run.annotations)
