"""GitLab: re-check open merge requests whose head has no `changegate` status (GitLab
keeps no delivery log to ask), by storing a synthetic merge request delivery."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot import inbox
from bot.forges import Delivery
from bot.forges.gitlab import STATUS_NAME
from bot.redelivery.rounds import (
    REDELIVERIES,
    REDELIVERY_ERRORS,
    SYNTHETIC_EVENT,
    RedeliveryReport,
    aware,
    job_lock,
    reading,
)
from bot.store import deliveries as T

log = logging.getLogger(__name__)


def reconcile_open_mrs(forge: Any, engine: Engine, projects: Iterable[str]) -> RedeliveryReport:
    """Queue a re-check of every open merge request of `projects` whose head commit has no
    `changegate` status and none of whose deliveries is waiting in the inbox. `forge` is a
    `GitLabForge`; projects are full paths (or ids)."""
    report = RedeliveryReport()
    with job_lock(engine) as held:
        if not held:
            report.skipped = True
            return report
        for path in projects:
            try:
                info = forge.project_info(path)
                project = forge.project(info.id)
                missing = []
                for mr in project.mergerequests.list(state="opened", iterator=True):
                    report.listed += 1
                    statuses = project.commits.get(mr.sha, lazy=True).statuses.list(
                        name=STATUS_NAME, get_all=True
                    )
                    if not any(s.name == STATUS_NAME for s in statuses):
                        missing.append(mr)
            except Exception as exc:  # noqa: BLE001 - one project must not stop the round
                REDELIVERY_ERRORS.labels("gitlab").inc()
                report.errors.append(f"{path}: {type(exc).__name__}: {exc}")
                log.warning("cannot reconcile GitLab project %s: %s", path, exc)
                continue
            subjects = {f"gitlab:{info.path}!{mr.iid}": mr for mr in missing}
            busy = _waiting_subjects(engine, list(subjects))
            for subject, mr in subjects.items():
                name = f"{info.path}!{mr.iid}"
                report.failed.append(name)
                if subject in busy:
                    report.in_inbox.append(name)
                    continue
                delivery = synthetic_mr_delivery(info.id, info.path, info.default_branch, mr)
                if inbox.store(engine, delivery, subject):
                    REDELIVERIES.labels("gitlab").inc()
                    report.requested.append(name)
                    log.info("%s@%s has no changegate status: re-check queued", name, mr.sha[:12])
                else:
                    report.in_inbox.append(name)  # queued for this head before
    return report


def synthetic_mr_delivery(
    project_id: int, path: str, default_branch: str | None, mr: Any
) -> Delivery:
    """A minimal `Merge Request Hook` that the GitLab forge evaluates like a webhook (it
    asks the API for the merge request as it is now, so the payload carries ids only)."""
    payload = {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "changegate_reconcile": True,
        "project": {
            "id": project_id,
            "path_with_namespace": path,
            "default_branch": default_branch,
        },
        "object_attributes": {
            "iid": int(mr.iid),
            "action": "update",
            "state": "opened",
            "target_project_id": project_id,
            "last_commit": {"id": mr.sha},
        },
    }
    return Delivery(
        id=f"reconcile:{project_id}!{int(mr.iid)}@{mr.sha}",
        forge="gitlab",
        event=SYNTHETIC_EVENT,
        body=json.dumps(payload).encode(),
        headers={"x-gitlab-event": SYNTHETIC_EVENT, "user-agent": "changegate-reconcile"},
    )


def recent_gitlab_projects(engine: Engine, since: dt.datetime) -> list[str]:
    """Project paths the inbox heard of since `since` (from delivery subjects): the
    projects whose webhooks reach this server, hence the ones worth reconciling."""
    since = aware(since).astimezone(dt.UTC).replace(tzinfo=None)  # columns hold naive UTC
    with reading(engine) as conn:
        subjects = conn.execute(
            sa.select(T.c.subject)
            .where(T.c.forge == "gitlab", T.c.subject != "", T.c.received_at >= since)
            .distinct()
        ).scalars()
        paths = {m.group(1) for s in subjects if (m := _GITLAB_SUBJECT.match(s))}
    return sorted(paths)


_GITLAB_SUBJECT = re.compile(r"^gitlab:(.+?)(?:!\d+|@.*|/pipelines/\d+)?$")


def _waiting_subjects(engine: Engine, subjects: Sequence[str]) -> set[str]:
    if not subjects:
        return set()
    with reading(engine) as conn:
        return set(
            conn.execute(
                sa.select(T.c.subject).where(
                    T.c.subject.in_(list(subjects)),
                    T.c.state.in_([inbox.QUEUED, inbox.PROCESSING]),
                )
            ).scalars()
        )
