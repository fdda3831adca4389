"""Deploy requests as GitHub and GitLab send them, for the deploy-gate tests (e2e and
security): build one, send it through the real server, read the gate's answers."""

from __future__ import annotations

import itertools
from typing import Any

from e2e.conftest import PROJECT, REPO, Harness

from standins.gitlab import GitLabStandIn
from standins.gitrepo import GitRepo

_runs = itertools.count(9000)


def protection_rule(harness: Harness, sha: str, environment: str, creator: str = "bob",
                    actor: str | None = None, triggering_actor: str | None = None,
                    ) -> tuple[dict[str, Any], int]:  # fmt: skip
    """A `deployment_protection_rule` event as GitHub sends it (webhook reference), for a
    deployment that a workflow run started by `actor` (default: `creator`) created."""
    run_id = next(_runs)
    harness.github.add_workflow_run(REPO, run_id, sha, actor or creator, triggering_actor)
    api = harness.github.url
    payload = {
        "action": "requested",
        "environment": environment,
        "event": "push",
        "deployment_callback_url": f"{api}/repos/{REPO}/actions/runs/{run_id}/"
        "deployment_protection_rule",
        "deployment": {
            "url": f"{api}/repos/{REPO}/deployments/{run_id}",
            "id": run_id,
            "sha": sha,
            "ref": "main",
            "task": "deploy",
            "environment": environment,
            "description": None,
            "creator": {"login": creator, "id": 77, "type": "User"},
            "created_at": "2024-06-03T09:00:00Z",
        },
        "repository": {
            "id": 1,
            "name": "app",
            "full_name": REPO,
            "default_branch": "main",
            "private": True,
        },
        "installation": {"id": 1},
        "sender": {"login": creator, "id": 77, "type": "User"},
    }
    return payload, run_id


def answers(harness: Harness, run_id: int) -> list[dict[str, Any]]:
    return [a for a in harness.github.gate_answers if a["run_id"] == run_id]


def request_deploy(harness: Harness, sha: str, environment: str) -> int:
    """Send a `deployment_protection_rule` event (see `protection_rule`); its run id."""
    payload, run_id = protection_rule(harness, sha, environment)
    harness.send_github("deployment_protection_rule", payload)
    return run_id


def main_head(repo: GitRepo) -> str:
    sha = repo.branch_sha("main")
    assert sha is not None
    return sha


def pipeline_payload(gitlab: GitLabStandIn, sha: str, job_id: int, user: str = "dana"
                     ) -> dict[str, Any]:  # fmt: skip
    """A `Pipeline Hook` whose production deploy job waits as a manual job (GitLab's
    documented pipeline event example)."""
    project = gitlab.project(PROJECT)
    hook_user = {"id": 51, "name": user.title(), "username": user, "avatar_url": None,
                 "email": "[REDACTED]"}  # fmt: skip
    return {
        "object_kind": "pipeline",
        "object_attributes": {
            "id": 31,
            "iid": 3,
            "ref": "main",
            "tag": False,
            "sha": sha,
            "source": "push",
            "status": "manual",
            "stages": ["test", "deploy"],
            "url": f"https://gitlab.example.com/{PROJECT}/-/pipelines/31",
        },
        "merge_request": None,
        "user": hook_user,
        "project": {
            "id": project.id,
            "name": "app",
            "web_url": f"https://gitlab.example.com/{PROJECT}",
            "path_with_namespace": PROJECT,
            "default_branch": "main",
        },
        "commit": {"id": sha, "message": "Ship it\n", "title": "Ship it"},
        "builds": [
            {
                "id": job_id,
                "stage": "deploy",
                "name": "deploy-production",
                "status": "manual",
                "when": "manual",
                "manual": True,
                "user": hook_user,
                "environment": {
                    "name": "production",
                    "action": "start",
                    "deployment_tier": "production",
                },  # fmt: skip
            },
            {
                "id": job_id - 1,
                "stage": "test",
                "name": "test",
                "status": "success",
                "user": hook_user,
                "environment": None,
            },  # fmt: skip
        ],
    }
