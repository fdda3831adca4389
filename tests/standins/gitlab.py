"""A local GitLab REST API (v4) stand-in: the endpoints changegate uses, backed by real git repos.

It speaks GitLab's JSON shapes closely enough for the real python-gitlab client: projects by
numeric id or URL-encoded full path (subgroups included), merge requests with `diff_refs`,
`/changes` (with `overflow` when the diff is over the instance limit), `/versions`,
approvals and their system notes, raw files with `X-Gitlab-Blob-Id` headers, raw blobs,
recursive trees, compare, commit statuses with GitLab's state transitions, MR notes,
deployments, jobs and group members. Lists are paginated the GitLab way (`X-Page`,
`X-Next-Page`, `X-Total`, `Link` built from the stand-in's own base URL). Every request is
checked for the `PRIVATE-TOKEN` and recorded; faults (401/404/409/5xx, 429 with
`Retry-After`) are injected on cue.

    with GitLabStandIn(token="glpat-test") as gl:
        project = gl.add_project("acme/platform/app", GitRepo(tmp / "app"))
        mr = gl.open_mr("acme/platform/app", "feature", description="...")
        payload = gl.merge_request_payload("acme/platform/app", mr.iid, "open")
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from standins.gitrepo import ZERO_SHA, GitRepo
from standins.server import HTTPError, StandIn

Json = dict[str, Any]
API = "/api/v4"
BOT_USERNAME = "changegate-bot"


def iso(ts: float | None = None) -> str:
    """GitLab's timestamps: ISO 8601 with milliseconds and `Z`."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # decoded path, e.g. /api/v4/projects/acme/app/repository/files/a/b.yaml/raw
    raw_path: str  # as sent, e.g. /api/v4/projects/acme%2Fapp/...
    query: str
    status: int
    body: bytes = b""


@dataclass
class User:
    id: int
    username: str
    name: str


@dataclass
class Version:
    id: int
    head: str
    base: str
    start: str
    created: float


@dataclass
class Note:
    id: int
    body: str
    author: str
    system: bool
    created: float
    updated: float


@dataclass
class MergeRequest:
    id: int
    iid: int
    source_branch: str
    target_branch: str
    title: str
    description: str
    author: str
    state: str = "opened"
    draft: bool = False
    labels: list[str] = field(default_factory=list)
    approved_by: list[str] = field(default_factory=list)
    versions: list[Version] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    merged_at: float | None = None
    squash_commit_sha: str | None = None


@dataclass
class Status:
    id: int
    sha: str
    ref: str | None
    name: str
    state: str  # created | pending | running | success | failed | canceled
    target_url: str | None
    description: str | None
    author: str
    created: float
    history: list[str] = field(default_factory=list)


@dataclass
class Job:
    id: int
    name: str
    stage: str
    status: str  # manual | created | pending | running | success | failed | canceled
    sha: str
    ref: str
    pipeline_id: int
    environment: str | None = None
    played_by: str | None = None


@dataclass
class Deployment:
    id: int
    iid: int
    sha: str
    ref: str
    environment: str
    status: str  # created | running | success | failed | canceled | blocked
    job_id: int | None
    user: str
    approvals: list[Json] = field(default_factory=list)


@dataclass
class Project:
    id: int
    path: str  # full path with namespace, subgroups included
    git: GitRepo
    mrs: dict[int, MergeRequest] = field(default_factory=dict)
    statuses: list[Status] = field(default_factory=list)
    jobs: dict[int, Job] = field(default_factory=dict)
    deployments: dict[int, Deployment] = field(default_factory=dict)

    @property
    def default_branch(self) -> str:
        return self.git.default_branch

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def namespace(self) -> str:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""


Handler = Callable[..., Any]
_METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD"]


