"""GitLab deploy gates: a pipeline whose deploy job waits as a manual job (played once
approved), a `blocked` deployment (Premium: approved or rejected through the deployment
approvals API), and deployments that started without asking (audited)."""

from __future__ import annotations

import logging
import re
from typing import Any

from gitlab.exceptions import GitlabError

from bot.change import Change
from bot.forges import DeployKind, Deployment, DeploymentGone, DeployTarget, Work, common
from bot.forges.gitlab.client import GitLabApi
from bot.forges.work import DEPLOYMENT_GONE_STATUSES

log = logging.getLogger(__name__)

DEPLOYMENT_GATE_STATUSES = frozenset({"created", "blocked", "running"})


def pipeline(api: GitLabApi, payload: dict[str, Any], path: str, subject: str) -> Work:
    """A pipeline whose deploy job waits as a manual job: gate it (play it once approved)."""
    attrs = payload.get("object_attributes") or {}
    builds = gated_builds(payload)
    if not builds:
        return Work("ignore", subject, reason="pipeline has no manual deploy job waiting")
    sha = str(attrs.get("sha") or "")
    if not re.fullmatch(r"[0-9a-f]{40}", sha):
        return Work("ignore", subject, reason="pipeline payload has no full commit SHA")
    first = builds[0]
    commit = payload.get("commit") or {}
    change = Change(
        repo=path,
        base=None,
        head=sha,
        forge="gitlab",
        author=(payload.get("user") or {}).get("username"),
        description=str(commit.get("message") or ""),
        title=f"deploy to {first['environment']}",
        environment=first["environment"],
    )
    pipeline = attrs.get("id")
    target = DeployTarget(  # the manual jobs that deploy to the first job's environment
        DeployKind.MANUAL_JOB,
        job_ids=tuple(int(b["id"]) for b in builds if b["environment"] == first["environment"]),
        pipeline_id=int(pipeline) if isinstance(pipeline, int) else None,
    )
    initiators = _deploy_initiators(
        api, path, sha, [payload.get("user"), *(b.get("user") for b in builds)]
    )
    deployment = Deployment(first["environment"], target, initiators)
    return Work("deployment-gate", subject, change, event="Pipeline Hook", deployment=deployment)


def _deploy_initiators(
    api: GitLabApi, path: str, sha: str, users: list[Any]
) -> tuple[tuple[str, str], ...]:
    """Everyone behind a deploy: the pipeline's, job's and deployment's users, and the
    authors of the merge requests of the deployed SHA. None of them may approve it."""
    names = [str(u.get("username") or "") for u in users if isinstance(u, dict)]
    for mr in api.project(path).commits.get(sha, lazy=True).merge_requests():
        if isinstance(mr, dict):
            names.append(str((mr.get("author") or {}).get("username") or ""))
    return common.initiators("gitlab", names)


def deployment(api: GitLabApi, payload: dict[str, Any], path: str, subject: str) -> Work:
    """A deployment that is created, blocked (Premium approvals) or running.

    The payload carries only `short_sha`: the deployment is fetched for the full SHA.
    `running` means the job already started; the workflow decides whether that start
    had its approval (audit) — nothing can hold it any more.
    """
    status = str(payload.get("status") or "")
    if status not in DEPLOYMENT_GATE_STATUSES:
        return Work("ignore", subject, reason=f"deployment {status}: nothing to gate")
    dep_id = payload.get("deployment_id")
    if not isinstance(dep_id, int):
        return Work("ignore", subject, reason="deployment payload has no deployment_id")
    deployment = api.project(path).deployments.get(dep_id)
    sha = str(deployment.sha)
    short = str(payload.get("short_sha") or "")
    if short and not sha.startswith(short):
        return Work("ignore", subject, reason=f"deployment {dep_id} is not at {short}")
    env = (deployment.environment or {}).get("name") or str(payload.get("environment") or "")
    deployable = getattr(deployment, "deployable", None) or {}
    job_id = deployable.get("id") or payload.get("deployable_id")
    change = Change(
        repo=path,
        base=None,
        head=sha,
        forge="gitlab",
        author=(deployment.user or {}).get("username")
        or (payload.get("user") or {}).get("username"),
        description=str(payload.get("commit_title") or ""),
        title=f"deploy to {env}",
        environment=env,
    )
    target = DeployTarget(
        DeployKind.APPROVAL if deployment.status == "blocked" else DeployKind.STARTED,
        deployment_id=dep_id,
        job_ids=(int(job_id),) if isinstance(job_id, int) else (),
    )
    initiators = _deploy_initiators(
        api, path, sha, [deployment.user, payload.get("user"), deployable.get("user")]
    )
    status = str(deployment.status)
    gated = Deployment(env, target, initiators, status=status)
    return Work("deployment-gate", subject, change, event="Deployment Hook", deployment=gated)


# -- deploy gates ----------------------------------------------------------------------
def answer_deployment(
    api: GitLabApi, repo: str, environment: str, target: DeployTarget, approved: bool, comment: str
) -> tuple[int, ...]:
    """Approve or reject a `blocked` deployment (Premium; recorded against the bot
    user), or play the manual deploy jobs once approved (a rejected one stays unplayed)."""
    try:
        if target.kind is DeployKind.APPROVAL and target.deployment_id is not None:
            deployment = api.project(repo).deployments.get(target.deployment_id, lazy=True)
            deployment.approval("approved" if approved else "rejected", comment=comment[:1000])
            return ()
        if target.kind is not DeployKind.MANUAL_JOB:
            raise ValueError(f"GitLab cannot answer a {target.kind} deployment")
        if not approved:
            log.info("%s: manual deploy to %s stays unplayed: %s", repo, environment, comment)
            return ()
        for job_id in target.job_ids:
            play_job(api, repo, job_id)
    except GitlabError as exc:
        if exc.response_code in DEPLOYMENT_GONE_STATUSES:
            raise DeploymentGone(exc.response_code, exc.error_message) from exc
        raise
    return target.job_ids


def play_job(api: GitLabApi, repo: str, job_id: int) -> None:
    """Start a manual job once its deployment is approved."""
    api.project(repo).jobs.get(int(job_id), lazy=True).play()


def gated_builds(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Manual jobs that deploy (environment action `start`) and wait to be played."""
    out = []
    for build in payload.get("builds") or []:
        env = build.get("environment") or {}
        name = env.get("name")
        if (
            name
            and env.get("action", "start") == "start"
            and build.get("status") == "manual"
            and isinstance(build.get("id"), int)
        ):
            out.append({**build, "environment": str(name)})
    return sorted(out, key=lambda b: b["id"])
