"""A local GitHub REST API stand-in: the endpoints changegate uses, backed by real git repos.

It speaks GitHub's JSON shapes closely enough for the real PyGithub client, builds every URL
it returns (`url` fields, `Link` pagination) from its own base URL as PyGithub demands, checks
the App JWT with the App's public key and installation tokens on every call, records every
request and check run, and returns injected faults (401, 404, 422, 5xx, rate limits) on cue.

    private_pem, public_pem = app_key_pair()
    with GitHubStandIn(app_id=7, public_key=public_pem) as gh:
        repo = gh.add_repo("acme/app", GitRepo(tmp / "app"), installation_id=1)
        pull = gh.open_pull("acme/app", head="feature", title="Pin images")
        body, headers = gh.webhook("pull_request", gh.pull_request_payload(...), secret)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from standins import contract
from standins.gitrepo import ZERO_SHA, GitRepo
from standins.server import HTTPError, StandIn

Json = dict[str, Any]
FORM = "application/x-www-form-urlencoded"


def iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def app_key_pair(
    private_format: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8,
) -> tuple[str, str]:
    """A new RSA key pair for a test GitHub App, as (private PEM, public PEM): the App signs
    its JWTs with the private key, the stand-in checks them with the public one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, private_format, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: str
    status: int


@dataclass
class Pull:
    number: int
    head_ref: str
    base_ref: str
    title: str
    body: str | None
    author: str
    draft: bool = False
    state: str = "open"
    labels: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    merged_at: float | None = None
    merge_commit_sha: str | None = None


@dataclass
class Review:
    id: int
    user: str
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED
    commit_id: str
    body: str
    submitted: float


@dataclass
class CheckRun:
    id: int
    repo: str
    name: str
    head_sha: str
    app_id: int
    status: str = "queued"
    conclusion: str | None = None
    details_url: str | None = None
    external_id: str | None = None
    title: str | None = None
    summary: str | None = None
    text: str | None = None
    annotations: list[Json] = field(default_factory=list)
    started_at: str | None = None
    completed_at: str | None = None
    history: list[Json] = field(default_factory=list)  # every POST/PATCH body, in order


@dataclass
class WorkflowRun:
    """A GitHub Actions run: `actor` started it (first attempt), `triggering_actor` started
    the attempt that runs now (a re-run); a deployment it creates is the App's or bot's."""

    id: int
    repo: str
    head_sha: str
    actor: str
    triggering_actor: str
    event: str = "push"
    head_branch: str = "main"


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    git: GitRepo
    installation_id: int
    private: bool = True
    pulls: dict[int, Pull] = field(default_factory=dict)
    reviews: dict[int, list[Review]] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def default_branch(self) -> str:
        return self.git.default_branch


Handler = Callable[..., Any]