class GitLabStandIn(StandIn[Recorded]):
    """The stand-in server. Start it with `with` (or start()/stop())."""

    NAME = "GitLab stand-in"
    FAULT_MESSAGES = {
        401: "401 Unauthorized",
        403: "403 Forbidden",
        404: "404 Not Found",
        409: "409 Conflict: Resource lock",
        429: "Retry later",
    }
    FAULT_FALLBACK = "500 Internal Server Error"

    def __init__(
        self,
        *,
        token: str = "glpat-standin-token",
        host: str = "127.0.0.1",
        max_diff_files: int = 1000,
        latency: float = 0.0,
    ) -> None:
        super().__init__(host=host, latency=latency, methods=_METHODS)
        self.token = token
        self.max_diff_files = max_diff_files  # GitLab's instance diff limit (`overflow`)
        self.projects: dict[int, Project] = {}
        self.groups: dict[str, list[str]] = {}  # full path -> member usernames
        self.users: dict[str, User] = {}
        self._ids = itertools.count(100)
        self._routes = self._route_table()
        self._diffs: dict[tuple[str, str, str], list[Any]] = {}
        self.bot = self.user(BOT_USERNAME, "changegate")

    def reset(self) -> None:
        """Forget every project, group, user, fault and recorded request (a fresh GitLab)."""
        with self._lock:
            self.projects.clear()
            self.groups.clear()
            self.users.clear()
            self.requests.clear()
            self.faults.clear()
            self._diffs.clear()
            self.bot = self.user(BOT_USERNAME, "changegate")

    # -- test set-up ------------------------------------------------------------------
    def user(self, username: str, name: str | None = None) -> User:
        with self._lock:
            found = self.users.get(username)
            if found is None:
                found = User(next(self._ids), username, name or username.title())
                self.users[username] = found
            return found

    def add_project(self, path: str, git: GitRepo, *, project_id: int | None = None) -> Project:
        with self._lock:
            project = Project(project_id or next(self._ids), path, git)
            self.projects[project.id] = project
            return project

    def add_group(self, full_path: str, members: list[str]) -> None:
        with self._lock:
            self.groups[full_path] = list(members)
            for m in members:
                self.user(m)

    def open_mr(
        self,
        path: str,
        source_branch: str,
        target_branch: str | None = None,
        *,
        title: str = "A change",
        description: str = "",
        author: str = "dev",
        iid: int | None = None,
        labels: list[str] | None = None,
        draft: bool = False,
    ) -> MergeRequest:
        with self._lock:
            project = self.project(path)
            self.user(author)
            iid = iid or max([0, *project.mrs]) + 1
            mr = MergeRequest(
                next(self._ids),
                iid,
                source_branch,
                target_branch or project.default_branch,
                title,
                description,
                author,
                draft=draft,
                labels=list(labels or []),
            )
            project.mrs[iid] = mr
            self._sync_versions(project, mr)
            return mr

    def merge_mr(self, path: str, iid: int) -> str:
        """Squash-merge an MR into its target branch, as GitLab does with "Squash commits"
        on (the squash commit's message is the MR title); returns the new commit's SHA."""
        with self._lock:
            project = self.project(path)
            mr = project.mrs[iid]
            sha = project.git.squash_merge(mr.target_branch, self._head(project, mr), mr.title)
            mr.state, mr.merged_at, mr.squash_commit_sha = "merged", time.time(), sha
            return sha

    def train_mrs(
        self,
        path: str,
        iids: list[int],
        *,
        also: dict[str, str | None] | None = None,
        status: str = "pending",
    ) -> Json:
        """A merge train's car for the last of `iids`: `refs/merge-requests/<iid>/train`
        holds the target branch with each MR merged in turn (GitLab's default merge commit
        message, ending `See merge request <project>!<iid>`) and `also` committed on top.
        Returns the pipeline webhook payload of that car's pipeline."""
        with self._lock:
            project = self.project(path)
            mrs = [project.mrs[iid] for iid in iids]
            target, last = mrs[0].target_branch, mrs[-1]
            scratch = f"merge-train-{last.iid}"
            project.git.branch(scratch, project.git.branch_sha(target))
            for mr in mrs:
                message = (
                    f"Merge branch '{mr.source_branch}' into '{target}'\n\n{mr.title}\n\n"
                    f"See merge request {project.path}!{mr.iid}"
                )
                project.git.squash_merge(scratch, self._head(project, mr), message)
            if also:
                project.git.commit(scratch, also, "train: one more thing")
            sha = project.git.branch_sha(scratch) or ""
            ref = f"refs/merge-requests/{last.iid}/train"
            project.git.git("update-ref", ref, sha)
            project.git.delete_branch(scratch)
            pipeline = next(self._ids)
        web = f"https://gitlab.example.com/{project.path}"
        return {
            "object_kind": "pipeline",
            "object_attributes": {
                "id": pipeline,
                "iid": pipeline % 1000,
                "name": None,
                "ref": ref,
                "tag": False,
                "sha": sha,
                "before_sha": ZERO_SHA,
                "source": "merge_request_event",
                "status": status,
                "detailed_status": status,
                "stages": ["test"],
                "created_at": iso(),
                "finished_at": None,
                "duration": None,
                "queued_duration": None,
                "variables": [],
                "url": f"{web}/-/pipelines/{pipeline}",
            },
            "merge_request": {
                "id": last.id,
                "iid": last.iid,
                "title": last.title,
                "source_branch": last.source_branch,
                "source_project_id": project.id,
                "target_branch": target,
                "target_project_id": project.id,
                "state": last.state,
                "merge_status": "can_be_merged",
                "detailed_merge_status": "mergeable",
                "url": f"{web}/-/merge_requests/{last.iid}",
            },
            "user": self._hook_user(self.user("dev")),
            "project": self._hook_project(project),
            "commit": self._hook_commit(project, sha),
            "builds": [],
        }

    def edit_mr(self, path: str, iid: int, **changes: Any) -> MergeRequest:
        """Change an MR's attributes (title, description, state, draft)."""
        with self._lock:
            mr = self.project(path).mrs[iid]
            for key, value in changes.items():
                setattr(mr, key, value)
            return mr

    def retarget_mr(self, path: str, iid: int, target_branch: str) -> dict[str, Any]:
        """Change an MR's target branch, as its author can; GitLab computes a new diff
        version. Returns the `update` hook payload, with `changes.target_branch`."""
        with self._lock:
            project = self.project(path)
            mr = project.mrs[iid]
            previous, mr.target_branch = mr.target_branch, target_branch
            self._sync_versions(project, mr)
        payload = self.merge_request_payload(path, iid, "update")
        payload["changes"] = {"target_branch": {"previous": previous, "current": target_branch}}
        return payload

    def approve(self, path: str, iid: int, username: str) -> None:
        """A user approves: GitLab records approved_by and a system note."""
        with self._lock:
            project = self.project(path)
            mr = project.mrs[iid]
            self._sync_versions(project, mr)
            self.user(username)
            if username not in mr.approved_by:
                mr.approved_by.append(username)
            self._add_note(mr, "approved this merge request", username, system=True)

    def unapprove(self, path: str, iid: int, username: str) -> None:
        with self._lock:
            mr = self.project(path).mrs[iid]
            if username in mr.approved_by:
                mr.approved_by.remove(username)
            self._add_note(mr, "unapproved this merge request", username, system=True)

    def comment(self, path: str, iid: int, body: str, author: str = "dev") -> Note:
        with self._lock:
            self.user(author)
            return self._add_note(self.project(path).mrs[iid], body, author, system=False)

    def add_manual_job(
        self,
        path: str,
        sha: str,
        *,
        name: str,
        environment: str | None,
        ref: str = "main",
        job_id: int | None = None,
    ) -> Job:
        with self._lock:
            project = self.project(path)
            job = Job(
                job_id or next(self._ids),
                name,
                "deploy",
                "manual",
                sha,
                ref,
                next(self._ids),
                environment,
            )
            project.jobs[job.id] = job
            return job

    def add_deployment(
        self,
        path: str,
        job: Job,
        *,
        status: str = "created",
        user: str = "dev",
        deployment_id: int | None = None,
    ) -> Deployment:
        with self._lock:
            project = self.project(path)
            iid = len(project.deployments) + 1
            dep = Deployment(
                deployment_id or next(self._ids),
                iid,
                job.sha,
                job.ref,
                job.environment or "production",
                status,
                job.id,
                user,
            )
            project.deployments[dep.id] = dep
            return dep

    def statuses_for(self, path: str, sha: str, name: str | None = None) -> list[Status]:
        return [
            s
            for s in self.project(path).statuses
            if s.sha == sha and (name is None or s.name == name)
        ]

    def notes_of(self, path: str, iid: int, *, system: bool = False) -> list[Note]:
        return [n for n in self.project(path).mrs[iid].notes if n.system == system]

    def project(self, key: str | int) -> Project:
        """A project by numeric id (int or digits) or full path (case-insensitive)."""
        with self._lock:
            text = str(key)
            if text.isdigit():
                found = self.projects.get(int(text))
            else:
                found = next(
                    (p for p in self.projects.values() if p.path.lower() == text.lower()), None
                )
            if found is None:
                raise HTTPError(404, "404 Project Not Found")
            return found

    # -- webhook payloads (shaped like GitLab's documented examples) -----------------------
    def merge_request_payload(
        self, path: str, iid: int, action: str = "open", *, user: str | None = None
    ) -> Json:
        project = self.project(path)
        mr = project.mrs[iid]
        head = self._head(project, mr)
        actor = self.user(user or mr.author)
        attrs = {
            "id": mr.id,
            "iid": mr.iid,
            "target_branch": mr.target_branch,
            "source_branch": mr.source_branch,
            "source_project_id": project.id,
            "author_id": self.user(mr.author).id,
            "title": mr.title,
            "created_at": iso(mr.created),
            "updated_at": iso(),
            "state": mr.state,
            "draft": mr.draft,
            "work_in_progress": mr.draft,
            "merge_status": "unchecked",
            "target_project_id": project.id,
            "description": mr.description,
            "url": f"https://gitlab.example.com/{project.path}/-/merge_requests/{mr.iid}",
            "source": self._hook_project(project),
            "target": self._hook_project(project),
            "last_commit": self._hook_commit(project, head),
            "action": action,
            "detailed_merge_status": "mergeable",
        }
        if action == "update" and len(mr.versions) > 1:
            attrs["oldrev"] = mr.versions[-2].head
        return {
            "object_kind": "merge_request",
            "event_type": "merge_request",
            "user": self._hook_user(actor),
            "project": self._hook_project(project),
            "repository": self._hook_repository(project),
            "object_attributes": attrs,
            "labels": [{"id": 7000 + i, "title": name} for i, name in enumerate(mr.labels)],
            "changes": {},
            "assignees": [],
            "reviewers": [],
        }

    def note_payload(self, path: str, iid: int, note: Note) -> Json:
        project = self.project(path)
        mr = project.mrs[iid]
        return {
            "object_kind": "note",
            "event_type": "note",
            "user": self._hook_user(self.user(note.author)),
            "project_id": project.id,
            "project": self._hook_project(project),
            "repository": self._hook_repository(project),
            "object_attributes": {
                "id": note.id,
                "note": note.body,
                "noteable_type": "MergeRequest",
                "author_id": self.user(note.author).id,
                "created_at": iso(note.created),
                "updated_at": iso(note.updated),
                "project_id": project.id,
                "attachment": None,
                "line_code": None,
                "commit_id": "",
                "noteable_id": mr.id,
                "system": note.system,
                "st_diff": None,
                "action": "create",
                "url": f"https://gitlab.example.com/{project.path}/-/merge_requests/{iid}"
                f"#note_{note.id}",
            },
            "merge_request": {
                "id": mr.id,
                "iid": mr.iid,
                "target_branch": mr.target_branch,
                "source_branch": mr.source_branch,
                "source_project_id": project.id,
                "title": mr.title,
                "state": mr.state,
                "target_project_id": project.id,
                "description": mr.description,
                "last_commit": self._hook_commit(project, self._head(project, mr)),
                "draft": mr.draft,
            },
        }

    def push_payload(self, path: str, branch: str, before: str, after: str) -> Json:
        project = self.project(path)
        deleted = after == ZERO_SHA
        commits = (
            [] if deleted or before == ZERO_SHA else project.git.commits_between(before, after)
        )
        user = self.user("dev")
        return {
            "object_kind": "push",
            "event_name": "push",
            "before": before,
            "after": after,
            "ref": f"refs/heads/{branch}",
            "ref_protected": branch == project.default_branch,
            "checkout_sha": None if deleted else after,
            "user_id": user.id,
            "user_name": user.name,
            "user_username": user.username,
            "user_email": "",
            "project_id": project.id,
            "project": self._hook_project(project),
            "repository": self._hook_repository(project),
            "commits": [self._hook_commit(project, c) for c in commits[-20:]],
            "total_commits_count": len(commits),
        }

    @staticmethod
    def webhook(
        event: str, payload: Json, secret: str, *, idempotency_key: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The raw body and the headers GitLab sends with a delivery."""
        body = json.dumps(payload).encode()
        key = idempotency_key or str(uuid.uuid4())
        return body, {
            "Content-Type": "application/json",
            "User-Agent": "GitLab/17.6.0",
            "X-Gitlab-Event": event,
            "X-Gitlab-Token": secret,
            "X-Gitlab-Instance": "https://gitlab.example.com",
            "X-Gitlab-Webhook-UUID": "6f0b5e61-0000-4000-8000-000000000001",
            "X-Gitlab-Event-UUID": str(uuid.uuid4()),
            "Idempotency-Key": key,
        }

    # -- dispatch -----------------------------------------------------------------------
    def _handle(self, request: Request, body: bytes) -> Response:
        method = request.method
        raw_path = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0]
        raw_path = raw_path or request.url.path
        path, query = unquote(raw_path), request.url.query
        with self._lock:
            response = self._answer(
                method, path, lambda: self._route(request, method, raw_path, body)
            )
            self.requests.append(
                Recorded(method, path, raw_path, query, response.status_code, body)
            )
            return response

    def _route(self, request: Request, method: str, raw_path: str, body: bytes) -> Response:
        if request.headers.get("private-token") != self.token:
            raise HTTPError(401, "401 Unauthorized")
        for verb, regex, handler in self._routes:
            match = regex.fullmatch(raw_path)
            if match is None or verb != method:
                continue
            args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
            if "pid" in args:
                args["project"] = self.project(args.pop("pid"))
            payload = _payload(request, body)
            result = handler(request=request, payload=payload, **args)
            if isinstance(result, Response):
                return result
            return JSONResponse(result, status_code=201 if method == "POST" else 200)
        raise HTTPError(404, "404 Not Found")

    def _route_table(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        p = API + r"/projects/(?P<pid>[^/]+)"
        mr = p + r"/merge_requests/(?P<iid>\d+)"
        table: list[tuple[str, str, Handler]] = [
            ("GET", API + r"/user", self._current_user),
            ("GET", API + r"/groups/(?P<gid>[^/]+)/members/all", self._group_members),
            ("GET", p, self._get_project),
            ("GET", p + r"/merge_requests", self._list_mrs),
            ("GET", mr, self._get_mr),
            ("GET", mr + r"/changes", self._mr_changes),
            ("GET", mr + r"/diffs", self._mr_diffs),
            ("GET", mr + r"/versions", self._mr_versions),
            ("GET", mr + r"/approvals", self._mr_approvals),
            ("GET", mr + r"/notes", self._list_notes),
            ("POST", mr + r"/notes", self._create_note),
            ("GET", mr + r"/notes/(?P<note_id>\d+)", self._get_note),
            ("PUT", mr + r"/notes/(?P<note_id>\d+)", self._update_note),
            ("GET", p + r"/repository/files/(?P<file_path>[^/]+)/raw", self._raw_file),
            ("GET", p + r"/repository/blobs/(?P<sha>[0-9a-f]{40})/raw", self._raw_blob),
            ("GET", p + r"/repository/tree", self._tree),
            ("GET", p + r"/repository/compare", self._compare),
            ("GET", p + r"/repository/merge_base", self._merge_base),
            ("GET", p + r"/repository/branches/(?P<branch>[^/]+)", self._get_branch),
            ("POST", p + r"/statuses/(?P<sha>[0-9a-f]{40})", self._create_status),
            ("GET", p + r"/repository/commits/(?P<sha>[^/]+)/statuses", self._list_statuses),
            ("GET", p + r"/repository/commits/(?P<sha>[^/]+)/merge_requests", self._commit_mrs),
            ("GET", p + r"/deployments/(?P<dep_id>\d+)", self._get_deployment),
            ("POST", p + r"/deployments/(?P<dep_id>\d+)/approval", self._approve_deployment),
            ("GET", p + r"/jobs/(?P<job_id>\d+)", self._get_job),
            ("POST", p + r"/jobs/(?P<job_id>\d+)/play", self._play_job),
        ]
        return [(verb, re.compile(rx), fn) for verb, rx, fn in table]

    # -- endpoint handlers ------------------------------------------------------------
    def _current_user(self, **_: Any) -> Json:
        return {**self._user_json(self.bot), "bot": True, "state": "active"}

    def _group_members(self, request: Request, gid: str, **_: Any) -> Response:
        members = self.groups.get(gid)
        if members is None:
            raise HTTPError(404, "404 Group Not Found")
        rows = [{**self._user_json(self.user(m)), "access_level": 30} for m in members]
        return self._paginate(request, rows)

    def _get_project(self, project: Project, **_: Any) -> Json:
        return self._project_json(project)

    def _commit_mrs(self, request: Request, project: Project, sha: str, **_: Any) -> Response:
        """The MRs a commit belongs to: their current head, or the commit they merged as."""
        rows = [
            self._mr_json(project, mr)
            for mr in project.mrs.values()
            if mr.squash_commit_sha == sha
            or (mr.state == "opened" and self._head(project, mr) == sha)
        ]
        return self._paginate(request, rows)

    def _list_mrs(self, request: Request, project: Project, **_: Any) -> Response:
        """`GET /projects/:id/merge_requests?state=opened`, newest first like GitLab."""
        state = request.query_params.get("state", "all")
        rows = [
            self._mr_json(project, self._mr(project, mr.iid))
            for mr in sorted(project.mrs.values(), key=lambda m: -m.iid)
            if state in ("all", mr.state)
        ]
        return self._paginate(request, rows)

    def _get_mr(self, project: Project, iid: str, **_: Any) -> Json:
        return self._mr_json(project, self._mr(project, iid))

    def _mr_changes(self, request: Request, project: Project, iid: str, **_: Any) -> Json:
        mr = self._mr(project, iid)
        out = self._mr_json(project, mr)
        version = mr.versions[-1]
        entries = self._diff(project, version.base, version.head)
        overflow = len(entries) > self.max_diff_files
        out["changes"] = [self._diff_json(e) for e in entries[: self.max_diff_files]]
        out["overflow"] = overflow
        return out

    def _mr_diffs(self, request: Request, project: Project, iid: str, **_: Any) -> Response:
        mr = self._mr(project, iid)
        version = mr.versions[-1]
        entries = self._diff(project, version.base, version.head)
        return self._paginate(request, [self._diff_json(e) for e in entries])

    def _mr_versions(self, request: Request, project: Project, iid: str, **_: Any) -> Response:
        mr = self._mr(project, iid)
        rows = [
            {
                "id": v.id,
                "head_commit_sha": v.head,
                "base_commit_sha": v.base,
                "start_commit_sha": v.start,
                "created_at": iso(v.created),
                "merge_request_id": mr.id,
                "state": "collected",
                "real_size": str(len(self._diff(project, v.base, v.head))),
                "patch_id_sha": None,
            }
            for v in reversed(mr.versions)
        ]
        return self._paginate(request, rows)

    def _mr_approvals(self, project: Project, iid: str, **_: Any) -> Json:
        mr = self._mr(project, iid)
        return {
            "id": mr.id,
            "iid": mr.iid,
            "project_id": project.id,
            "title": mr.title,
            "description": mr.description,
            "state": mr.state,
            "created_at": iso(mr.created),
            "updated_at": iso(),
            "merge_status": "can_be_merged",
            "approved": bool(mr.approved_by),
            "approvals_required": 0,
            "approvals_left": 0,
            "require_password_to_approve": False,
            "approved_by": [{"user": self._user_json(self.user(u))} for u in mr.approved_by],
            "suggested_approvers": [],
            "approvers": [],
            "approver_groups": [],
            "user_has_approved": False,
            "user_can_approve": True,
            "approval_rules_left": [],
            "has_approval_rules": False,
            "merge_request_approvers_available": False,
            "multiple_approval_rules_available": False,
        }

    def _list_notes(self, request: Request, project: Project, iid: str, **_: Any) -> Response:
        mr = self._mr(project, iid)
        q = request.query_params
        order = q.get("order_by", "created_at")
        key = (lambda n: (n.updated, n.id)) if order == "updated_at" else (lambda n: n.id)
        notes = sorted(mr.notes, key=key, reverse=q.get("sort", "desc") != "asc")
        return self._paginate(request, [self._note_json(project, mr, n) for n in notes])

    def _create_note(self, project: Project, iid: str, payload: Json, **_: Any) -> Json:
        mr = self._mr(project, iid)
        body = str(payload.get("body") or "")
        if not body.strip():
            raise HTTPError(400, '400 Bad request - Note {:note=>["can\'t be blank"]}')
        note = self._add_note(mr, body, self.bot.username, system=False)
        return self._note_json(project, mr, note)

    def _get_note(self, project: Project, iid: str, note_id: str, **_: Any) -> Json:
        mr = self._mr(project, iid)
        return self._note_json(project, mr, self._note(mr, note_id))

    def _update_note(
        self, project: Project, iid: str, note_id: str, payload: Json, **_: Any
    ) -> Json:
        mr = self._mr(project, iid)
        note = self._note(mr, note_id)
        if note.author != self.bot.username:
            raise HTTPError(403, "403 Forbidden")
        if "body" in payload:
            note.body = str(payload["body"])
            note.updated = time.time()
        return self._note_json(project, mr, note)

    def _raw_file(self, request: Request, project: Project, file_path: str, **_: Any) -> Response:
        ref = request.query_params.get("ref") or project.default_branch
        commit = project.git.resolve(ref)
        found = project.git.file_at(commit, file_path) if commit else None
        if found is None or commit is None:
            raise HTTPError(404, "404 File Not Found")
        sha, data = found
        headers = {
            "X-Gitlab-Blob-Id": sha,
            "X-Gitlab-Commit-Id": commit,
            "X-Gitlab-Encoding": "base64",
            "X-Gitlab-File-Name": file_path.rsplit("/", 1)[-1],
            "X-Gitlab-File-Path": file_path,
            "X-Gitlab-Ref": ref,
            "X-Gitlab-Size": str(len(data)),
            "Cache-Control": "max-age=0, private, must-revalidate, no-store, no-cache",
        }
        return Response(data, media_type="text/plain; charset=utf-8", headers=headers)

    def _raw_blob(self, project: Project, sha: str, **_: Any) -> Response:
        data = project.git.blob(sha)
        if data is None:
            raise HTTPError(404, "404 Blob Not Found")
        return Response(data, media_type="text/plain; charset=utf-8")

    def _tree(self, request: Request, project: Project, **_: Any) -> Response:
        q = request.query_params
        ref = q.get("ref") or project.default_branch
        commit = project.git.resolve(ref)
        if commit is None:
            raise HTTPError(404, "404 Tree Not Found")
        recursive = q.get("recursive", "false").lower() == "true"
        prefix = (q.get("path") or "").strip("/")
        if prefix and project.git.object_type(f"{commit}:{prefix}") != "tree":
            raise HTTPError(404, "404 Tree Not Found")
        rows = []
        for e in project.git.tree(f"{commit}:{prefix}" if prefix else commit, recursive=recursive):
            path = f"{prefix}/{e.path}" if prefix else e.path  # the entries of that directory
            rows.append(
                {
                    "id": e.sha,
                    "name": path.rsplit("/", 1)[-1],
                    "type": e.type,
                    "path": path,
                    "mode": e.mode,
                }
            )
        return self._paginate(request, rows)

    def _compare(self, request: Request, project: Project, **_: Any) -> Json:
        q = request.query_params
        start, end = project.git.resolve(q.get("from", "")), project.git.resolve(q.get("to", ""))
        if start is None or end is None:
            raise HTTPError(404, "404 Ref Not Found")
        straight = q.get("straight", "false").lower() == "true"
        base = start if straight else (project.git.merge_base(start, end) or start)
        entries = self._diff(project, base, end)
        commits = project.git.commits_between(base, end)
        return {
            "commit": self._commit_json(project, end) if commits else None,
            "commits": [self._commit_json(project, c) for c in reversed(commits)],
            "diffs": [self._diff_json(e) for e in entries[: self.max_diff_files]],
            "compare_timeout": False,
            "compare_same_ref": start == end,
            "web_url": f"{self.url}/{project.path}/-/compare/{start}...{end}",
        }

    def _merge_base(self, request: Request, project: Project, **_: Any) -> Json:
        refs = request.query_params.getlist("refs[]")
        shas = [project.git.resolve(ref) for ref in refs]
        if len(shas) < 2 or None in shas:
            raise HTTPError(400, "400 Bad request - Provide at least 2 refs")
        found = project.git.merge_base(str(shas[0]), str(shas[1]))
        if found is None:
            raise HTTPError(404, "404 Merge Base Not Found")
        return self._commit_json(project, found)

    def _get_branch(self, project: Project, branch: str, **_: Any) -> Json:
        name = branch
        sha = project.git.branch_sha(name)
        if sha is None:
            raise HTTPError(404, "404 Branch Not Found")
        return {
            "name": name,
            "merged": False,
            "protected": name == project.default_branch,
            "default": name == project.default_branch,
            "developers_can_push": False,
            "developers_can_merge": False,
            "can_push": True,
            "web_url": f"https://gitlab.example.com/{project.path}/-/tree/{name}",
            "commit": self._commit_json(project, sha),
        }

    def _create_status(self, project: Project, sha: str, payload: Json, **_: Any) -> Json:
        state = str(payload.get("state") or "")
        if state not in ("pending", "running", "success", "failed", "canceled", "skipped"):
            raise HTTPError(400, "400 Bad request - state does not have a valid value")
        if project.git.object_type(sha) != "commit":
            raise HTTPError(404, "404 Commit Not Found")
        name = str(payload.get("name") or payload.get("context") or "default")
        ref = payload.get("ref")
        description = payload.get("description")
        if description is not None and len(str(description)) > 255:
            raise HTTPError(400, "400 Bad request - description is too long (maximum is 255)")
        current = next(
            (
                s
                for s in reversed(project.statuses)
                if s.sha == sha and s.name == name and s.state in ("created", "pending", "running")
            ),
            None,
        )
        if current is None:
            current = Status(
                next(self._ids),
                sha,
                ref,
                name,
                "created",
                None,
                None,
                self.bot.username,
                time.time(),
            )
            project.statuses.append(current)
        event = {
            "pending": "enqueue",
            "running": "run",
            "success": "succeed",
            "failed": "drop",
            "canceled": "cancel",
            "skipped": "skip",
        }[state]
        allowed = {
            "pending": {"created"},
            "running": {"created", "pending"},
        }.get(state, {"created", "pending", "running"})
        if current.state not in allowed:
            raise HTTPError(
                400,
                f"Cannot transition status via :{event} from :{current.state} "
                f'(Reason(s): Status cannot transition via "{event}")',
            )
        current.state = state
        current.target_url = payload.get("target_url") or current.target_url
        current.description = description if description is not None else current.description
        current.history.append(state)
        return self._status_json(project, current)

    def _list_statuses(self, request: Request, project: Project, sha: str, **_: Any) -> Response:
        q = request.query_params
        rows = [
            self._status_json(project, s)
            for s in reversed(project.statuses)
            if s.sha == sha and q.get("name") in (None, s.name) and q.get("ref") in (None, s.ref)
        ]
        return self._paginate(request, rows)

    def _get_deployment(self, project: Project, dep_id: str, **_: Any) -> Json:
        dep = project.deployments.get(int(dep_id))
        if dep is None:
            raise HTTPError(404, "404 Not found")
        return self._deployment_json(project, dep)

    def _approve_deployment(self, project: Project, dep_id: str, payload: Json, **_: Any) -> Json:
        dep = project.deployments.get(int(dep_id))
        if dep is None:
            raise HTTPError(404, "404 Not found")
        if dep.status != "blocked":
            raise HTTPError(400, "Deployment is not blocked")
        row = {
            "user": self._user_json(self.bot),
            "status": payload.get("status"),
            "created_at": iso(),
            "comment": payload.get("comment"),
            "represented_as": payload.get("represented_as"),
        }
        dep.approvals.append(row)
        return row

    def _get_job(self, project: Project, job_id: str, **_: Any) -> Json:
        job = project.jobs.get(int(job_id))
        if job is None:
            raise HTTPError(404, "404 Not found")
        return self._job_json(project, job)

    def _play_job(self, project: Project, job_id: str, **_: Any) -> Json:
        job = project.jobs.get(int(job_id))
        if job is None:
            raise HTTPError(404, "404 Not found")
        if job.status != "manual":
            raise HTTPError(400, "400 Bad request - Unplayable Job")
        job.status = "pending"
        job.played_by = self.bot.username
        return self._job_json(project, job)

    # -- pagination ---------------------------------------------------------------------
    def _paginate(self, request: Request, items: list[Any]) -> Response:
        q = request.query_params
        per_page = max(1, min(int(q.get("per_page", 20)), 100))
        page = max(1, int(q.get("page", 1)))
        pages = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        params = [(k, v) for k, v in parse_qsl(request.url.query) if k != "page"]
        raw_path = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0]

        def link(n: int, rel: str) -> str:
            return f'<{self.url}{raw_path}?{urlencode([*params, ("page", str(n))])}>; rel="{rel}"'

        links = []
        if page > 1:
            links.append(link(page - 1, "prev"))
        if page < pages:
            links.append(link(page + 1, "next"))
        links += [link(1, "first"), link(pages, "last")]
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
            "X-Total": str(len(items)),
            "X-Total-Pages": str(pages),
            "Link": ", ".join(links),
        }
        return JSONResponse(chunk, headers=headers)

    # -- model helpers ------------------------------------------------------------------
    def _mr(self, project: Project, iid: str | int) -> MergeRequest:
        mr = project.mrs.get(int(iid))
        if mr is None:
            raise HTTPError(404, "404 Not found")
        self._sync_versions(project, mr)
        return mr

    def _note(self, mr: MergeRequest, note_id: str) -> Note:
        note = next((n for n in mr.notes if n.id == int(note_id)), None)
        if note is None:
            raise HTTPError(404, "404 Not found")
        return note

    def _diff(self, project: Project, base: str, head: str) -> list[Any]:
        """git diff of two commits; immutable, so computed once."""
        key = (str(project.git.path), base, head)
        if key not in self._diffs:
            self._diffs[key] = project.git.diff(base, head)
        return self._diffs[key]

    def _head(self, project: Project, mr: MergeRequest) -> str:
        sha = project.git.branch_sha(mr.source_branch)
        if sha is None:
            raise HTTPError(404, f"source branch {mr.source_branch} is gone")
        return sha

    def _sync_versions(self, project: Project, mr: MergeRequest) -> None:
        """A new MR diff version whenever the source branch moved (GitLab does it on push)
        or the merge base did (a new target branch)."""
        if mr.state != "opened":
            return
        head = self._head(project, mr)
        target = project.git.branch_sha(mr.target_branch) or head
        base = project.git.merge_base(target, head) or target
        if mr.versions and mr.versions[-1].head == head and mr.versions[-1].base == base:
            return
        mr.versions.append(Version(next(self._ids), head, base, target, time.time()))

    def _add_note(self, mr: MergeRequest, body: str, author: str, *, system: bool) -> Note:
        now = time.time()
        note = Note(next(self._ids), body, author, system, now, now)
        mr.notes.append(note)
        return note

    # -- JSON shapes ----------------------------------------------------------------
    def _user_json(self, user: User) -> Json:
        return {
            "id": user.id,
            "username": user.username,
            "name": user.name,
            "state": "active",
            "locked": False,
            "avatar_url": None,
            "web_url": f"{self.url}/{user.username}",
        }

    def _namespace_json(self, project: Project) -> Json:
        full = project.namespace
        return {
            "id": abs(hash(full)) % 10_000,
            "name": full.rsplit("/", 1)[-1],
            "path": full.rsplit("/", 1)[-1],
            "kind": "group",
            "full_path": full,
            "parent_id": None,
            "web_url": f"{self.url}/groups/{full}",
        }

    def _project_json(self, project: Project) -> Json:
        return {
            "id": project.id,
            "description": "",
            "name": project.name,
            "name_with_namespace": " / ".join(project.path.split("/")),
            "path": project.name,
            "path_with_namespace": project.path,
            "created_at": iso(1_700_000_000),
            "default_branch": project.default_branch,
            "tag_list": [],
            "topics": [],
            "ssh_url_to_repo": f"git@127.0.0.1:{project.path}.git",
            "http_url_to_repo": f"{self.url}/{project.path}.git",
            "web_url": f"{self.url}/{project.path}",
            "readme_url": None,
            "visibility": "private",
            "namespace": self._namespace_json(project),
            "archived": False,
            "empty_repo": project.git.branch_sha(project.default_branch) is None,
            "_links": {"self": f"{self.url}{API}/projects/{project.id}"},
        }

    def _mr_json(self, project: Project, mr: MergeRequest) -> Json:
        version = mr.versions[-1] if mr.versions else None
        head = version.head if version else self._head(project, mr)
        count = len(self._diff(project, version.base, version.head)) if version else 0
        changes_count = f"{self.max_diff_files}+" if count > self.max_diff_files else str(count)
        author = self.user(mr.author)
        return {
            "id": mr.id,
            "iid": mr.iid,
            "project_id": project.id,
            "title": mr.title,
            "description": mr.description,
            "state": mr.state,
            "created_at": iso(mr.created),
            "updated_at": iso(),
            "merged_by": self._user_json(author) if mr.merged_at is not None else None,
            "merged_at": iso(mr.merged_at) if mr.merged_at is not None else None,
            "closed_by": None,
            "closed_at": None,
            "target_branch": mr.target_branch,
            "source_branch": mr.source_branch,
            "user_notes_count": len([n for n in mr.notes if not n.system]),
            "upvotes": 0,
            "downvotes": 0,
            "author": self._user_json(author),
            "assignees": [],
            "assignee": None,
            "reviewers": [],
            "source_project_id": project.id,
            "target_project_id": project.id,
            "labels": list(mr.labels),
            "draft": mr.draft,
            "work_in_progress": mr.draft,
            "milestone": None,
            "merge_when_pipeline_succeeds": False,
            "merge_status": "can_be_merged",
            "detailed_merge_status": "mergeable",
            "sha": head,
            "merge_commit_sha": None,
            "squash_commit_sha": mr.squash_commit_sha,
            "discussion_locked": None,
            "should_remove_source_branch": None,
            "force_remove_source_branch": False,
            "reference": f"!{mr.iid}",
            "references": {
                "short": f"!{mr.iid}",
                "relative": f"!{mr.iid}",
                "full": f"{project.path}!{mr.iid}",
            },
            "web_url": f"{self.url}/{project.path}/-/merge_requests/{mr.iid}",
            "squash": False,
            "has_conflicts": False,
            "blocking_discussions_resolved": True,
            "changes_count": changes_count,
            "diff_refs": {
                "base_sha": version.base if version else None,
                "head_sha": head,
                "start_sha": version.start if version else None,
            },
            "first_contribution": False,
            "user": {"can_merge": True},
        }

    @staticmethod
    def _diff_json(e: Any) -> Json:
        return {
            "old_path": e.old_path or e.path,
            "new_path": e.path,
            "a_mode": "0" if e.status == "A" else "100644",
            "b_mode": "0" if e.status == "D" else "100644",
            "new_file": e.status in "AC",
            "renamed_file": e.status == "R",
            "deleted_file": e.status == "D",
            "generated_file": False,
            "diff": f"@@ -1 +1 @@\n-{e.deletions} lines\n+{e.additions} lines\n",
        }

    def _commit_json(self, project: Project, sha: str) -> Json:
        info = project.git.commit_info(sha)
        title = info.message.split("\n", 1)[0]
        return {
            "id": sha,
            "short_id": sha[:8],
            "title": title,
            "message": info.message,
            "author_name": info.author_name,
            "author_email": info.author_email,
            "authored_date": iso(info.timestamp),
            "committer_name": info.author_name,
            "committer_email": info.author_email,
            "committed_date": iso(info.timestamp),
            "created_at": iso(info.timestamp),
            "parent_ids": list(info.parents),
            "web_url": f"{self.url}/{project.path}/-/commit/{sha}",
        }

    def _note_json(self, project: Project, mr: MergeRequest, note: Note) -> Json:
        return {
            "id": note.id,
            "type": None,
            "body": note.body,
            "attachment": None,
            "author": self._user_json(self.user(note.author)),
            "created_at": iso(note.created),
            "updated_at": iso(note.updated),
            "system": note.system,
            "noteable_id": mr.id,
            "noteable_type": "MergeRequest",
            "project_id": project.id,
            "noteable_iid": mr.iid,
            "resolvable": False,
            "confidential": False,
            "internal": False,
            "imported": False,
            "imported_from": "none",
        }

    def _status_json(self, project: Project, s: Status) -> Json:
        return {
            "id": s.id,
            "sha": s.sha,
            "ref": s.ref,
            "status": s.state,
            "name": s.name,
            "target_url": s.target_url,
            "description": s.description,
            "created_at": iso(s.created),
            "started_at": iso(s.created) if s.state != "created" else None,
            "finished_at": iso() if s.state in ("success", "failed", "canceled") else None,
            "allow_failure": False,
            "coverage": None,
            "pipeline_id": None,
            "author": self._user_json(self.user(s.author)),
        }

    def _job_json(self, project: Project, job: Job) -> Json:
        return {
            "id": job.id,
            "name": job.name,
            "stage": job.stage,
            "status": job.status,
            "ref": job.ref,
            "tag": False,
            "allow_failure": False,
            "created_at": iso(),
            "started_at": None,
            "finished_at": None,
            "user": self._user_json(self.user(job.played_by or "dev")),
            "commit": self._commit_json(project, job.sha),
            "pipeline": {
                "id": job.pipeline_id,
                "project_id": project.id,
                "ref": job.ref,
                "sha": job.sha,
                "status": "manual",
            },
            "web_url": f"{self.url}/{project.path}/-/jobs/{job.id}",
            "environment": {"name": job.environment} if job.environment else None,
        }

    def _deployment_json(self, project: Project, dep: Deployment) -> Json:
        job = project.jobs.get(dep.job_id) if dep.job_id else None
        return {
            "id": dep.id,
            "iid": dep.iid,
            "ref": dep.ref,
            "sha": dep.sha,
            "created_at": iso(),
            "updated_at": iso(),
            "status": dep.status,
            "user": self._user_json(self.user(dep.user)),
            "environment": {
                "id": abs(hash(dep.environment)) % 10_000,
                "name": dep.environment,
                "slug": dep.environment,
                "external_url": None,
                "tier": dep.environment if dep.environment in ("production", "staging") else None,
            },
            "deployable": self._job_json(project, job) if job else None,
            "pending_approval_count": 1 if dep.status == "blocked" else 0,
            "approvals": dep.approvals,
        }

    # -- webhook helpers (URLs in payloads point at a made-up host on purpose: they must never
    #    be followed, and a forge that did would fail loudly) ---------------------------------
    @staticmethod
    def _hook_user(user: User) -> Json:
        return {
            "id": user.id,
            "name": user.name,
            "username": user.username,
            "avatar_url": None,
            "email": "[REDACTED]",
        }

    @staticmethod
    def _hook_project(project: Project) -> Json:
        web = f"https://gitlab.example.com/{project.path}"
        return {
            "id": project.id,
            "name": project.name,
            "description": "",
            "web_url": web,
            "avatar_url": None,
            "git_ssh_url": f"git@gitlab.example.com:{project.path}.git",
            "git_http_url": f"{web}.git",
            "namespace": project.namespace,
            "visibility_level": 0,
            "path_with_namespace": project.path,
            "default_branch": project.default_branch,
            "ci_config_path": "",
            "homepage": web,
            "url": f"git@gitlab.example.com:{project.path}.git",
            "ssh_url": f"git@gitlab.example.com:{project.path}.git",
            "http_url": f"{web}.git",
        }

    @staticmethod
    def _hook_repository(project: Project) -> Json:
        web = f"https://gitlab.example.com/{project.path}"
        return {
            "name": project.name,
            "url": f"git@gitlab.example.com:{project.path}.git",
            "description": "",
            "homepage": web,
            "git_http_url": f"{web}.git",
            "git_ssh_url": f"git@gitlab.example.com:{project.path}.git",
            "visibility_level": 0,
        }

    @staticmethod
    def _hook_commit(project: Project, sha: str) -> Json:
        info = project.git.commit_info(sha)
        return {
            "id": sha,
            "message": info.message,
            "title": info.message.split("\n", 1)[0],
            "timestamp": iso(info.timestamp),
            "url": f"https://gitlab.example.com/{project.path}/-/commit/{sha}",
            "author": {"name": info.author_name, "email": info.author_email},
        }

    def __iter__(self) -> Iterator[Project]:
        return iter(list(self.projects.values()))


def _payload(request: Request, body: bytes) -> Json:
    """python-gitlab sends JSON bodies; curl-style form bodies and query strings also work."""
    out: Json = dict(request.query_params)
    if not body:
        return out
    if request.headers.get("content-type", "").startswith("application/json"):
        data = json.loads(body)
        if isinstance(data, dict):
            out.update(data)
        return out
    out.update(dict(parse_qsl(body.decode("utf-8", "replace"))))
    return out


def encoded(path: str) -> str:
    """A project or file path the way GitLab wants it in a URL: every `/` as `%2F`."""
    return quote(path, safe="")
