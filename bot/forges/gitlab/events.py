"""GitLab webhooks to work: which merge request, push or deployment a delivery is about,
read as it is now through the API (a payload's head may be stale)."""

from __future__ import annotations

import re
from typing import Any

from gitlab.exceptions import GitlabError

from bot.change import Change
from bot.forges import RECHECK, Delivery, Work, common
from bot.forges.gitlab import deploys, merge_train
from bot.forges.gitlab.client import GitLabApi
from bot.forges.gitlab.deploys import gated_builds
from bot.forges.gitlab.statuses import NOTE_MARKER

RECHECK_COMMAND = "/changegate recheck"
ZERO_SHA = "0" * 40
MR_EVALUATE = frozenset(
    {"open", "update", "reopen", "approved", "unapproved", "approval", "unapproval"}
)
MR_IGNORE = frozenset({"merge", "close"})
_RECHECK = re.compile(rf"^\s*{re.escape(RECHECK_COMMAND)}\s*$", re.MULTILINE)


class GitLabNotReady(Exception):
    """The merge request's diff is still being computed; the inbox retries later."""


class GitLabEvents:
    """Deliveries to `Work`: the merge request, push or deployment each is about."""

    def __init__(self, api: GitLabApi) -> None:
        self.api = api

    def subject_of(self, delivery: Delivery) -> str:
        payload = delivery.payload
        if payload is None:
            return ""
        path = _project_path(payload)
        if not path:
            return ""
        event = delivery.event
        attrs = payload.get("object_attributes") or {}
        if event == "Merge Request Hook":
            return f"gitlab:{path}!{attrs.get('iid')}"
        if event == "Note Hook":
            mr = payload.get("merge_request") or {}
            return f"gitlab:{path}!{mr.get('iid')}" if mr else f"gitlab:{path}"
        if event == "Push Hook":
            return f"gitlab:{path}@{str(payload.get('ref') or '').removeprefix('refs/heads/')}"
        if event == "Pipeline Hook":
            builds = gated_builds(payload)
            if builds:
                return f"gitlab:{path}@deploy:{builds[0]['environment']}"
            if merge_train.is_train_pipeline(payload):
                return merge_train.subject_of(path, payload)
            return f"gitlab:{path}/pipelines/{attrs.get('id')}"
        if event == "Deployment Hook":
            return f"gitlab:{path}@deploy:{payload.get('environment', '')}"
        return f"gitlab:{path}"

    def parse(self, delivery: Delivery) -> Work:
        payload = delivery.payload
        if payload is None:
            return Work("ignore", reason="body is not a JSON object")
        event = delivery.event
        subject = self.subject_of(delivery)
        project = payload.get("project") or {}
        path = _project_path(payload)
        pid = project.get("id") or payload.get("project_id")
        if not path or not isinstance(pid, int):
            return Work("ignore", subject, reason=f"{event}: no project in the payload")
        self.api.remember(pid, path, project.get("default_branch"))

        if event == "Merge Request Hook":
            attrs = payload.get("object_attributes") or {}
            action = str(attrs.get("action") or "")
            if action in MR_IGNORE or action not in MR_EVALUATE:
                return Work("ignore", subject, reason=f"merge request {action or 'event'}: ignored")
            target = attrs.get("target_project_id")
            if isinstance(target, int) and target != pid:
                return Work("ignore", subject, reason="merge request into another project")
            stated = (attrs.get("last_commit") or {}).get("id")
            return self._evaluate_mr(path, int(attrs["iid"]), subject, event, stated)
        if event == "Note Hook":
            return self._note(payload, path, subject)
        if event == "Push Hook":
            return self._push(payload, path, subject)
        if event == "Pipeline Hook":
            if merge_train.is_train_pipeline(payload) and not gated_builds(payload):
                return merge_train.train_work(self.api, payload, path, subject)
            return deploys.pipeline(self.api, payload, path, subject)
        if event == "Deployment Hook":
            return deploys.deployment(self.api, payload, path, subject)
        return Work("ignore", subject, reason=f"event {event!r} is not handled")

    def _evaluate_mr(
        self, path: str, iid: int, subject: str, event: str, stated: str | None
    ) -> Work:
        """Evaluate the merge request as it is now, whatever head the payload named."""
        try:
            mr = self.api.project(path).mergerequests.get(iid)
        except GitlabError as exc:
            if getattr(exc, "response_code", None) == 404:
                return Work("ignore", subject, reason=f"{path}!{iid} no longer exists")
            raise
        if mr.state != "opened":
            return Work("ignore", subject, reason=f"{path}!{iid} is {mr.state}")
        refs = mr.diff_refs or {}
        base, head = refs.get("base_sha"), refs.get("head_sha")
        if not base or not head or head != mr.sha:
            raise GitLabNotReady(f"{path}!{iid}: GitLab is still computing the diff of {mr.sha}")
        self.api.refs.put((path.lower(), head), str(mr.source_branch))
        change = Change(
            repo=path,
            base=base,
            head=head,
            forge="gitlab",
            author=(mr.author or {}).get("username"),
            description=mr.description or "",
            title=mr.title or "",
            number=iid,
            url=mr.web_url,
            base_ref=str(mr.target_branch or "") or None,
            labels=tuple(str(label) for label in getattr(mr, "labels", None) or ()),
            draft=bool(getattr(mr, "draft", None) or getattr(mr, "work_in_progress", False)),
        )
        if stated and stated != head:
            reason = f"payload named head {stated[:12]}; evaluating current head {head[:12]}"
            return Work("evaluate", subject, change, reason, event=event, payload_head=stated)
        return Work("evaluate", subject, change=change, event=event)

    def change_work(self, repo: str, number: int) -> Work:
        """Re-evaluation of a merge request as it is now (after a Slack decision)."""
        return self._evaluate_mr(repo, number, f"gitlab:{repo}!{number}", RECHECK, None)

    def _note(self, payload: dict[str, Any], path: str, subject: str) -> Work:
        attrs = payload.get("object_attributes") or {}
        mr = payload.get("merge_request") or {}
        body = str(attrs.get("note") or "")
        if attrs.get("noteable_type") != "MergeRequest" or not mr:
            return Work("ignore", subject, reason="comment not on a merge request")
        if attrs.get("system") or NOTE_MARKER in body or not _RECHECK.search(body):
            return Work("ignore", subject, reason="comment is not a recheck command")
        return self._evaluate_mr(path, int(mr["iid"]), subject, "Note Hook", None)

    def _push(self, payload: dict[str, Any], path: str, subject: str) -> Work:
        ref = str(payload.get("ref") or "")
        before, after = str(payload.get("before") or ""), str(payload.get("after") or "")
        default = (payload.get("project") or {}).get("default_branch")
        if not ref.startswith("refs/heads/"):
            return Work("ignore", subject, reason=f"push to {ref}: not a branch")
        if after == ZERO_SHA or not after:
            return Work("ignore", subject, reason=f"{ref} deleted")
        if before == ZERO_SHA or not before:
            return Work("ignore", subject, reason=f"{ref} created: no range to check")
        branch = ref.removeprefix("refs/heads/")
        if not default:
            default = self.api.project_info(path).default_branch
        if branch != default:
            return Work("ignore", subject, reason=f"push to {branch}: not the default branch")
        self.api.refs.put((path.lower(), after), branch)
        commits = payload.get("commits") or []
        last = next((c for c in commits if c.get("id") == after), commits[-1] if commits else {})
        message = str(last.get("message") or "")
        change = Change(
            repo=path,
            base=before,
            head=after,
            forge="gitlab",
            author=payload.get("user_username"),
            description=message,
            title=f"push to {branch}",
            base_ref=branch,
            draft=False,
        )
        merged = [_merged(path, mr) for mr in self._merged_mrs(path, after, branch)]
        if not merged:
            return Work("evaluate", subject, change=change, event="Push Hook")
        landed = common.landed(merged, lambda m: self._same_tree(path, m.head, after))
        change = common.landed_change(change, merged, "!")
        return Work("evaluate", subject, change=change, event="Push Hook", landed=landed)

    def _same_tree(self, path: str, a: str, b: str) -> bool:
        """Whether two commits hold the same files: then approvals of one cover the other."""
        data = self.api.project(path).repository_compare(a, b, straight="true")
        return isinstance(data, dict) and not data.get("diffs")

    def _merged_mrs(self, path: str, sha: str, branch: str) -> list[dict[str, Any]]:
        """The merge requests merged into `branch` as commit `sha` (merge or squash commit):
        a push of a merge is the merge request landing, and its description (the playbook
        link, say) is the merge request's, not the commit message."""
        rows = self.api.project(path).commits.get(sha, lazy=True).merge_requests()
        return [
            mr
            for mr in rows
            if isinstance(mr, dict)
            and mr.get("state") == "merged"
            and mr.get("target_branch") == branch
            and sha in (mr.get("merge_commit_sha"), mr.get("squash_commit_sha"))
        ]


def _merged(path: str, mr: dict[str, Any]) -> common.Merged:
    return common.Merged(
        subject=f"gitlab:{path}!{mr['iid']}",
        number=int(mr["iid"]),
        title=str(mr.get("title")),
        description=str(mr.get("description") or ""),
        author=(mr.get("author") or {}).get("username"),
        labels=tuple(str(x) for x in mr.get("labels") or ()),
        head=str(mr.get("sha") or ""),
    )


def _project_path(payload: dict[str, Any]) -> str:
    return str((payload.get("project") or {}).get("path_with_namespace") or "")
