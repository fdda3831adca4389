"""The GitLab forge on python-gitlab: webhooks to `Change`s, lazy file views, commit statuses
and one merge request note kept up to date.

Every API call goes to the configured URL (`CHANGEGATE_GITLAB_URL`, self-managed or not):
projects are addressed by the numeric id from the payload or by their full path, subgroups
included; no URL inside a payload (`web_url`, `deployable_url`, ...) is ever followed, and
python-gitlab is told to keep its base URL even when a server's pagination links name
another host.

API economy: file contents are fetched only when a rule reads them, one request per file
(the raw-file endpoint names the blob id in `X-Gitlab-Blob-Id`), and cached by blob id in a
bounded, process-wide LRU; path-to-blob lookups, trees and changed-file listings are cached
by the immutable commit SHAs they depend on. A re-run on the same head makes no content
requests.

Retries: python-gitlab retries 5xx (and 409 "Resource lock") with a short exponential
backoff when `retry_transient_errors` is on, and waits out a 429 for `Retry-After` seconds.
Here 5xx are retried at most `max_retries` times (about 1.5 s in all by default: a longer
outage is the inbox's job, which retries the delivery later), and a 429 asking for more than
`max_rate_limit_wait` seconds raises `GitLabRateLimited` instead of blocking a worker.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import gitlab
import requests
from gitlab.exceptions import GitlabError, GitlabHttpError

from bot import metrics
from bot.change import Approval, Change, ChangedFile, Decision, FileStatus, FileView, Verdict
from bot.forges import RECHECK, Delivery, DeployKind, Deployment, DeployTarget, Forge, Landed, Work
from bot.forges.cache import LRU
from bot.forges.treediff import Budget, Entry, ListingIncomplete, diff_trees
from bot.policy.approvers import Directory
from bot.policy.sources import REPOSITORY_POLICY
from bot.report import markdown_summary

log = logging.getLogger(__name__)

STATUS_NAME = "changegate"
NOTE_MARKER = "<!-- changegate -->"
RECHECK_COMMAND = "/changegate recheck"
DESCRIPTION_LIMIT = 255
NOTE_LIMIT = 60_000  # GitLab accepts 1,000,000 characters; a note people read needs far less
STATUS_CONFLICT_RETRIES = 3  # python-gitlab retries a 409 only if its *reason phrase* says so
PAGE_SIZE = 100  # entries per page of a repository tree
DIFF_FILES_LIMIT = 1000  # GitLab's default `diff_max_files`: at or over it, a list may be cut
ZERO_SHA = "0" * 40

MR_EVALUATE = frozenset(
    {"open", "update", "reopen", "approved", "unapproved", "approval", "unapproval"}
)
MR_IGNORE = frozenset({"merge", "close"})
DEPLOYMENT_GATE_STATUSES = frozenset({"created", "blocked", "running"})

_STATE = {
    Decision.PASS: "success",
    Decision.FAIL: "failed",
    Decision.APPROVAL_REQUIRED: "failed",
}
_RECHECK = re.compile(rf"^\s*{re.escape(RECHECK_COMMAND)}\s*$", re.MULTILINE)


class GitLabRateLimited(Exception):
    """GitLab asked to wait longer than a worker should block; the inbox retries later."""

    def __init__(self, wait: float, url: str) -> None:
        super().__init__(f"GitLab rate limit: retry after {wait:.0f}s ({url})")
        self.retry_after = wait


class GitLabNotReady(Exception):
    """The merge request's diff is still being computed; the inbox retries later."""


# -- caches ------------------------------------------------------------------------------


