"""GitHub deployment protection rules: a workflow run asks changegate whether it may
deploy to an environment, and is answered through the run's protection-rule endpoint."""

from __future__ import annotations

import re
from typing import Any

from github.GithubException import GithubException

from bot.change import Change
from bot.forges import DeployKind, Deployment, DeploymentGone, DeployTarget, Work, common
from bot.forges.github.client import GitHubApi
from bot.forges.work import DEPLOYMENT_GONE_STATUSES

_CALLBACK = re.compile(
    r"/repos/(?P<repo>[^/]+/[^/]+)/actions/runs/(?P<run>\d+)/deployment_protection_rule/?$"
)


def deployment_gate(api: GitHubApi, payload: dict[str, Any], repo: str, subject: str) -> Work:
    """A deployment protection rule asks for a decision. The callback URL only yields
    the run id (checked against the repository); the answer is sent to the API URL."""
    environment = str(payload.get("environment") or "")
    callback = str(payload.get("deployment_callback_url") or "")
    match = _CALLBACK.search(callback.split("?", 1)[0])
    if not environment or match is None or match["repo"].lower() != repo.lower():
        return Work("ignore", subject, reason="deployment_protection_rule: bad callback URL")
    deployment = payload.get("deployment") or {}
    sha = str(deployment.get("sha") or "")
    change = Change(
        repo=repo,
        base=None,
        head=sha,
        forge="github",
        author=(deployment.get("creator") or {}).get("login"),
        description=str(deployment.get("description") or ""),
        title=f"deploy to {environment}",
        environment=environment,
    )
    run_id = int(match["run"])
    target = DeployTarget(DeployKind.PROTECTION_RULE, run_id=run_id)
    try:
        initiators = _deploy_initiators(api, repo, run_id, sha, payload)
        deployment = Deployment(environment, target, initiators)
    except GithubException as exc:
        if exc.status not in (403, 404):
            raise  # retried with the delivery
        # fail closed: without knowing who started it, nobody's approval can be trusted
        unreadable = f"cannot read workflow run {run_id} ({exc.status})"
        deployment = Deployment(environment, target, unreadable=unreadable)
    return Work(
        "deployment-gate",
        subject,
        change,
        event="deployment_protection_rule",
        deployment=deployment,
    )


def _deploy_initiators(
    api: GitHubApi, repo: str, run_id: int, sha: str, payload: dict[str, Any]
) -> tuple[tuple[str, str], ...]:
    """Everyone behind a deployment, not only its creator (often `github-actions[bot]`):
    the workflow run's actor and triggering actor, and the authors of the pull requests
    of the deployed SHA. None of them may approve it."""
    logins: list[str] = [str((payload.get("deployment") or {}).get("creator", {}).get("login")
                             or "")]  # fmt: skip
    gh_repo = api.repo(repo)
    run = gh_repo.get_workflow_run(run_id)
    logins += [u.login for u in (run.actor, run.triggering_actor) if u is not None]
    logins += [str((p.get("user") or {}).get("login") or "")
               for p in payload.get("pull_requests") or [] if isinstance(p, dict)]  # fmt: skip
    if re.fullmatch(r"[0-9a-f]{40}", sha):
        logins += [p.user.login for p in gh_repo.get_commit(sha).get_pulls() if p.user]
    return common.initiators("github", logins)


def answer_deployment(
    api: GitHubApi, repo: str, environment: str, target: DeployTarget, approved: bool, comment: str
) -> tuple[int, ...]:
    """Approve or reject a workflow run waiting on our protection rule."""
    if target.kind is not DeployKind.PROTECTION_RULE or target.run_id is None:
        raise ValueError(f"GitHub cannot answer a {target.kind} deployment")
    gh_repo = api.repo(repo)
    try:
        gh_repo.requester.requestJsonAndCheck(
            "POST",
            f"{gh_repo.url}/actions/runs/{int(target.run_id)}/deployment_protection_rule",
            input={
                "environment_name": environment,
                "state": "approved" if approved else "rejected",
                "comment": comment[:1024],
            },
        )
    except GithubException as exc:
        if exc.status in DEPLOYMENT_GONE_STATUSES:
            raise DeploymentGone(exc.status, exc.data) from exc
        raise
    return ()
