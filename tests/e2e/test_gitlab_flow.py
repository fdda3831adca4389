"""Merge requests through the real server and the GitLab stand-in (python-gitlab), with
the same policy file that governs the GitHub repository in the same run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bot.store import deliveries

from .conftest import GITLAB_SECRET, PROJECT, REPO, Harness, manifest, wait_for
from standins.gitrepo import GitRepo

MIGRATION = "db/migrate/20240503_ledger_index.rb"


def project(harness: Harness, tmp_path: Path, branch: str, files: dict[str, str]) -> str:
    """`acme/platform/app` with one branch of changes; returns the branch head."""
    git = GitRepo(tmp_path / "gl.git")
    git.commit(
        "main",
        {
            "deploy/production/app.yaml": manifest(),
            "deploy/staging/app.yaml": manifest(),
            "docs/playbooks/ledger.md": "# Ledger index\n1. Pause the writers\n",
        },
        "initial",
    )
    head = git.commit(branch, files, "the change")
    harness.gitlab.add_project(PROJECT, git)
    return head


def status(harness: Harness, head: str, state: str) -> Any:
    found = harness.gitlab.statuses_for(PROJECT, head, name="changegate")
    return found[-1] if found and found[-1].state == state else None


def test_migration_without_playbook_fails_with_one_note_then_the_link_turns_it_green(
    harness: Harness, tmp_path: Path
) -> None:
    head = project(harness, tmp_path, "ledger", {MIGRATION: "class LedgerIndex; end\n"})
    mr = harness.gitlab.open_mr(PROJECT, "ledger", title="Ledger index", author="bob")
    payload = harness.gitlab.merge_request_payload(PROJECT, mr.iid)
    body, headers = harness.gitlab.webhook(
        "Merge Request Hook", payload, GITLAB_SECRET, idempotency_key="mr-open-1"
    )
    assert harness.post("/webhooks/gitlab", body, headers).status_code == 202
    assert harness.post("/webhooks/gitlab", body, headers).status_code == 200  # same key

    failed = wait_for(lambda: status(harness, head, "failed"), what="the failed status")
    assert failed.target_url.startswith("https://changegate.example.com/v/")  # public URL
    harness.settled()
    with harness.engine.connect() as conn:  # the second delivery was not stored again
        stored = conn.execute(
            sa.select(sa.func.count()).where(deliveries.c.forge == "gitlab")
        ).scalar()
    assert stored == 1
    assert failed.history == ["running", "failed"]  # processed once
    [note] = harness.gitlab.notes_of(PROJECT, mr.iid)
    assert "migration-playbook" in note.body and MIGRATION in note.body

    harness.gitlab.edit_mr(PROJECT, mr.iid, description="Run with docs/playbooks/ledger.md")
    update = harness.gitlab.merge_request_payload(PROJECT, mr.iid, "update")
    harness.send_gitlab("Merge Request Hook", update)
    wait_for(lambda: status(harness, head, "success"), what="the success status")
    harness.settled()
    [edited] = harness.gitlab.notes_of(PROJECT, mr.iid)
    assert edited.id == note.id  # the same note, edited in place
    assert "migration-playbook" not in edited.body


def test_a_bad_or_missing_token_is_refused_and_nothing_is_stored(
    harness: Harness, tmp_path: Path
) -> None:
    project(harness, tmp_path, "x", {"README.md": "x\n"})
    mr = harness.gitlab.open_mr(PROJECT, "x")
    payload = harness.gitlab.merge_request_payload(PROJECT, mr.iid)
    body, headers = harness.gitlab.webhook("Merge Request Hook", payload, "not the secret")
    assert harness.post("/webhooks/gitlab", body, headers).status_code == 401
    del headers["X-Gitlab-Token"]
    assert harness.post("/webhooks/gitlab", body, headers).status_code == 401
    with harness.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar() == 0


def test_one_policy_blocks_an_unpinned_image_on_github_and_on_gitlab(
    harness: Harness, repo: GitRepo, tmp_path: Path
) -> None:
    latest = {"deploy/staging/app.yaml": manifest("nginx:latest")}
    gl_head = project(harness, tmp_path, "latest", latest)
    mr = harness.gitlab.open_mr(PROJECT, "latest", author="bob")
    harness.send_gitlab("Merge Request Hook", harness.gitlab.merge_request_payload(PROJECT, mr.iid))
    gh_head = repo.commit("latest", latest, "latest")
    pull = harness.github.open_pull(REPO, head="latest", author="bob")
    harness.send_github("pull_request", harness.github.pull_request_payload(REPO, pull.number))

    run = harness.completed_run(gh_head, "failure")
    assert [a["start_line"] for a in run.annotations] == [11]
    failed = wait_for(lambda: status(harness, gl_head, "failed"), what="the GitLab status")
    assert failed.description == "1 blocking finding"