class GitHubStandIn(StandIn[Recorded]):
    """The stand-in server. Start it with `with` (or start()/stop())."""

    NAME = "GitHub stand-in"
    FAULT_MESSAGES = {
        401: "Bad credentials",
        403: "API rate limit exceeded for installation ID 1.",
        404: "Not Found",
        422: "Validation Failed",
        429: "You have exceeded a secondary rate limit.",
    }
    FAULT_FALLBACK = "Server Error"

    def __init__(
        self,
        app_id: int,
        public_key: str | bytes,
        *,
        host: str = "127.0.0.1",
        latency: float = 0.0,
    ) -> None:
        # latency: seconds added to every answer (GitHub takes ~50 ms)
        super().__init__(host=host, latency=latency, methods=_METHODS)
        self.app_id = app_id
        self.app_slug = "changegate"
        self.public_key = public_key
        self.repos: dict[str, Repo] = {}
        self.teams: dict[tuple[str, str], list[str]] = {}
        self.check_runs: dict[int, CheckRun] = {}
        self.workflow_runs: dict[int, WorkflowRun] = {}
        self.gate_answers: list[Json] = []
        self.hook_deliveries: list[Json] = []  # newest first, as GitHub lists them
        self.hook_payloads: dict[int, tuple[bytes, dict[str, str]]] = {}  # id -> body, headers
        self.hook_url: str | None = None  # where redeliveries are POSTed, when set
        self.redelivery_status = 200  # status recorded for a redelivery when hook_url is unset
        self.redelivered: list[int] = []  # delivery ids a redelivery was asked for, in order
        self.tokens: dict[str, tuple[int, float]] = {}  # token -> (installation id, expiry)
        self.token_ttl = 3600.0
        # the App's user web flow ("Sign in with GitHub"): client id -> secret, who GitHub
        # thinks is at the browser (None: they click "Cancel"), codes and user tokens
        self.oauth_apps: dict[str, str] = {}
        self.signed_in_user: str | None = None
        self.oauth_codes: dict[str, tuple[str, str, float]] = {}  # code -> client, login, expiry
        self.user_tokens: dict[str, str] = {}  # user access token -> login
        # GitHub cuts a tree listing at 100,000 entries (and 7 MB), saying `truncated`
        self.tree_entry_limit = 100_000
        # the App manifest flow: codes GitHub handed to the browser, Apps created from them
        self.manifest_codes: dict[
            str, tuple[Json, str, float]
        ] = {}  # code -> manifest, owner, expiry
        self.created_apps: list[Json] = []  # conversion answers, pem and secrets included
        self.manifest_owner = "octocat"  # who is signed in to the stand-in's github.com
        self._ids = itertools.count(1000)
        self._routes = self._route_table()

    def reset(self) -> None:
        """Forget every repository, team, run, fault and recorded request (a fresh GitHub)."""
        with self._lock:
            self.repos.clear()
            self.teams.clear()
            self.check_runs.clear()
            self.workflow_runs.clear()
            self.gate_answers.clear()
            self.hook_deliveries.clear()
            self.hook_payloads.clear()
            self.redelivered.clear()
            self.hook_url = None
            self.redelivery_status = 200
            self.requests.clear()
            self.faults.clear()
            self.tokens.clear()
            self.oauth_apps.clear()
            self.signed_in_user = None
            self.oauth_codes.clear()
            self.user_tokens.clear()
            self.tree_entry_limit = 100_000
            self.manifest_codes.clear()
            self.created_apps.clear()

    # -- test set-up ------------------------------------------------------------------
    def add_oauth_app(self, client_id: str, client_secret: str) -> None:
        """The App's client credentials, for its user web flow."""
        self.oauth_apps[client_id] = client_secret

    def add_workflow_run(
        self, full_name: str, run_id: int, head_sha: str, actor: str,
        triggering_actor: str | None = None, event: str = "push",
    ) -> WorkflowRun:  # fmt: skip
        run = WorkflowRun(run_id, full_name.lower(), head_sha, actor, triggering_actor or actor,
                          event)  # fmt: skip
        self.workflow_runs[run_id] = run
        return run

    def add_repo(
        self, full_name: str, git: GitRepo, *, installation_id: int = 1, private: bool = True
    ) -> Repo:
        owner, name = full_name.split("/")
        repo = Repo(next(self._ids), owner, name, git, installation_id, private)
        self.repos[full_name.lower()] = repo
        return repo

    def open_pull(
        self,
        full_name: str,
        head: str,
        base: str | None = None,
        *,
        title: str = "A change",
        body: str | None = "",
        author: str = "dev",
        draft: bool = False,
        labels: list[str] | None = None,
    ) -> Pull:
        repo = self._repo(full_name)
        number = max([0, *repo.pulls]) + 1
        pull = Pull(number, head, base or repo.default_branch, title, body, author, draft)
        pull.labels = list(labels or [])
        repo.pulls[number] = pull
        return pull

    def merge_pull(self, full_name: str, number: int) -> str:
        """Squash-merge a pull request into its base branch (GitHub's default message:
        the title and number, no body); returns the merge commit's SHA."""
        repo = self._repo(full_name)
        pull = repo.pulls[number]
        message = f"{pull.title} (#{pull.number})"
        sha = repo.git.squash_merge(pull.base_ref, self._head_sha(repo, pull), message)
        pull.state, pull.merged_at, pull.merge_commit_sha = "closed", time.time(), sha
        return sha

    def queue_pulls(
        self,
        full_name: str,
        numbers: list[int],
        *,
        also: dict[str, str | None] | None = None,
        sender: str = "dev",
    ) -> Json:
        """GitHub's merge queue: a `gh-readonly-queue/<base>/pr-<last>-<base sha>` branch
        with each pull request squash-merged on top of its base in turn (`Title (#N)`, as
        the queue writes them), and `also` committed on top (a change no request brought).
        Returns the `merge_group` `checks_requested` payload GitHub sends."""
        repo = self._repo(full_name)
        pulls = [repo.pulls[n] for n in numbers]
        base_ref = pulls[0].base_ref
        base_sha = self._base_sha(repo, pulls[0])
        branch = f"gh-readonly-queue/{base_ref}/pr-{numbers[-1]}-{base_sha}"
        repo.git.branch(branch, base_sha)
        for pull in pulls:
            message = f"{pull.title} (#{pull.number})"
            repo.git.squash_merge(branch, self._head_sha(repo, pull), message)
        if also:
            repo.git.commit(branch, also, "queue: one more thing")
        head = repo.git.branch_sha(branch) or ""
        commit = self._push_commit(repo, head)
        for key in ("url", "added", "removed", "modified"):
            commit.pop(key)
        return {
            "action": "checks_requested",
            "merge_group": {
                "head_sha": head,
                "head_ref": f"refs/heads/{branch}",
                "base_sha": base_sha,
                "base_ref": f"refs/heads/{base_ref}",
                "head_commit": commit,
            },
            "repository": self._repo_json(repo),
            "organization": self._user_json(repo.owner, "Organization"),
            "installation": {"id": repo.installation_id, "node_id": f"MDIz{repo.installation_id}"},
            "sender": self._user_json(sender),
        }

    def retarget_pull(self, full_name: str, number: int, base: str) -> Json:
        """Change a pull request's base branch, as its author can in the UI; returns the
        `pull_request` `edited` payload GitHub sends, with `changes.base`."""
        repo = self._repo(full_name)
        pull = repo.pulls[number]
        old_ref, old_sha = pull.base_ref, self._base_sha(repo, pull)
        pull.base_ref = base
        payload = self.pull_request_payload(full_name, number, "edited")
        payload["changes"] = {"base": {"ref": {"from": old_ref}, "sha": {"from": old_sha}}}
        return payload

    def add_review(
        self,
        full_name: str,
        number: int,
        user: str,
        state: str = "APPROVED",
        *,
        commit_id: str | None = None,
        body: str = "",
    ) -> Review:
        repo = self._repo(full_name)
        pull = repo.pulls[number]
        review = Review(
            next(self._ids),
            user,
            state,
            commit_id or self._head_sha(repo, pull),
            body,
            time.time(),
        )
        repo.reviews.setdefault(number, []).append(review)
        return review

    def rate_limit(self, path: str, *, reset_in: int = 1, method: str = "*") -> None:
        """A primary rate limit: 403 with x-ratelimit-remaining 0 until the reset time."""
        reset = int(time.time()) + reset_in
        self.fail(
            method,
            path,
            403,
            headers={
                "x-ratelimit-limit": "5000",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(reset),
            },
        )

    def runs_for(self, full_name: str, head_sha: str | None = None) -> list[CheckRun]:
        return [
            r
            for r in self.check_runs.values()
            if r.repo == full_name.lower() and (head_sha is None or r.head_sha == head_sha)
        ]

    def add_hook_delivery(
        self,
        guid: str,
        event: str,
        status_code: int,
        *,
        action: str | None = None,
        delivered_at: float | None = None,
        redelivery: bool = False,
        installation_id: int | None = None,
        repository_id: int | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Json:
        """One attempt in the App's delivery log (`GET /app/hook/deliveries`), listed first:
        GitHub lists the newest attempt first. `body`/`headers` are what a redelivery
        POSTs to `hook_url`."""
        with self._lock:
            item: Json = {
                "id": next(self._ids),
                "guid": guid,
                "delivered_at": iso(delivered_at),
                "redelivery": redelivery,
                "duration": 0.27,
                "status": "OK" if 200 <= status_code < 300 else _STATUS_TEXT.get(status_code, ""),
                "status_code": status_code,
                "event": event,
                "action": action,
                "installation_id": installation_id,
                "repository_id": repository_id,
                "throttled_at": None,
            }
            self.hook_deliveries.insert(0, item)
            if body is not None:
                self.hook_payloads[item["id"]] = (body, dict(headers or {}))
            return item

    # -- webhook payloads -----------------------------------------------------------
    def pull_request_payload(
        self, full_name: str, number: int, action: str = "opened", *, sender: str | None = None
    ) -> Json:
        repo = self._repo(full_name)
        pull = repo.pulls[number]
        return {
            "action": action,
            "number": number,
            "pull_request": self._pull_json(repo, pull),
            "repository": self._repo_json(repo),
            "organization": self._user_json(repo.owner, "Organization"),
            "installation": {"id": repo.installation_id, "node_id": f"MDIz{repo.installation_id}"},
            "sender": self._user_json(sender or pull.author),
        }

    def review_payload(
        self, full_name: str, number: int, review: Review, action: str = "submitted"
    ) -> Json:
        payload = self.pull_request_payload(full_name, number, action, sender=review.user)
        payload.pop("number")
        payload["review"] = self._review_json(self._repo(full_name), number, review)
        return payload

    def push_payload(
        self, full_name: str, branch: str, before: str, after: str, *, pusher: str = "dev"
    ) -> Json:
        repo = self._repo(full_name)
        deleted = after == ZERO_SHA
        commits = [] if deleted or before == ZERO_SHA else repo.git.commits_between(before, after)
        return {
            "ref": f"refs/heads/{branch}",
            "before": before,
            "after": after,
            "created": before == ZERO_SHA,
            "deleted": deleted,
            "forced": False,
            "compare": f"https://github.com/{repo.full_name}/compare/{before[:12]}...{after[:12]}",
            "commits": [self._push_commit(repo, c) for c in commits],
            "head_commit": None if deleted else self._push_commit(repo, after),
            "repository": self._repo_json(repo),
            "pusher": {"name": pusher, "email": f"{pusher}@example.com"},
            "sender": self._user_json(pusher),
            "installation": {"id": repo.installation_id},
        }

    def check_run_payload(self, run_id: int, action: str = "rerequested") -> Json:
        run = self.check_runs[run_id]
        repo = self._repo(run.repo)
        pulls = [
            {"number": p.number, "head": {"sha": run.head_sha}, "base": {"ref": p.base_ref}}
            for p in repo.pulls.values()
            if p.state == "open" and self._head_sha(repo, p) == run.head_sha
        ]
        body = self._check_run_json(run)
        body["pull_requests"] = pulls
        branches = (
            repo.git.git(
                "for-each-ref",
                "--points-at",
                run.head_sha,
                "--format=%(refname:short)",
                "refs/heads/",
            )
            .decode()
            .split()
        )
        body["check_suite"] = {  # the suite names the branch its commit was pushed to
            **body["check_suite"],
            "head_sha": run.head_sha,
            "head_branch": branches[0] if branches else None,
        }
        return {
            "action": action,
            "check_run": body,
            "repository": self._repo_json(repo),
            "installation": {"id": repo.installation_id},
            "sender": self._user_json("dev"),
        }

    @staticmethod
    def webhook(
        event: str, payload: Json, secret: str, *, delivery: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """A correctly signed delivery: the raw body and the headers GitHub sends."""
        body = json.dumps(payload).encode()
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return body, {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/standin",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-GitHub-Hook-ID": "1",
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-Hub-Signature-256": f"sha256={digest}",
        }

    # -- dispatch -----------------------------------------------------------------------
    def _handle(self, request: Request, body: bytes) -> Response:
        method, path, query = request.method, request.url.path, request.url.query
        refused = contract.github().problems(method, path, body)
        for problem in refused:
            contract.record(f"GitHub stand-in: {problem}")
        with self._lock:
            if refused:  # GitHub: 404 for a route it does not have, 422 for a bad body
                status = 404 if contract.NO_SUCH_ROUTE in refused[0] else 422
                message = "Not Found" if status == 404 else "Invalid request."
                response = JSONResponse(
                    self._error_body(HTTPError(status, f"{message}\n\n" + "\n".join(refused))),
                    status_code=status,
                )
            else:
                response = self._answer(
                    method, path, lambda: self._route(request, method, path, body)
                )
            self.requests.append(Recorded(method, path, query, response.status_code))
            return response

    def _error_body(self, exc: HTTPError) -> Json:
        return {"message": exc.message, "documentation_url": "https://docs.github.com/rest"}

    def _route(self, request: Request, method: str, path: str, body: bytes) -> Response:
        for verb, regex, handler, auth in self._routes:
            match = regex.fullmatch(path)
            if match is None or verb != method:
                continue
            installation = self._authenticate(request, auth)
            args = match.groupdict()
            if "owner" in args:
                repo = self._repo(f"{args.pop('owner')}/{args.pop('name')}")
                if auth == "token" and installation != repo.installation_id:
                    raise HTTPError(404, "Not Found")
                args["repo"] = repo
            if request.headers.get("content-type", "").startswith(FORM):
                payload = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
            else:
                payload = json.loads(body) if body else {}
            result = handler(request=request, payload=payload, installation=installation, **args)
            if isinstance(result, Response):
                return result
            status = 201 if method == "POST" else 200
            return JSONResponse(result, status_code=status)
        raise HTTPError(404, "Not Found")

    def _authenticate(self, request: Request, kind: str) -> int | None:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if kind == "jwt":
            if scheme.lower() != "bearer":
                raise HTTPError(401, "A JSON web token could not be decoded")
            try:
                claims = jwt.decode(
                    credential,
                    self.public_key,
                    algorithms=["RS256"],
                    options={"require": ["iss", "iat", "exp"]},
                    leeway=60,
                )
            except jwt.PyJWTError as exc:
                raise HTTPError(401, f"A JSON web token could not be decoded: {exc}") from None
            if str(claims["iss"]) != str(self.app_id):
                raise HTTPError(401, "Integration not found")
            if claims["exp"] - claims["iat"] > 660:
                raise HTTPError(401, "'Expiration time' claim ('exp') is too far in the future")
            return None
        if kind == "none":  # github.com's own pages and the OAuth token exchange
            return None
        if kind == "user":
            if scheme.lower() not in ("token", "bearer") or credential not in self.user_tokens:
                raise HTTPError(401, "Bad credentials")
            return None
        entry = self.tokens.get(credential) if scheme.lower() in ("token", "bearer") else None
        if entry is None or entry[1] < time.time():
            raise HTTPError(401, "Bad credentials")
        return entry[0]

    def _route_table(self) -> list[tuple[str, re.Pattern[str], Handler, str]]:
        repo = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
        table: list[tuple[str, str, Handler, str]] = [
            ("POST", r"/app/installations/(?P<iid>\d+)/access_tokens", self._access_token, "jwt"),
            ("GET", r"/app/hook/deliveries", self._deliveries, "jwt"),
            ("POST", r"/app/hook/deliveries/(?P<did>\d+)/attempts", self._redeliver, "jwt"),
            ("GET", repo + r"/installation", self._repo_installation, "jwt"),
            ("GET", r"/orgs/(?P<org>[^/]+)/installation", self._org_installation, "jwt"),
            ("GET", repo, self._get_repo, "token"),
            ("GET", repo + r"/pulls/(?P<number>\d+)", self._get_pull, "token"),
            ("GET", repo + r"/pulls/(?P<number>\d+)/files", self._pull_files, "token"),
            ("GET", repo + r"/pulls/(?P<number>\d+)/reviews", self._pull_reviews, "token"),
            ("GET", repo + r"/compare/(?P<base>.+)\.\.\.(?P<head>.+)", self._compare, "token"),
            ("GET", repo + r"/git/blobs/(?P<sha>[0-9a-f]{40})", self._blob, "token"),
            ("GET", repo + r"/git/trees/(?P<sha>[^/]+)", self._tree, "token"),
            ("GET", repo + r"/git/commits/(?P<sha>[0-9a-f]{40})", self._git_commit, "token"),
            ("GET", repo + r"/contents/(?P<path>.+)", self._contents, "token"),
            ("GET", repo + r"/commits/(?P<sha>[^/]+)/pulls", self._commit_pulls, "token"),
            ("GET", repo + r"/commits/(?P<sha>[^/]+)/check-runs", self._commit_runs, "token"),
            ("POST", repo + r"/check-runs", self._create_run, "token"),
            ("PATCH", repo + r"/check-runs/(?P<run_id>\d+)", self._update_run, "token"),
            ("GET", repo + r"/check-runs/(?P<run_id>\d+)", self._get_run, "token"),
            ("GET", repo + r"/actions/runs/(?P<run_id>\d+)", self._workflow_run, "token"),
            (
                "POST",
                repo + r"/actions/runs/(?P<run_id>\d+)/deployment_protection_rule",
                self._gate_answer,
                "token",
            ),
            ("GET", r"/login/oauth/authorize", self._oauth_authorize, "none"),
            ("POST", r"/login/oauth/access_token", self._oauth_token, "none"),
            ("GET", r"/user", self._authenticated_user, "user"),
            ("POST", r"/settings/apps/new", self._new_app_form, "none"),
            (
                "POST",
                r"/organizations/(?P<org>[^/]+)/settings/apps/new",
                self._new_app_form,
                "none",
            ),
            ("POST", r"/app-manifests/(?P<code>[^/]+)/conversions", self._convert, "none"),
            ("GET", r"/orgs/(?P<org>[^/]+)/teams/(?P<slug>[^/]+)", self._team, "token"),
            ("GET", r"/orgs/(?P<org>[^/]+)/teams/(?P<slug>[^/]+)/members", self._members, "token"),
        ]
        return [(verb, re.compile(rx), fn, auth) for verb, rx, fn, auth in table]

    # -- endpoint handlers ------------------------------------------------------------
    def _access_token(self, *, iid: str, **_: Any) -> Json:
        installation = int(iid)
        if installation not in {r.installation_id for r in self.repos.values()}:
            raise HTTPError(404, "Not Found")
        token = "ghs_" + secrets.token_hex(18)
        expires = time.time() + self.token_ttl
        self.tokens[token] = (installation, expires)
        return {
            "token": token,
            "expires_at": iso(expires),
            "permissions": {"checks": "write", "contents": "read", "pull_requests": "read"},
            "repository_selection": "all",
        }

    def _deliveries(self, request: Request, **_: Any) -> Response:
        """Cursor pagination, as GitHub pages this endpoint: `Link: <...cursor=...>; rel="next"`."""
        q = request.query_params
        per_page = max(1, min(int(q.get("per_page", 30)), 100))
        items = list(self.hook_deliveries)
        start = 0
        cursor = q.get("cursor")
        if cursor:
            start = next((i for i, d in enumerate(items) if f"v1_{d['id']}" == cursor), len(items))
        chunk = items[start : start + per_page]
        headers = {}
        if start + per_page < len(items):
            params = {k: v for k, v in q.items() if k != "cursor"}
            params["cursor"] = f"v1_{items[start + per_page]['id']}"
            headers["Link"] = f'<{self.url}{request.url.path}?{urlencode(params)}>; rel="next"'
        return JSONResponse(chunk, headers=headers)

    def _redeliver(self, did: str, **_: Any) -> Response:
        """Redeliver a logged delivery: POST its payload to `hook_url` (when set) and log
        the outcome as a new attempt with the same guid."""
        original = next((d for d in self.hook_deliveries if d["id"] == int(did)), None)
        if original is None:
            raise HTTPError(404, "Not Found")
        self.redelivered.append(original["id"])
        stored = self.hook_payloads.get(original["id"])
        status = self.redelivery_status
        if self.hook_url and stored is not None:
            try:
                status = httpx.post(self.hook_url, content=stored[0], headers=stored[1]).status_code
            except httpx.HTTPError:
                status = 502
        attempt = self.add_hook_delivery(
            original["guid"],
            original["event"],
            status,
            action=original["action"],
            redelivery=True,
            installation_id=original["installation_id"],
            repository_id=original["repository_id"],
        )
        if stored is not None:
            self.hook_payloads[attempt["id"]] = stored
        return JSONResponse({}, status_code=202)

    def _installation_json(self, installation: int, account: str) -> Json:
        return {
            "id": installation,
            "app_id": self.app_id,
            "app_slug": self.app_slug,
            "target_type": "Organization",
            "account": self._user_json(account, "Organization"),
            "access_tokens_url": f"{self.url}/app/installations/{installation}/access_tokens",
            "repositories_url": f"{self.url}/installation/repositories",
            "html_url": f"https://github.com/settings/installations/{installation}",
            "permissions": {"checks": "write", "contents": "read"},
            "events": ["pull_request", "push"],
            "created_at": iso(),
            "updated_at": iso(),
        }

    def _repo_installation(self, repo: Repo, **_: Any) -> Json:
        return self._installation_json(repo.installation_id, repo.owner)

    def _org_installation(self, org: str, **_: Any) -> Json:
        for repo in self.repos.values():
            if repo.owner.lower() == org.lower():
                return self._installation_json(repo.installation_id, repo.owner)
        raise HTTPError(404, "Not Found")

    def _get_repo(self, repo: Repo, **_: Any) -> Json:
        return self._repo_json(repo)

    def _get_pull(self, repo: Repo, number: str, **_: Any) -> Json:
        return self._pull_json(repo, self._pull(repo, number))

    def _pull_files(self, request: Request, repo: Repo, number: str, **_: Any) -> Response:
        pull = self._pull(repo, number)
        head = self._head_sha(repo, pull)
        base = repo.git.merge_base(self._base_sha(repo, pull), head) or self._base_sha(repo, pull)
        files = [self._file_json(repo, e, head) for e in repo.git.diff(base, head)][:3000]
        return self._paginate(request, files)

    def _pull_reviews(self, request: Request, repo: Repo, number: str, **_: Any) -> Response:
        self._pull(repo, number)
        reviews = [
            self._review_json(repo, int(number), r) for r in repo.reviews.get(int(number), [])
        ]
        return self._paginate(request, reviews)

    def _compare(self, repo: Repo, base: str, head: str, **_: Any) -> Json:
        base_sha, head_sha = repo.git.resolve(base), repo.git.resolve(head)
        if base_sha is None or head_sha is None:
            raise HTTPError(404, "Not Found")
        merge_base = repo.git.merge_base(base_sha, head_sha) or base_sha
        ahead = repo.git.commits_between(merge_base, head_sha)
        behind = repo.git.commits_between(merge_base, base_sha)
        status = (
            "identical"
            if base_sha == head_sha
            else "ahead"
            if not behind
            else "behind"
            if not ahead
            else "diverged"
        )
        files = [self._file_json(repo, e, head_sha) for e in repo.git.diff(merge_base, head_sha)]
        return {
            "url": f"{self.url}/repos/{repo.full_name}/compare/{base}...{head}",
            "html_url": f"https://github.com/{repo.full_name}/compare/{base}...{head}",
            "permalink_url": f"https://github.com/{repo.full_name}/compare/{base}...{head}",
            "diff_url": f"https://github.com/{repo.full_name}/compare/{base}...{head}.diff",
            "patch_url": f"https://github.com/{repo.full_name}/compare/{base}...{head}.patch",
            "status": status,
            "ahead_by": len(ahead),
            "behind_by": len(behind),
            "total_commits": len(ahead),
            "base_commit": self._commit_json(repo, base_sha),
            "merge_base_commit": self._commit_json(repo, merge_base),
            "commits": [self._commit_json(repo, c) for c in ahead[:250]],
            "files": files[:300],
        }

    def _blob(self, repo: Repo, sha: str, **_: Any) -> Json:
        data = repo.git.blob(sha)
        if data is None:
            raise HTTPError(404, "Not Found")
        return {
            "sha": sha,
            "node_id": f"B_{sha[:12]}",
            "size": len(data),
            "url": f"{self.url}/repos/{repo.full_name}/git/blobs/{sha}",
            "content": base64.encodebytes(data).decode(),
            "encoding": "base64",
        }

    def _tree(self, request: Request, repo: Repo, sha: str, **_: Any) -> Json:
        rev = repo.git.resolve(sha) or sha
        if repo.git.object_type(rev) not in ("commit", "tree"):
            raise HTTPError(404, "Not Found")
        recursive = request.query_params.get("recursive") not in (None, "", "0", "false")
        entries = []
        for e in repo.git.tree(rev, recursive=recursive):
            kind = "blobs" if e.type == "blob" else "trees"
            item: Json = {
                "path": e.path,
                "mode": e.mode,
                "type": e.type,
                "sha": e.sha,
                "url": f"{self.url}/repos/{repo.full_name}/git/{kind}/{e.sha}",
            }
            if e.size is not None:
                item["size"] = e.size
            entries.append(item)
        tree_sha = repo.git.tree_sha(rev)
        truncated = len(entries) > self.tree_entry_limit
        return {
            "sha": tree_sha,
            "url": f"{self.url}/repos/{repo.full_name}/git/trees/{tree_sha}",
            "tree": entries[: self.tree_entry_limit],
            "truncated": truncated,
        }

    def _contents(self, request: Request, repo: Repo, path: str, **_: Any) -> Json:
        ref = request.query_params.get("ref") or repo.default_branch
        found = repo.git.file_at(ref, path)
        if found is None:
            raise HTTPError(404, "Not Found")
        sha, data = found
        return {
            "type": "file",
            "encoding": "base64",
            "size": len(data),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": base64.encodebytes(data).decode(),
            "sha": sha,
            "url": f"{self.url}/repos/{repo.full_name}/contents/{path}?ref={ref}",
            "git_url": f"{self.url}/repos/{repo.full_name}/git/blobs/{sha}",
            "html_url": f"https://github.com/{repo.full_name}/blob/{ref}/{path}",
            "download_url": None,
        }

    def _git_commit(self, repo: Repo, sha: str, **_: Any) -> Json:
        """`GET /repos/{o}/{r}/git/commits/{sha}`: the commit object, with its tree."""
        if repo.git.object_type(sha) != "commit":
            raise HTTPError(404, "Not Found")
        api = f"{self.url}/repos/{repo.full_name}/git"
        tree = repo.git.tree_sha(sha)
        return {
            "sha": sha,
            "node_id": f"C_{sha[:12]}",
            "url": f"{api}/commits/{sha}",
            "tree": {"sha": tree, "url": f"{api}/trees/{tree}"},
            "message": repo.git.commit_info(sha).message,
            "parents": [
                {"sha": p, "url": f"{api}/commits/{p}"} for p in repo.git.commit_info(sha).parents
            ],
        }

    def _commit_pulls(self, request: Request, repo: Repo, sha: str, **_: Any) -> Response:
        pulls = [  # a merge commit lists the pull request it merged, as on GitHub
            self._pull_json(repo, p)
            for p in repo.pulls.values()
            if self._head_sha(repo, p) == sha or p.merge_commit_sha == sha
        ]
        return self._paginate(request, pulls)

    def _commit_runs(self, request: Request, repo: Repo, sha: str, **_: Any) -> Response:
        q = request.query_params
        runs = [
            self._check_run_json(r)
            for r in sorted(self.check_runs.values(), key=lambda r: -r.id)
            if r.repo == repo.full_name.lower()
            and r.head_sha == sha
            and q.get("check_name") in (None, r.name)
            and q.get("status") in (None, r.status)
            and q.get("app_id") in (None, str(r.app_id))
        ]
        return self._paginate(request, runs, list_key="check_runs")

    def _create_run(self, repo: Repo, payload: Json, **_: Any) -> Json:
        for key in ("name", "head_sha"):
            if not payload.get(key):
                raise HTTPError(422, f"Invalid request. {key} is missing")
        if repo.git.resolve(payload["head_sha"]) is None:
            raise HTTPError(422, "No commit found for SHA: " + payload["head_sha"])
        run = CheckRun(
            next(self._ids),
            repo.full_name.lower(),
            payload["name"],
            payload["head_sha"],
            self.app_id,
            started_at=iso(),
        )
        self.check_runs[run.id] = run
        self._apply(run, payload)
        return self._check_run_json(run)

    def _update_run(self, repo: Repo, run_id: str, payload: Json, **_: Any) -> Json:
        run = self.check_runs.get(int(run_id))
        if run is None or run.repo != repo.full_name.lower():
            raise HTTPError(404, "Not Found")
        self._apply(run, payload)
        return self._check_run_json(run)

    def _get_run(self, repo: Repo, run_id: str, **_: Any) -> Json:
        run = self.check_runs.get(int(run_id))
        if run is None or run.repo != repo.full_name.lower():
            raise HTTPError(404, "Not Found")
        return self._check_run_json(run)

    def _apply(self, run: CheckRun, payload: Json) -> None:
        """GitHub's validation and update rules for a check run create/update body."""
        status = payload.get("status")
        conclusion = payload.get("conclusion")
        if status not in (None, "queued", "in_progress", "completed"):
            raise HTTPError(422, f"Invalid status {status!r}")
        if conclusion not in (None, *_CONCLUSIONS):
            raise HTTPError(422, f"Invalid conclusion {conclusion!r}")
        if status == "completed" and conclusion is None:
            raise HTTPError(422, "conclusion is required when status is completed")
        output = payload.get("output")
        if output is not None:
            if not output.get("title") or not output.get("summary"):
                raise HTTPError(422, "output requires title and summary")
            if len(output["summary"]) > 65535 or len(output.get("text") or "") > 65535:
                raise HTTPError(422, "output.summary is too long (maximum is 65535 characters)")
            annotations = output.get("annotations") or []
            if len(annotations) > 50:
                raise HTTPError(422, "Only 50 annotations are allowed per request")
            for a in annotations:
                missing = {"path", "start_line", "end_line", "annotation_level", "message"} - set(a)
                if missing:
                    raise HTTPError(422, f"annotation is missing {sorted(missing)}")
                if a["annotation_level"] not in ("notice", "warning", "failure"):
                    raise HTTPError(422, "annotation_level is invalid")
                if len(a.get("title") or "") > 255:
                    raise HTTPError(422, "annotation title is too long (maximum is 255 characters)")
        run.history.append(payload)
        if conclusion is not None:
            run.status, run.conclusion = "completed", conclusion
            run.completed_at = payload.get("completed_at") or iso()
        elif status is not None:
            run.status = status
        for key in ("details_url", "external_id", "name"):
            if payload.get(key) is not None:
                setattr(run, key, payload[key])
        if output is not None:
            run.title, run.summary = output["title"], output["summary"]
            run.text = output.get("text", run.text)
            run.annotations.extend(output.get("annotations") or [])

    def _workflow_run(self, repo: Repo, run_id: str, **_: Any) -> Json:
        """`GET /repos/{owner}/{repo}/actions/runs/{run_id}` (the fields changegate reads,
        named as in GitHub's OpenAPI `workflow-run`)."""
        run = self.workflow_runs.get(int(run_id))
        if run is None or run.repo != repo.full_name.lower():
            raise HTTPError(404, "Not Found")
        api = f"{self.url}/repos/{repo.full_name}"
        return {
            "id": run.id,
            "name": "deploy",
            "node_id": f"WFR_{run.id}",
            "head_branch": run.head_branch,
            "head_sha": run.head_sha,
            "path": ".github/workflows/deploy.yml",
            "run_number": run.id % 1000,
            "run_attempt": 1,
            "event": run.event,
            "status": "waiting",
            "conclusion": None,
            "workflow_id": 1,
            "url": f"{api}/actions/runs/{run.id}",
            "html_url": f"https://github.com/{repo.full_name}/actions/runs/{run.id}",
            "actor": self._user_json(run.actor),
            "triggering_actor": self._user_json(run.triggering_actor),
            "created_at": iso(),
            "updated_at": iso(),
            "repository": self._repo_json(repo),
            "head_repository": self._repo_json(repo),
        }

    def _gate_answer(self, repo: Repo, run_id: str, payload: Json, **_: Any) -> Response:
        self.gate_answers.append({"repo": repo.full_name, "run_id": int(run_id), **payload})
        return Response(status_code=204)

    def _oauth_authorize(self, request: Request, **_: Any) -> Response:
        """github.com's authorize page, with the user already signed in there: it sends the
        browser straight back with a code (or, if they cancel, with `error`)."""
        q = request.query_params
        if q.get("client_id") not in self.oauth_apps:
            raise HTTPError(404, "Not Found")
        back = q.get("redirect_uri", "")
        if not back.startswith(("http://", "https://")):
            raise HTTPError(400, "The redirect_uri MUST match the registered callback URL")
        if self.signed_in_user is None:
            answer = {"error": "access_denied", "error_description": "The user has denied."}
        else:
            code = secrets.token_hex(10)
            self.oauth_codes[code] = (q["client_id"], self.signed_in_user, time.time() + 600)
            answer = {"code": code}
        if "state" in q:
            answer["state"] = q["state"]
        sep = "&" if "?" in back else "?"
        return Response(status_code=302, headers={"Location": back + sep + urlencode(answer)})

    def _oauth_token(self, payload: Json, **_: Any) -> Response:
        """Code for a user access token. GitHub answers its errors 200, with `error`."""
        client, secret = str(payload.get("client_id", "")), str(payload.get("client_secret", ""))
        if self.oauth_apps.get(client) != secret or not secret:
            return JSONResponse(
                {
                    "error": "incorrect_client_credentials",
                    "error_description": "The client_id and/or client_secret passed are incorrect.",
                }
            )
        entry = self.oauth_codes.pop(str(payload.get("code", "")), None)  # a code works once
        if entry is None or entry[0] != client or entry[2] < time.time():
            return JSONResponse(
                {
                    "error": "bad_verification_code",
                    "error_description": "The code passed is incorrect or expired.",
                    "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code",
                }
            )
        token = "ghu_" + secrets.token_hex(18)
        self.user_tokens[token] = entry[1]
        return JSONResponse(
            {
                "access_token": token,
                "expires_in": 28800,
                "refresh_token": "ghr_" + secrets.token_hex(30),
                "refresh_token_expires_in": 15811200,
                "token_type": "bearer",
                "scope": "",
            }
        )

    def _new_app_form(
        self, request: Request, payload: Json, org: str | None = None, **_: Any
    ) -> Response:
        """github.com's "Create GitHub App" page for a posted `manifest`, with the user
        accepting the name at once: the App is created when the code is converted, and
        the browser goes to the manifest's `redirect_url` with `code` and `state`."""
        try:
            manifest = json.loads(payload.get("manifest", ""))
        except ValueError:
            raise HTTPError(422, "Invalid manifest: not JSON") from None
        if not isinstance(manifest, dict) or not str(manifest.get("url", "")).startswith("http"):
            raise HTTPError(422, "Invalid manifest: url is required")
        back = str(manifest.get("redirect_url") or "")
        if not back.startswith(("http://", "https://")):
            raise HTTPError(422, "Invalid manifest: redirect_url is required for this flow")
        code = secrets.token_hex(20)
        self.manifest_codes[code] = (manifest, org or self.manifest_owner, time.time() + 3600)
        answer = {"code": code}
        if "state" in request.query_params:
            answer["state"] = request.query_params["state"]
        return Response(status_code=302, headers={"Location": f"{back}?{urlencode(answer)}"})

    def _convert(self, code: str, **_: Any) -> Json:
        """`POST /app-manifests/{code}/conversions`: the code works once, for an hour; the
        stand-in then serves the new App (its id and key sign the JWTs from now on)."""
        entry = self.manifest_codes.pop(code, None)
        if entry is None or entry[2] < time.time():
            raise HTTPError(404, "Not Found")
        manifest, owner, _expiry = entry
        private, public = app_key_pair(serialization.PrivateFormat.TraditionalOpenSSL)
        app_id = next(self._ids)
        slug = re.sub(r"[^a-z0-9]+", "-", str(manifest.get("name") or "app").lower()).strip("-")
        client_id, client_secret = f"Iv1.{secrets.token_hex(8)}", secrets.token_hex(20)
        self.app_id, self.public_key, self.app_slug = app_id, public, slug
        self.oauth_apps[client_id] = client_secret
        now = iso()
        answer = {
            "id": app_id,
            "slug": slug,
            "node_id": f"A_{app_id}",
            "owner": self._user_json(
                owner, "Organization" if owner != self.manifest_owner else "User"
            ),
            "name": manifest.get("name"),
            "description": manifest.get("description"),
            "external_url": manifest.get("url"),
            "html_url": f"{self.url}/apps/{slug}",
            "created_at": now,
            "updated_at": now,
            "permissions": manifest.get("default_permissions") or {},
            "events": manifest.get("default_events") or [],
            "client_id": client_id,
            "client_secret": client_secret,
            "webhook_secret": secrets.token_hex(20),
            "pem": private,
        }
        self.created_apps.append({**answer, "manifest": manifest})
        return answer

    def _authenticated_user(self, request: Request, **_: Any) -> Json:
        token = request.headers["authorization"].partition(" ")[2]
        return {**self._user_json(self.user_tokens[token]), "name": None, "email": None}

    def _team(self, org: str, slug: str, **_: Any) -> Json:
        if (org.lower(), slug.lower()) not in self.teams:
            raise HTTPError(404, "Not Found")
        return {
            "id": abs(hash((org, slug))) % 10**6,
            "slug": slug,
            "name": slug,
            "url": f"{self.url}/orgs/{org}/teams/{slug}",
            "members_url": f"{self.url}/orgs/{org}/teams/{slug}/members{{/member}}",
        }

    def _members(self, request: Request, org: str, slug: str, **_: Any) -> Response:
        members = self.teams.get((org.lower(), slug.lower()))
        if members is None:
            raise HTTPError(404, "Not Found")
        return self._paginate(request, [self._user_json(m) for m in members])

    # -- JSON shapes ----------------------------------------------------------------
    def _paginate(
        self, request: Request, items: list[Any], list_key: str | None = None
    ) -> Response:
        q = request.query_params
        per_page = max(1, min(int(q.get("per_page", 30)), 100))
        page = max(1, int(q.get("page", 1)))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []

        def link(n: int, rel: str) -> str:
            params = {k: v for k, v in q.items() if k != "page"}
            params["page"] = str(n)
            return f'<{self.url}{request.url.path}?{urlencode(params)}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        headers = {"Link": ", ".join(links)} if links else {}
        body: Any = {"total_count": len(items), list_key: chunk} if list_key else chunk
        return JSONResponse(body, headers=headers)

    def _repo(self, full_name: str) -> Repo:
        repo = self.repos.get(full_name.lower())
        if repo is None:
            raise HTTPError(404, "Not Found")
        return repo

    def _pull(self, repo: Repo, number: str | int) -> Pull:
        pull = repo.pulls.get(int(number))
        if pull is None:
            raise HTTPError(404, "Not Found")
        return pull

    def _head_sha(self, repo: Repo, pull: Pull) -> str:
        sha = repo.git.branch_sha(pull.head_ref)
        if sha is None:
            raise HTTPError(404, f"head branch {pull.head_ref} is gone")
        return sha

    def _base_sha(self, repo: Repo, pull: Pull) -> str:
        sha = repo.git.branch_sha(pull.base_ref)
        if sha is None:
            raise HTTPError(404, f"base branch {pull.base_ref} is gone")
        return sha

    def _user_json(self, login: str, kind: str = "User") -> Json:
        uid = int(hashlib.sha256(login.encode()).hexdigest()[:6], 16)
        return {
            "login": login,
            "id": uid,
            "node_id": f"U_{uid}",
            "type": kind,
            "site_admin": False,
            "url": f"{self.url}/users/{login}",
            "html_url": f"https://github.com/{login}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}",
        }

    def _repo_json(self, repo: Repo) -> Json:
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": self._user_json(repo.owner, "Organization"),
            "private": repo.private,
            "fork": False,
            "html_url": f"https://github.com/{repo.full_name}",
            "url": f"{self.url}/repos/{repo.full_name}",
            "default_branch": repo.default_branch,
            "visibility": "private" if repo.private else "public",
            "archived": False,
            "disabled": False,
        }

    def _pull_json(self, repo: Repo, pull: Pull) -> Json:
        head, base = self._head_sha(repo, pull), self._base_sha(repo, pull)
        api = f"{self.url}/repos/{repo.full_name}"
        return {
            "url": f"{api}/pulls/{pull.number}",
            "id": repo.id * 100_000 + pull.number,
            "node_id": f"PR_{repo.id}_{pull.number}",
            "number": pull.number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "body": pull.body,
            "draft": pull.draft,
            "labels": [
                {
                    "id": 9000 + i,
                    "node_id": f"LA_{i}",
                    "url": f"{api}/labels/{name}",
                    "name": name,
                    "description": None,
                    "color": "ededed",
                    "default": False,
                }
                for i, name in enumerate(pull.labels)
            ],
            "user": self._user_json(pull.author),
            "html_url": f"https://github.com/{repo.full_name}/pull/{pull.number}",
            "diff_url": f"https://github.com/{repo.full_name}/pull/{pull.number}.diff",
            "issue_url": f"{api}/issues/{pull.number}",
            "commits_url": f"{api}/pulls/{pull.number}/commits",
            "review_comments_url": f"{api}/pulls/{pull.number}/comments",
            "statuses_url": f"{api}/statuses/{head}",
            "created_at": iso(pull.created),
            "updated_at": iso(),
            "closed_at": None if pull.state == "open" else iso(),
            "merged_at": iso(pull.merged_at) if pull.merged_at is not None else None,
            "merged": pull.merged_at is not None,
            "merge_commit_sha": pull.merge_commit_sha,
            "head": {
                "label": f"{repo.owner}:{pull.head_ref}",
                "ref": pull.head_ref,
                "sha": head,
                "user": self._user_json(repo.owner, "Organization"),
                "repo": self._repo_json(repo),
            },
            "base": {
                "label": f"{repo.owner}:{pull.base_ref}",
                "ref": pull.base_ref,
                "sha": base,
                "user": self._user_json(repo.owner, "Organization"),
                "repo": self._repo_json(repo),
            },
            "author_association": "MEMBER",
        }

    def _file_json(self, repo: Repo, e: Any, head: str) -> Json:
        status = {"A": "added", "D": "removed", "R": "renamed", "C": "copied"}.get(
            e.status, "modified"
        )
        sha = e.old_sha if e.status == "D" else e.new_sha
        item: Json = {
            "sha": sha,
            "filename": e.path,
            "status": status,
            "additions": e.additions,
            "deletions": e.deletions,
            "changes": e.additions + e.deletions,
            "blob_url": f"https://github.com/{repo.full_name}/blob/{head}/{e.path}",
            "raw_url": f"https://github.com/{repo.full_name}/raw/{head}/{e.path}",
            "contents_url": f"{self.url}/repos/{repo.full_name}/contents/{e.path}?ref={head}",
        }
        if e.old_path:
            item["previous_filename"] = e.old_path
        return item

    def _commit_json(self, repo: Repo, sha: str) -> Json:
        info = repo.git.commit_info(sha)
        api = f"{self.url}/repos/{repo.full_name}"
        person = {"name": info.author_name, "email": info.author_email, "date": iso(info.timestamp)}
        return {
            "sha": sha,
            "node_id": f"C_{sha[:12]}",
            "url": f"{api}/commits/{sha}",
            "html_url": f"https://github.com/{repo.full_name}/commit/{sha}",
            "commit": {
                "message": info.message,
                "author": person,
                "committer": person,
                "tree": {"sha": info.tree, "url": f"{api}/git/trees/{info.tree}"},
                "url": f"{api}/git/commits/{sha}",
            },
            "author": None,
            "committer": None,
            "parents": [{"sha": p, "url": f"{api}/commits/{p}"} for p in info.parents],
        }

    def _push_commit(self, repo: Repo, sha: str) -> Json:
        info = repo.git.commit_info(sha)
        return {
            "id": sha,
            "tree_id": info.tree,
            "message": info.message,
            "timestamp": iso(info.timestamp),
            "url": f"https://github.com/{repo.full_name}/commit/{sha}",
            "author": {"name": info.author_name, "email": info.author_email},
            "committer": {"name": info.author_name, "email": info.author_email},
            "added": [],
            "removed": [],
            "modified": [],
        }

    def _review_json(self, repo: Repo, number: int, review: Review) -> Json:
        return {
            "id": review.id,
            "node_id": f"PRR_{review.id}",
            "user": self._user_json(review.user),
            "body": review.body,
            "state": review.state,
            "commit_id": review.commit_id,
            "submitted_at": iso(review.submitted),
            "html_url": f"https://github.com/{repo.full_name}/pull/{number}#pullrequestreview-{review.id}",
            "pull_request_url": f"{self.url}/repos/{repo.full_name}/pulls/{number}",
            "author_association": "MEMBER",
        }

    def _check_run_json(self, run: CheckRun) -> Json:
        repo = self._repo(run.repo)
        api = f"{self.url}/repos/{repo.full_name}"
        return {
            "id": run.id,
            "node_id": f"CR_{run.id}",
            "name": run.name,
            "head_sha": run.head_sha,
            "external_id": run.external_id,
            "url": f"{api}/check-runs/{run.id}",
            "html_url": f"https://github.com/{repo.full_name}/runs/{run.id}",
            "details_url": run.details_url,
            "status": run.status,
            "conclusion": run.conclusion,
            "started_at": run.started_at,
            "completed_at": run.completed_at,
            "output": {
                "title": run.title,
                "summary": run.summary,
                "text": run.text,
                "annotations_count": len(run.annotations),
                "annotations_url": f"{api}/check-runs/{run.id}/annotations",
            },
            "check_suite": {"id": run.id + 7},
            "app": {"id": run.app_id, "slug": self.app_slug, "name": "changegate"},
            "pull_requests": [],
        }

    # -- iteration helpers for tests ------------------------------------------------
    def __iter__(self) -> Iterator[Repo]:
        return iter(self.repos.values())


_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]
_STATUS_TEXT = {
    0: "Timed out",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    413: "Payload Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_CONCLUSIONS = (
    "success",
    "failure",
    "neutral",
    "cancelled",
    "skipped",
    "timed_out",
    "action_required",
)