#: blob id -> contents. Content-addressed, so shared by every project and evaluation.
BLOBS: LRU[str, bytes] = LRU(max_entries=20_000, max_size=128 * 1024 * 1024)
#: (url, project, commit, path) -> blob id, or None when absent. Commits are immutable.
PATHS: LRU[tuple[str, str, str, str], str | None] = LRU(max_entries=200_000)
#: (url, project, commit) -> {path: blob id} of the whole tree.
TREES: LRU[tuple[str, str, str], dict[str, str]] = LRU(max_entries=16)
#: (url, project, MR iid or "", base, head) -> changed files (listed whole).
LISTINGS: LRU[tuple[str, str, str, str, str], tuple[ChangedFile, ...]] = LRU(max_entries=512)


@dataclass(frozen=True)
class _Listing:
    files: tuple[ChangedFile, ...]
    unlisted: str | None = None  # why the change could not be listed whole


def clear_caches() -> None:
    """Forget everything cached (tests; never needed for correctness)."""
    for cache in (BLOBS, PATHS, TREES, LISTINGS):
        cache.clear()


# -- the client ------------------------------------------------------------------------------
class _Client(gitlab.Gitlab):
    """python-gitlab with a bounded number of transient-error retries (default 10 there)."""

    max_retries = 4

    def http_request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("max_retries", self.max_retries)
        try:
            response = super().http_request(*args, **kwargs)
        except gitlab.exceptions.GitlabHttpError as exc:
            metrics.FORGE_API_CALLS.labels("gitlab", f"{(exc.response_code or 0) // 100}xx").inc()
            raise
        metrics.FORGE_API_CALLS.labels("gitlab", f"{response.status_code // 100}xx").inc()
        remaining = response.headers.get("RateLimit-Remaining")
        if remaining and remaining.isdigit():
            metrics.FORGE_RATE_REMAINING.labels("gitlab").set(int(remaining))
        return response


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or an HTTP date) or `RateLimit-Reset`."""
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
    reset = headers.get("RateLimit-Reset")
    if reset and reset.strip().isdigit():
        return max(0.0, float(reset) - time.time())
    return None


@dataclass(frozen=True)
class _Project:
    id: int
    path: str
    default_branch: str | None
    fetched: float


class GitLabForge:
    """A GitLab instance seen through one bot user's token, through python-gitlab."""

    name = "gitlab"

    def __init__(
        self,
        url: str,
        token: str,
        *,
        max_retries: int = 4,
        max_rate_limit_wait: float = 120.0,
        timeout: float = 30.0,
        project_ttl: float = 300.0,
        group_ttl: float = 300.0,
        listing_budget: Callable[[], Budget] = Budget,
    ) -> None:
        self.url = url.rstrip("/")
        self.listing_budget = listing_budget  # bounds a listing by trees (requests, time)
        self.max_rate_limit_wait = max_rate_limit_wait
        session = requests.Session()
        session.hooks["response"].append(self._on_response)
        self.gl = _Client(
            self.url,
            private_token=token,
            retry_transient_errors=True,
            keep_base_url=True,
            timeout=timeout,
            per_page=100,
            session=session,
        )
        self.gl.max_retries = max_retries
        self._lock = threading.Lock()
        self._project_ttl = project_ttl
        self._projects: dict[str, _Project] = {}  # str(id) and lower-cased path -> project
        self._group_ttl = group_ttl
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._refs: LRU[tuple[str, str], str] = LRU(max_entries=4096)  # (repo, sha) -> branch
        self._notes: LRU[tuple[str, int], int] = LRU(max_entries=4096)  # (repo, iid) -> note id
        self._bot: str | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> GitLabForge:
        """Build from `bot.settings.Settings` (`gitlab_url`, `gitlab_token`)."""
        token = settings.gitlab_token
        secret = token.get_secret_value() if hasattr(token, "get_secret_value") else str(token)
        return cls(str(settings.gitlab_url), secret)

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Normalise a 429's wait for python-gitlab (it only reads integer `Retry-After`),
        and refuse waits longer than a worker should block."""
        if response.status_code != 429:
            return
        wait = _retry_after(response.headers)
        if wait is None:
            return
        if wait > self.max_rate_limit_wait:
            response.close()
            raise GitLabRateLimited(wait, response.url)
        response.headers["Retry-After"] = str(int(wait + 0.999))

    # -- projects ---------------------------------------------------------------------
    def remember(self, project_id: int, path: str, default_branch: str | None = None) -> None:
        """Map a payload's project id to its path, so that calls use the stable id."""
        entry = _Project(int(project_id), path, default_branch, time.monotonic())
        with self._lock:
            self._projects[str(entry.id)] = entry
            self._projects[path.lower()] = entry

    def project_info(self, key: str | int) -> _Project:
        """Id, full path and default branch (cached for `project_ttl` seconds)."""
        text = str(key)
        cached = self._projects.get(text.lower())
        if (
            cached is not None
            and cached.default_branch
            and time.monotonic() - cached.fetched < self._project_ttl
        ):
            return cached
        ident: int | str = cached.id if cached else (int(text) if text.isdigit() else text)
        project = self.gl.projects.get(ident)
        self.remember(project.id, project.path_with_namespace, project.default_branch)
        return self._projects[str(project.id)]

    def project(self, key: str | int) -> Any:
        """A lazy project handle (no request): by id when known, else by full path."""
        text = str(key)
        known = self._projects.get(text.lower())
        ident: int | str = known.id if known else (int(text) if text.isdigit() else text)
        return self.gl.projects.get(ident, lazy=True)

    def _encoded(self, key: str | int) -> str:
        known = self._projects.get(str(key).lower())
        return str(known.id) if known else quote(str(key), safe="")

    def bot_username(self) -> str:
        if self._bot is None:
            self.gl.auth()
            assert self.gl.user is not None
            self._bot = str(self.gl.user.username)
        return self._bot

    # -- events -------------------------------------------------------------------------
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
            builds = _gated_builds(payload)
            if builds:
                return f"gitlab:{path}@deploy:{builds[0]['environment']}"
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
        self.remember(pid, path, project.get("default_branch"))

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
            return self._pipeline(payload, path, subject)
        if event == "Deployment Hook":
            return self._deployment(payload, path, subject)
        return Work("ignore", subject, reason=f"event {event!r} is not handled")

    def _evaluate_mr(
        self, path: str, iid: int, subject: str, event: str, stated: str | None
    ) -> Work:
        """Evaluate the merge request as it is now, whatever head the payload named."""
        try:
            mr = self.project(path).mergerequests.get(iid)
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
        self._refs.put((path.lower(), head), str(mr.source_branch))
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
            default = self.project_info(path).default_branch
        if branch != default:
            return Work("ignore", subject, reason=f"push to {branch}: not the default branch")
        self._refs.put((path.lower(), after), branch)
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
        merged = self._merged_mrs(path, after, branch)
        if merged:  # judged with what its merge request said, as it was when it passed
            change = dataclasses.replace(
                change,
                author=(merged[0].get("author") or {}).get("username") or change.author,
                description="\n\n".join(
                    [*(str(mr.get("description") or "") for mr in merged), message]
                ).strip(),
                title=f"push to {branch}: "
                + ", ".join(f"!{mr.get('iid')} {mr.get('title')}" for mr in merged),
                labels=tuple(sorted({str(x) for mr in merged for x in mr.get("labels") or ()})),
            )
            landed = tuple(
                Landed(f"gitlab:{path}!{mr['iid']}", int(mr["iid"]), str(mr["sha"]))
                for mr in merged
                if mr.get("sha") and self._same_tree(path, str(mr["sha"]), after)
            )
            return Work("evaluate", subject, change=change, event="Push Hook", landed=landed)
        return Work("evaluate", subject, change=change, event="Push Hook")

    def _same_tree(self, path: str, a: str, b: str) -> bool:
        """Whether two commits hold the same files: then approvals of one cover the other."""
        data = self.project(path).repository_compare(a, b, straight="true")
        return isinstance(data, dict) and not data.get("diffs")

    def _merged_mrs(self, path: str, sha: str, branch: str) -> list[dict[str, Any]]:
        """The merge requests merged into `branch` as commit `sha` (merge or squash commit):
        a push of a merge is the merge request landing, and its description (the playbook
        link, say) is the merge request's, not the commit message."""
        rows = self.project(path).commits.get(sha, lazy=True).merge_requests()
        return [
            mr
            for mr in rows
            if isinstance(mr, dict)
            and mr.get("state") == "merged"
            and mr.get("target_branch") == branch
            and sha in (mr.get("merge_commit_sha"), mr.get("squash_commit_sha"))
        ]

    def _pipeline(self, payload: dict[str, Any], path: str, subject: str) -> Work:
        """A pipeline whose deploy job waits as a manual job: gate it (play it once approved)."""
        attrs = payload.get("object_attributes") or {}
        builds = _gated_builds(payload)
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
        initiators = self._deploy_initiators(
            path, sha, [payload.get("user"), *(b.get("user") for b in builds)]
        )
        deployment = Deployment(first["environment"], target, initiators)
        return Work(
            "deployment-gate", subject, change, event="Pipeline Hook", deployment=deployment
        )

    def _deploy_initiators(
        self, path: str, sha: str, users: list[Any]
    ) -> tuple[tuple[str, str], ...]:
        """Everyone behind a deploy: the pipeline's, job's and deployment's users, and the
        authors of the merge requests of the deployed SHA. None of them may approve it."""
        names = [str(u.get("username") or "") for u in users if isinstance(u, dict)]
        for mr in self.project(path).commits.get(sha, lazy=True).merge_requests():
            if isinstance(mr, dict):
                names.append(str((mr.get("author") or {}).get("username") or ""))
        seen: dict[str, None] = {}
        for name in names:
            if name:
                seen.setdefault(name, None)
        return tuple(("gitlab", name) for name in seen)

    def _deployment(self, payload: dict[str, Any], path: str, subject: str) -> Work:
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
        deployment = self.project(path).deployments.get(dep_id)
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
        initiators = self._deploy_initiators(
            path, sha, [deployment.user, payload.get("user"), deployable.get("user")]
        )
        status = str(deployment.status)
        gated = Deployment(env, target, initiators, status=status)
        return Work("deployment-gate", subject, change, event="Deployment Hook", deployment=gated)

    # -- deploy gates ----------------------------------------------------------------------
    def answer_deployment(
        self, repo: str, environment: str, target: DeployTarget, approved: bool, comment: str
    ) -> tuple[int, ...]:
        """Approve or reject a `blocked` deployment (Premium; recorded against the bot
        user), or play the manual deploy jobs once approved (a rejected one stays unplayed)."""
        if target.kind is DeployKind.APPROVAL and target.deployment_id is not None:
            deployment = self.project(repo).deployments.get(target.deployment_id, lazy=True)
            deployment.approval("approved" if approved else "rejected", comment=comment[:1000])
            return ()
        if target.kind is not DeployKind.MANUAL_JOB:
            raise ValueError(f"GitLab cannot answer a {target.kind} deployment")
        if not approved:
            log.info("%s: manual deploy to %s stays unplayed: %s", repo, environment, comment)
            return ()
        for job_id in target.job_ids:
            self.play_job(repo, job_id)
        return target.job_ids

    def play_job(self, repo: str, job_id: int) -> None:
        """Start a manual job once its deployment is approved."""
        self.project(repo).jobs.get(int(job_id), lazy=True).play()

    # -- reading ----------------------------------------------------------------------
    def view(self, change: Change) -> GitLabView:
        return GitLabView(self, change)

    def repository_policy(self, change: Change) -> str | None:
        """`.changegate.yml` from the default branch, never from the change itself."""
        info = self.project_info(change.repo)
        if not info.default_branch:
            return None
        try:
            data = self.project(change.repo).files.raw(REPOSITORY_POLICY, ref=info.default_branch)
        except GitlabError as exc:
            if getattr(exc, "response_code", None) == 404:
                return None
            raise
        return bytes(data).decode("utf-8", "replace")

    def read_at(self, repo: str, commit: str, path: str) -> bytes | None:
        """A file at a commit: blob id from cache or tree, else one raw-file request."""
        key = (self.url, repo.lower(), commit, path)
        known, blob = PATHS.get(key)
        if not known:
            hit, tree = TREES.get((self.url, repo.lower(), commit))
            if hit and tree is not None:
                known, blob = True, tree.get(path)
                PATHS.put(key, blob)
        if known:
            return None if blob is None else self.blob(repo, blob)
        try:
            response = self.gl.http_get(
                f"/projects/{self._encoded(repo)}/repository/files/{quote(path, safe='')}/raw",
                query_data={"ref": commit},
                raw=True,
            )
        except GitlabHttpError as exc:
            if exc.response_code == 404:
                PATHS.put(key, None)
                return None
            raise
        assert isinstance(response, requests.Response)
        data = response.content
        blob = response.headers.get("X-Gitlab-Blob-Id")
        if blob:
            BLOBS.put(blob, data, len(data))
            PATHS.put(key, blob)
        return data

    def blob(self, repo: str, blob: str) -> bytes:
        hit, data = BLOBS.get(blob)
        if hit and data is not None:
            return data
        raw = self.project(repo).repository_raw_blob(blob)
        data = bytes(raw)
        BLOBS.put(blob, data, len(data))
        return data

    def tree(self, repo: str, commit: str) -> dict[str, str]:
        """{path: blob id} of every file at `commit` (submodules and trees left out)."""
        key = (self.url, repo.lower(), commit)
        hit, cached = TREES.get(key)
        if hit and cached is not None:
            return cached
        rows = self.project(repo).repository_tree(
            ref=commit, recursive=True, get_all=True, per_page=100
        )
        tree = {str(r["path"]): str(r["id"]) for r in rows if r.get("type") == "blob"}
        TREES.put(key, tree)
        return tree

    def changed(self, change: Change) -> tuple[ChangedFile, ...]:
        """Changed files of the MR (or of base..head for a push)."""
        return self.listing(change).files

    def listing(self, change: Change) -> _Listing:
        """Changed files of the MR (or of base..head for a push), complete however large,
        or as many as could be listed with the reason the rest could not."""
        if change.base is None:
            return _Listing(())
        key = (self.url, change.repo.lower(), str(change.number or ""), change.base, change.head)
        hit, cached = LISTINGS.get(key)
        if hit and cached is not None:
            return _Listing(cached)
        listed: list[ChangedFile] | None = None
        complete = False
        if change.number is not None:
            listed, complete = self._mr_changes(change)
        if listed is None:
            listed, complete = self._compare(change)
        if complete:
            listing = _Listing(tuple(sorted(listed, key=_by_path)))
        else:
            listing = self._tree_diff(change, listed)
        if listing.unlisted is None:  # a listing cut by the budget may finish next time
            LISTINGS.put(key, listing.files)
        return listing

    def _mr_changes(self, change: Change) -> tuple[list[ChangedFile] | None, bool]:
        """`/changes` and whether it is whole: GitLab cuts it (`overflow`, "1000+"). None
        when the MR moved on past our head."""
        assert change.base is not None and change.number is not None
        mr = self.project(change.repo).mergerequests.get(change.number, lazy=True)
        data = mr.changes()
        assert isinstance(data, dict)
        refs = data.get("diff_refs") or {}
        if refs.get("head_sha") != change.head or refs.get("base_sha") != change.base:
            return None, False  # the MR has a newer diff; the compare API answers for our range
        files = [_changed_file(d) for d in data.get("changes") or []]
        if data.get("overflow") or str(data.get("changes_count") or "").endswith("+"):
            log.info(
                "%s!%s: diff over GitLab's limits; listing by tree", change.repo, change.number
            )
            return files, False
        return files, True

    def _compare(self, change: Change) -> tuple[list[ChangedFile], bool]:
        assert change.base is not None
        data = self.project(change.repo).repository_compare(
            change.base, change.head, straight="true"
        )
        assert isinstance(data, dict)
        diffs = data.get("diffs") or []
        whole = not data.get("compare_timeout") and len(diffs) < DIFF_FILES_LIMIT
        return [_changed_file(d) for d in diffs], whole

    def _tree_diff(self, change: Change, listed: list[ChangedFile]) -> _Listing:
        """Changed files by comparing the two trees (`treediff`): exact, never truncated
        (renames show as a deletion and an addition), or the reason it could not finish."""
        assert change.base is not None
        trees = _GitLabTrees(self.project(change.repo))
        try:
            changes = diff_trees(trees, change.base, change.head, self.listing_budget())
        except ListingIncomplete as exc:
            log.warning("%s!%s: change not listed whole: %s", change.repo, change.number, exc)
            return _Listing(
                tuple(listed),
                unlisted="GitLab cut the diff at its limits, so changegate compared the git "
                f"trees of {change.base[:12]} and {change.head[:12]} instead, and could not "
                f"finish: {exc}",
            )
        return _Listing(tuple(ChangedFile(c.path, c.status) for c in changes))

    # -- approvals and groups ----------------------------------------------------------
    def approvals(self, change: Change) -> list[Approval]:
        """MR approvals that were given on the current head.

        GitLab's approvals carry no commit: `approved_by` lists who approves now, and a
        project resets approvals on push only if configured to. So an approval counts only
        if its "approved this merge request" system note is no older than the MR diff
        version that brought the current head. Without that evidence nothing counts.
        """
        if change.number is None or change.forge != "gitlab":
            return []
        mr = self.project(change.repo).mergerequests.get(change.number, lazy=True)
        state = mr.approvals.get()
        approvers = {
            str((row.get("user") or {}).get("username"))
            for row in getattr(state, "approved_by", None) or []
            if (row.get("user") or {}).get("username")
        }
        if not approvers:
            return []
        since = None
        for version in mr.diffs.list(iterator=True):
            if version.head_commit_sha == change.head:
                since = _time(version.created_at)  # newest first: the latest push of head
                break
        if since is None:
            log.warning(
                "%s!%s: no diff version for head %s", change.repo, change.number, change.head
            )
            return []
        counted: dict[str, datetime] = {}
        for note in mr.notes.list(sort="desc", order_by="created_at", iterator=True):
            created = _time(note.created_at)
            if created < since:
                break
            user = (note.author or {}).get("username")
            if note.system and note.body.strip() == "approved this merge request" and user:
                counted.setdefault(str(user), created)  # newest first: the latest approval
        return [
            Approval(
                system="gitlab",
                user=user,
                sha=change.head,
                via="mr-approval",
                at=counted[user].astimezone(UTC).replace(tzinfo=None),
            )
            for user in sorted(approvers & counted.keys())
        ]

    def directory(self, entries: list[str]) -> Directory:
        """Members (direct and inherited) of the GitLab groups named as `@group/subgroup`."""
        members = {}
        for entry in entries:
            if entry.startswith("@") and len(entry) > 1:
                members[entry] = self._group_members(entry[1:])
        return Directory(members=members)

    def _group_members(self, group: str) -> frozenset[str]:
        cached = self._groups.get(group.lower())
        if cached and time.monotonic() - cached[0] < self._group_ttl:
            return cached[1]
        try:
            rows = self.gl.groups.get(group, lazy=True).members_all.list(get_all=True)
        except GitlabError as exc:
            if getattr(exc, "response_code", None) != 404:
                raise
            log.warning("GitLab group %s not found: it grants no approvals", group)
            rows = []
        found = frozenset(str(m.username).lower() for m in rows)
        self._groups[group.lower()] = (time.monotonic(), found)
        return found

    # -- publishing --------------------------------------------------------------------
    def start(self, change: Change, details_url: str) -> None:
        """Commit status `running`. Already running (a re-check racing another) is fine."""
        self._status(change, "running", "checking the change against the policy", details_url)

    def publish(
        self, change: Change, verdict: Verdict, details_url: str, *, note: str | None = None
    ) -> None:
        """Commit status `success` / `failed`, then the one MR note, edited in place.

        GitLab has no `action_required`: approval_required is posted as `failed` with
        "approval required" as its description. `pending` would read as "still checking"
        to people and to tooling, and it would stay that way until someone approves; a
        failed status with the approval page as its target says exactly what is missing,
        blocks merging where "pipelines must succeed" is on, and turns `success` on the
        re-check an approval triggers.
        """
        state = _STATE[verdict.decision]
        description = note or status_description(verdict)
        self._status(change, state, description, details_url)
        if change.number is not None:
            body = note_body(verdict, details_url)
            if note:  # a rejection in Slack, a break-glass: said first
                body = body.replace(NOTE_MARKER + "\n", f"{NOTE_MARKER}\n**{note}**\n\n", 1)
            self.upsert_note(change, body)

    def _status(self, change: Change, state: str, description: str, target_url: str) -> None:
        body: dict[str, Any] = {
            "state": state,
            "name": STATUS_NAME,
            "target_url": target_url,
            "description": description[:DESCRIPTION_LIMIT],
        }
        hit, ref = self._refs.get((change.repo.lower(), change.head))
        if hit and ref:
            body["ref"] = ref
        commit = self.project(change.repo).commits.get(change.head, lazy=True)
        for attempt in range(STATUS_CONFLICT_RETRIES + 1):
            try:
                commit.statuses.create(body)
                return
            except GitlabError as exc:
                code = getattr(exc, "response_code", None)
                message = str(getattr(exc, "error_message", "") or exc)
                if code == 400 and "Cannot transition" in message:
                    log.info("%s@%s: status already %s", change.repo, change.head[:12], state)
                    return
                if code != 409 or attempt == STATUS_CONFLICT_RETRIES:
                    raise
                # two writers on one status ("409 Conflict: Resource lock"): try again shortly
                time.sleep(0.2 * (attempt + 1))

    def upsert_note(self, change: Change, body: str) -> None:
        """Edit our note (hidden marker, authored by the bot) or create it once."""
        assert change.number is not None
        mr = self.project(change.repo).mergerequests.get(change.number, lazy=True)
        note = self._find_note(change, mr)
        if note is None:
            created = mr.notes.create({"body": body})
            self._notes.put((change.repo.lower(), change.number), int(created.id))
            return
        if note.body != body:
            note.body = body
            note.save()

    def _find_note(self, change: Change, mr: Any) -> Any:
        assert change.number is not None
        key = (change.repo.lower(), change.number)
        hit, note_id = self._notes.get(key)
        if hit and note_id is not None:
            try:
                return mr.notes.get(note_id)
            except GitlabError as exc:
                if getattr(exc, "response_code", None) != 404:
                    raise
        bot = self.bot_username()
        for note in mr.notes.list(sort="asc", order_by="created_at", iterator=True):
            author = (note.author or {}).get("username")
            if not note.system and author == bot and NOTE_MARKER in (note.body or ""):
                self._notes.put(key, int(note.id))
                return note
        return None


class GitLabView(FileView):
    """A merge request's (or push's) files, read lazily through the forge's caches."""

    def __init__(self, forge: GitLabForge, change: Change) -> None:
        super().__init__(change)
        self._forge = forge
        self._listing: _Listing | None = None

    def _list(self) -> _Listing:
        if self._listing is None:  # once per view, even when it could not be listed whole
            self._listing = self._forge.listing(self.change)
        return self._listing

    def changed_files(self) -> list[ChangedFile]:
        return list(self._list().files)

    def unlisted(self) -> str | None:
        return self._list().unlisted

    def read(self, path: str, rev: str = "head") -> bytes | None:
        commit = self.change.head if rev == "head" else self.change.base
        if commit is None:
            return None
        return self._forge.read_at(self.change.repo, commit, path)

    def head_paths(self) -> list[str]:
        return sorted(self._forge.tree(self.change.repo, self.change.head))


class _GitLabTrees:
    """Repository trees through the API, for `treediff`, every page charged to the budget.
    GitLab pages a recursive tree but never cuts it: past a quarter of the budget, the
    walk that reads only the subtrees that differ is cheaper."""

    def __init__(self, project: Any) -> None:
        self.project = project

    def _rows(self, budget: Budget, limit: int | None, **query: Any) -> tuple[list[Any], bool]:
        """Page by page, one charged request each; cut (True) after `limit` pages."""
        rows: list[Any] = []
        page = 1
        while limit is None or page <= limit:
            budget.charge()
            found = self.project.repository_tree(
                page=page, per_page=PAGE_SIZE, get_all=False, **query
            )
            rows.extend(found)
            if len(found) < PAGE_SIZE:
                return rows, False
            page += 1
        return rows, True

    def whole(self, commit: str, budget: Budget) -> tuple[list[Entry], bool]:
        quarter = max(budget.max_requests // 4, 1)
        rows, cut = self._rows(budget, quarter, ref=commit, recursive=True)
        return [_entry(r) for r in rows], cut

    def level(self, commit: str, path: str, sha: str, budget: Budget) -> list[Entry]:
        query: dict[str, Any] = {"ref": commit}
        if path:
            query["path"] = path
        rows, _ = self._rows(budget, None, **query)
        return [_entry(r) for r in rows]


def _entry(row: dict[str, Any]) -> Entry:
    return Entry(str(row["path"]), str(row["type"]), str(row["id"]))


def _by_path(f: ChangedFile) -> str:
    return f.path


# -- rendering ------------------------------------------------------------------------------
def status_description(verdict: Verdict) -> str:
    """One line for the commit status, at most 255 characters."""
    blocking = sum(1 for f in verdict.findings if str(f.action) == "block")
    if verdict.decision is Decision.FAIL:
        text = f"{blocking} blocking finding{'s' if blocking != 1 else ''}"
    elif verdict.decision is Decision.APPROVAL_REQUIRED:
        missing = verdict.missing_approvals
        rules = ", ".join(s.rule for s in missing)
        text = f"approval required: {rules}"
    else:
        text = "passed" + (f" ({len(verdict.findings)} warnings)" if verdict.findings else "")
    return text[:DESCRIPTION_LIMIT]


def note_body(verdict: Verdict, details_url: str) -> str:
    """The MR note: a hidden marker (how the note is found again), then the summary."""
    summary = markdown_summary(
        verdict, details_url=details_url, limit=NOTE_LIMIT - len(NOTE_MARKER) - 1
    )
    return f"{NOTE_MARKER}\n{summary}"


# -- payload helpers ------------------------------------------------------------------------
def _project_path(payload: dict[str, Any]) -> str:
    return str((payload.get("project") or {}).get("path_with_namespace") or "")


def _gated_builds(payload: dict[str, Any]) -> list[dict[str, Any]]:
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


def _changed_file(diff: dict[str, Any]) -> ChangedFile:
    path = str(diff.get("new_path") or diff.get("old_path"))
    if diff.get("deleted_file"):
        return ChangedFile(str(diff.get("old_path") or path), FileStatus.DELETED)
    if diff.get("new_file"):
        return ChangedFile(path, FileStatus.ADDED)
    if diff.get("renamed_file"):
        return ChangedFile(path, FileStatus.RENAMED, str(diff.get("old_path")))
    return ChangedFile(path, FileStatus.MODIFIED)


def _time(value: str) -> datetime:
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_: type[Forge] = GitLabForge  # mypy checks the forge against the protocol
