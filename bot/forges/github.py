"""The GitHub forge on PyGithub: App auth, events to `Change`s, lazy file views, check runs.

Every API call is built from the configured API URL with PyGithub (a repository by its
full name, an installation by its id); no URL taken from a payload is ever followed, and
PyGithub itself refuses URLs outside its base. One `Github` client per installation is
kept: PyGithub refreshes its installation token shortly before it expires.

API economy: file contents are fetched only when a rule reads them and are cached by blob
SHA in a bounded, process-wide LRU; path-to-blob lookups, trees, merge bases and pull request
file lists are cached by the immutable commit SHAs they depend on. A re-evaluation of the
same head therefore makes no content requests at all.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from github import Auth, Github, GithubIntegration, GithubRetry, UnknownObjectException
from github.GithubException import GithubException, RateLimitExceededExceedsMaxWait
from github.Repository import Repository
from urllib3.util.retry import Retry

from bot import metrics
from bot.change import (
    Action,
    Approval,
    Change,
    ChangedFile,
    Decision,
    FileStatus,
    FileView,
    Finding,
    Verdict,
)
from bot.forges import (
    RECHECK,
    Delivery,
    DeployKind,
    Deployment,
    DeployTarget,
    Forge,
    Landed,
    Work,
    merge_queue,
)
from bot.forges.cache import LRU
from bot.forges.treediff import Budget, Entry, ListingIncomplete, diff_trees, list_tree
from bot.policy.approvers import Directory
from bot.policy.sources import REPOSITORY_POLICY

log = logging.getLogger(__name__)

CHECK_NAME = "changegate"
MAX_PULL_FILES = 3000  # GitHub lists at most 3,000 files of a pull request
MAX_COMPARE_FILES = 300  # and at most 300 files of a compare
ANNOTATIONS_PER_REQUEST = 50
SUMMARY_LIMIT = 65_535
TITLE_LIMIT = 255
ZERO_SHA = "0" * 40
PROBES_BEFORE_TREE = 2  # path lookups per commit answered one by one before fetching the tree

PULL_ACTIONS = frozenset(
    {"opened", "synchronize", "reopened", "edited", "ready_for_review", "labeled", "unlabeled"}
)
REVIEW_ACTIONS = frozenset({"submitted", "dismissed"})
CHECK_ACTIONS = frozenset({"rerequested", "requested_action"})
#: The events the App subscribes to (app.yml); installation events come unasked.
HANDLED_EVENTS = frozenset(
    {
        "pull_request",
        "pull_request_review",
        "push",
        "check_run",
        "check_suite",
        "deployment_protection_rule",
        "merge_group",
    }
)

_CONCLUSION = {
    Decision.PASS: "success",
    Decision.FAIL: "failure",
    Decision.APPROVAL_REQUIRED: "action_required",
}
_LEVEL = {Action.BLOCK: "failure", Action.REQUIRE_APPROVAL: "warning", Action.WARN: "notice"}
_STATUS = {
    "added": FileStatus.ADDED,
    "copied": FileStatus.ADDED,
    "removed": FileStatus.DELETED,
    "renamed": FileStatus.RENAMED,
    "modified": FileStatus.MODIFIED,
    "changed": FileStatus.MODIFIED,
    "unchanged": FileStatus.MODIFIED,
}
_CALLBACK = re.compile(
    r"/repos/(?P<repo>[^/]+/[^/]+)/actions/runs/(?P<run>\d+)/deployment_protection_rule/?$"
)


# -- API call metrics ----------------------------------------------------------------
class _ApiCallCounter(logging.Handler):
    """Counts PyGithub's requests and the rate limit left, from the record PyGithub's
    Requester logs for every response (`verb url headers input ==> status headers body`);
    PyGithub has no other per-response hook."""

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        if not isinstance(args, tuple) or len(args) < 9:
            return
        status, headers = args[6], args[7]
        if isinstance(status, int):
            metrics.FORGE_API_CALLS.labels("github", f"{status // 100}xx").inc()
        remaining = headers.get("x-ratelimit-remaining") if isinstance(headers, dict) else None
        if isinstance(remaining, str) and remaining.isdigit():
            metrics.FORGE_RATE_REMAINING.labels("github").set(int(remaining))


def _count_api_calls() -> None:
    requester_log = logging.getLogger("github.Requester")
    if not any(isinstance(h, _ApiCallCounter) for h in requester_log.handlers):
        requester_log.addHandler(_ApiCallCounter(logging.DEBUG))
        requester_log.setLevel(logging.DEBUG)
        requester_log.propagate = False  # the records carry request headers: not for logs


# -- caches ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _File:
    path: str
    status: FileStatus
    sha: str | None
    old_path: str | None = None


@dataclass(frozen=True)
class _Listing:
    files: tuple[_File, ...]
    complete: bool  # False when GitHub's cap cut the list short
    merge_base: str | None = None
    unlisted: str | None = None  # why the change could not be listed whole


#: blob SHA -> contents. Content-addressed, so shared by every repository and evaluation.
BLOBS: LRU[str, bytes] = LRU(max_entries=20_000, max_size=128 * 1024 * 1024)
#: (api, repo, commit, path) -> blob SHA or None (absent). Commits are immutable.
PATHS: LRU[tuple[str, str, str, str], str | None] = LRU(max_entries=200_000)
#: (api, repo, commit) -> {path: blob SHA} of the whole tree.
TREES: LRU[tuple[str, str, str], dict[str, str]] = LRU(max_entries=16)
#: (api, repo, base, head) -> merge base SHA.
MERGE_BASES: LRU[tuple[str, str, str, str], str] = LRU(max_entries=4096)
#: (api, repo, number or "", base, head) -> changed files.
LISTINGS: LRU[tuple[str, str, str, str, str], _Listing] = LRU(max_entries=512)


def clear_caches() -> None:
    """Forget everything cached (tests; never needed for correctness)."""
    for cache in (BLOBS, PATHS, TREES, MERGE_BASES, LISTINGS):
        cache.clear()


# -- retries -------------------------------------------------------------------------------
class ForgeRetry(GithubRetry):
    """GithubRetry (5xx, rate-limited 403s) plus 429 and the waits GitHub asks for.

    GitHub says: honour `Retry-After`; else wait until `x-ratelimit-reset`; else back off
    from a minute. A wait longer than `max_rate_limit_wait` raises instead of blocking a
    worker: the inbox then retries the delivery later.
    """

    _forced_backoff: float | None = None

    def increment(  # type: ignore[override]
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Retry:
        if response is not None and response.status in (403, 429):
            wait = _retry_after(response.headers.get("Retry-After"))
            if wait is not None:
                self._check_wait(response, wait)
            elif response.status == 429:
                wait = _reset_wait(response.headers.get("x-ratelimit-reset"))
                wait = self.secondary_rate_wait if wait is None else wait
                self._check_wait(response, wait)
                retry = super().increment(method, url, response, error, _pool, _stacktrace)
                if isinstance(retry, ForgeRetry):
                    retry._forced_backoff = max(wait, 0.0)
                return retry
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def get_backoff_time(self) -> float:
        if self._forced_backoff is not None:
            return self._forced_backoff
        return float(super().get_backoff_time())

    def _check_wait(self, response: Any, wait: float) -> None:
        if self.max_rate_limit_wait is not None and wait > self.max_rate_limit_wait:
            raise RateLimitExceededExceedsMaxWait(
                response.status,
                {"message": f"rate limited for {wait:.0f}s"},
                dict(response.headers),
                wait=wait,
            )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        try:
            return max((parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds(), 0.0)
        except (TypeError, ValueError):
            return None


def _reset_wait(value: str | None) -> float | None:
    if not value or not value.isdigit():
        return None
    return max(int(value) - time.time(), 0.0) + 1.0


def make_retry(
    *, total: int = 6, backoff_factor: float = 1.0, max_wait: float = 300.0
) -> ForgeRetry:
    return ForgeRetry(
        total=total,
        backoff_factor=backoff_factor,
        backoff_max=120,
        status_forcelist=[429, *range(500, 600)],
        allowed_methods=frozenset({"GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"}),
        raise_on_status=False,  # exhausted: PyGithub raises its own GithubException
        secondary_rate_wait=60,
        max_rate_limit_wait=max_wait,
    )


# -- the forge -------------------------------------------------------------------------------
class GitHubForge:
    """A GitHub App installation's view of GitHub, through PyGithub."""

    name = "github"

    def __init__(
        self,
        app_id: int,
        private_key: str,
        api_url: str,
        *,
        throttle: bool = True,
        backoff_factor: float = 1.0,
        max_rate_limit_wait: float = 300.0,
        team_ttl: float = 300.0,
        timeout: int = 30,
        listing_budget: Callable[[], Budget] = Budget,
    ) -> None:
        self.app_id = int(app_id)
        self.listing_budget = listing_budget  # bounds a listing by trees (requests, time)
        self.api_url = api_url.rstrip("/")
        _count_api_calls()
        self._app_auth = Auth.AppAuth(self.app_id, sign_func=_jwt_signer(private_key))
        self._options: dict[str, Any] = {
            "base_url": self.api_url,
            "timeout": timeout,
            "per_page": 100,
            "lazy": True,
            "seconds_between_requests": 0.25 if throttle else None,
            "seconds_between_writes": 1.0 if throttle else None,
        }
        self._retry = lambda: make_retry(
            backoff_factor=backoff_factor, max_wait=max_rate_limit_wait
        )
        self._lock = threading.Lock()
        self._clients: dict[int, Github] = {}
        self._integration: GithubIntegration | None = None
        self._installations: dict[str, int] = {}  # repo full name or org (lower) -> id
        self._runs: OrderedDict[tuple[str, str], int] = OrderedDict()  # (repo, head) -> run id
        self._team_ttl = team_ttl
        self._teams: dict[str, tuple[float, frozenset[str]]] = {}

    @classmethod
    def from_settings(cls, settings: Any) -> GitHubForge:
        """Build from `bot.settings.Settings` (github_app_id, github_private_key_path, ...)."""
        with open(settings.github_private_key_path, encoding="utf-8") as fh:
            key = fh.read()
        throttle = bool(getattr(settings, "github_throttle", True))
        return cls(int(settings.github_app_id), key, settings.github_api_url, throttle=throttle)

    # -- clients ---------------------------------------------------------------------
    def client(self, installation_id: int) -> Github:
        with self._lock:
            gh = self._clients.get(installation_id)
            if gh is None:
                gh = Github(
                    auth=self._app_auth.get_installation_auth(installation_id),
                    retry=self._retry(),
                    **self._options,
                )
                self._clients[installation_id] = gh
            return gh

    def integration(self) -> GithubIntegration:
        with self._lock:
            if self._integration is None:
                self._integration = GithubIntegration(
                    auth=self._app_auth, retry=self._retry(), **self._options
                )
            return self._integration

    def remember_installation(self, repo: str, installation_id: int) -> None:
        owner = repo.split("/", 1)[0]
        with self._lock:
            self._installations[repo.lower()] = installation_id
            self._installations[owner.lower()] = installation_id

    def installation_of(self, repo: str) -> int:
        """The installation that covers `repo` (remembered from payloads, else asked)."""
        iid = self._installations.get(repo.lower())
        if iid is None:
            owner, name = repo.split("/", 1)
            iid = self.integration().get_repo_installation(owner, name).id
            self.remember_installation(repo, iid)
        return iid

    def _org_installation(self, org: str) -> int:
        iid = self._installations.get(org.lower())
        if iid is None:
            iid = self.integration().get_org_installation(org).id
            with self._lock:
                self._installations[org.lower()] = iid
        return iid

    def repo(self, full_name: str) -> Repository:
        """A lazy repository handle: building it makes no request."""
        return self.client(self.installation_of(full_name)).get_repo(full_name)

    # -- events -------------------------------------------------------------------------
    def subject_of(self, delivery: Delivery) -> str:
        payload = delivery.payload
        if payload is None:
            return ""
        repo = _repo_name(payload)
        if not repo:
            inst = (payload.get("installation") or {}).get("id")
            return f"github:installation:{inst}" if inst else ""
        event = delivery.event
        if event in ("pull_request", "pull_request_review"):
            number = payload.get("number") or (payload.get("pull_request") or {}).get("number")
            return f"github:{repo}#{number}"
        if event in ("check_run", "check_suite"):
            body = payload.get(event) or {}
            pulls = body.get("pull_requests") or []
            if pulls:
                return f"github:{repo}#{pulls[0].get('number')}"
            return f"github:{repo}@{body.get('head_sha', '')}"
        if event == "push":
            return f"github:{repo}@{payload.get('ref', '')}"
        if event == "deployment_protection_rule":
            return f"github:{repo}@deploy:{payload.get('environment', '')}"
        if event == "merge_group":
            return merge_queue.subject_of(repo, payload)
        return f"github:{repo}"

    def parse(self, delivery: Delivery) -> Work:
        payload = delivery.payload
        if payload is None:
            return Work("ignore", reason="body is not a JSON object")
        subject = self.subject_of(delivery)
        try:
            return self._parse(delivery.event, payload, subject)
        except UnknownObjectException as exc:  # retrying cannot make it exist
            what = subject or delivery.event
            return Work("ignore", subject, reason=f"{what}: not found on GitHub ({exc.status})")
        except (KeyError, TypeError, ValueError) as exc:
            return Work("ignore", subject, reason=f"{delivery.event}: malformed payload ({exc!r})")

    def _parse(self, event: str, payload: dict[str, Any], subject: str) -> Work:
        action = str(payload.get("action") or "")
        if event.startswith("installation") or event == "github_app_authorization":
            return self._installation_event(event, action, payload, subject)
        repo = _repo_name(payload)
        installation = (payload.get("installation") or {}).get("id")
        if not repo:
            return Work("ignore", subject, reason=f"{event}: no repository")
        if not isinstance(installation, int):
            return Work("ignore", subject, reason=f"{event}: no installation in the payload")
        self.remember_installation(repo, installation)

        if event == "pull_request":
            if action not in PULL_ACTIONS:
                return Work("ignore", subject, reason=f"pull_request {action} is not evaluated")
            number = payload.get("number") or payload["pull_request"]["number"]
            stated = (payload.get("pull_request") or {}).get("head", {}).get("sha")
            return self._evaluate_pull(repo, int(number), subject, event, stated)
        if event == "pull_request_review":
            if action not in REVIEW_ACTIONS:
                return Work(
                    "ignore", subject, reason=f"pull_request_review {action} changes nothing"
                )
            number = payload["pull_request"]["number"]
            stated = payload["pull_request"].get("head", {}).get("sha")
            return self._evaluate_pull(repo, int(number), subject, event, stated)
        if event in ("check_run", "check_suite"):
            return self._check_event(event, action, payload, repo, subject)
        if event == "push":
            return self._push(payload, repo, subject)
        if event == "deployment_protection_rule":
            return self._deployment_gate(payload, repo, subject)
        if event == "merge_group":
            return merge_queue.merge_group_work(self, payload, repo, subject)
        return Work("ignore", subject, reason=f"event {event} is not handled")

    def change_work(self, repo: str, number: int) -> Work:
        """Re-evaluation of a pull request as it is now (after a Slack decision)."""
        try:
            return self._evaluate_pull(repo, number, f"github:{repo}#{number}", RECHECK, None)
        except UnknownObjectException as exc:
            return Work("ignore", reason=f"{repo}#{number}: not found on GitHub ({exc.status})")

    def _installation_event(
        self, event: str, action: str, payload: dict[str, Any], subject: str
    ) -> Work:
        inst = (payload.get("installation") or {}).get("id")
        if action in ("deleted", "suspend") and isinstance(inst, int):
            with self._lock:  # its token is dead: drop the client and every mapping to it
                self._clients.pop(inst, None)
                for key in [k for k, v in self._installations.items() if v == inst]:
                    del self._installations[key]
        return Work("ignore", subject, reason=f"{event} {action}: bookkeeping only")

    def _evaluate_pull(
        self, repo: str, number: int, subject: str, event: str, stated: str | None
    ) -> Work:
        """Evaluate the pull request as it is now, whatever head the payload named."""
        pull = self.repo(repo).get_pull(number)
        state = pull.state  # a 404 (pull request or installation gone) is ignored by parse()
        if state != "open":
            return Work("ignore", subject, reason=f"{repo}#{number} is {state}")
        change = Change(
            repo=repo,
            base=pull.base.sha,
            head=pull.head.sha,
            forge="github",
            author=pull.user.login if pull.user else None,
            description=pull.body or "",
            title=pull.title or "",
            number=number,
            url=pull.html_url,
            base_ref=pull.base.ref,
            labels=tuple(label.name for label in pull.labels),
            draft=bool(pull.draft),
        )
        if stated and stated != change.head:
            reason = f"payload named head {stated[:12]}; evaluating current head {change.head[:12]}"
            return Work("evaluate", subject, change, reason, event=event, payload_head=stated)
        return Work("evaluate", subject, change=change, event=event)

    def _check_event(
        self,
        event: str,
        action: str,
        payload: dict[str, Any],
        repo: str,
        subject: str,
    ) -> Work:
        if action not in CHECK_ACTIONS or (event == "check_suite" and action != "rerequested"):
            return Work("ignore", subject, reason=f"{event} {action} is not ours to act on")
        body = payload.get(event) or {}
        app_id = (body.get("app") or {}).get("id")
        if app_id is not None and int(app_id) != self.app_id:
            return Work("ignore", subject, reason=f"{event} of another app ({app_id})")
        head = str(body.get("head_sha") or "")
        numbers = [int(p["number"]) for p in body.get("pull_requests") or [] if "number" in p]
        if not numbers and head:
            commit = self.repo(repo).get_commit(head)
            numbers = [p.number for p in commit.get_pulls() if p.state == "open"]
        if numbers:  # a commit in several pull requests: the first one's check run
            return self._evaluate_pull(repo, numbers[0], f"github:{repo}#{numbers[0]}", event, head)
        external = str(body.get("external_id") or "")
        if external.startswith("push:") and head:
            base = external.removeprefix("push:")
            change = Change(repo=repo, base=base, head=head, forge="github", title="push")
            return Work("evaluate", subject, change=change, event=event)
        return Work("ignore", subject, reason=f"{event}: no open pull request for {head[:12]}")

    def _push(self, payload: dict[str, Any], repo: str, subject: str) -> Work:
        ref = str(payload.get("ref") or "")
        default = (payload.get("repository") or {}).get("default_branch")
        before, after = str(payload.get("before") or ""), str(payload.get("after") or "")
        if not ref.startswith("refs/heads/"):
            return Work("ignore", subject, reason=f"push to {ref}: not a branch")
        if payload.get("deleted") or after == ZERO_SHA:
            return Work("ignore", subject, reason=f"{ref} deleted")
        if ref != f"refs/heads/{default}":
            return Work("ignore", subject, reason=f"push to {ref}: not the default branch")
        if before == ZERO_SHA or not before:
            return Work("ignore", subject, reason=f"{ref} created: no range to check")
        head_commit = payload.get("head_commit") or {}
        message = str(head_commit.get("message") or "")
        change = Change(
            repo=repo,
            base=before,
            head=after,
            forge="github",
            author=(payload.get("sender") or {}).get("login"),
            description=message,
            title=f"push to {default}",
            base_ref=str(default),
            draft=False,
        )
        merged = self._merged_pulls(repo, after, str(default))
        if merged:  # judged with what its pull request said, as it was when it passed
            change = dataclasses.replace(
                change,
                author=merged[0].user.login if merged[0].user else change.author,
                description="\n\n".join([*(p.body or "" for p in merged), message]).strip(),
                title=f"push to {default}: " + ", ".join(f"#{p.number} {p.title}" for p in merged),
                labels=tuple(sorted({label.name for p in merged for label in p.labels})),
            )
            # approvals carry over only to a merge commit holding the very files approved
            tree = self._tree_of(repo, after)
            landed = tuple(
                Landed(f"github:{repo}#{p.number}", p.number, p.head.sha)
                for p in merged
                if self._tree_of(repo, p.head.sha) == tree
            )
            return Work("evaluate", subject, change=change, event="push", landed=landed)
        return Work("evaluate", subject, change=change, event="push")

    def _tree_of(self, repo: str, sha: str) -> str:
        return str(self.repo(repo).get_git_commit(sha).tree.sha)

    def _merged_pulls(self, repo: str, sha: str, default: str) -> list[Any]:
        """The pull requests merged into `default` as commit `sha` (a merge or squash
        commit): a push of a merge is the pull request landing, and its description (the
        playbook link, say) is the pull request's, not the merge commit's message."""
        pulls = self.repo(repo).get_commit(sha).get_pulls()
        return [p for p in pulls if p.merged_at is not None and p.base.ref == default]

    def _deployment_gate(self, payload: dict[str, Any], repo: str, subject: str) -> Work:
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
            initiators = self._deploy_initiators(repo, run_id, sha, payload)
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
        self, repo: str, run_id: int, sha: str, payload: dict[str, Any]
    ) -> tuple[tuple[str, str], ...]:
        """Everyone behind a deployment, not only its creator (often `github-actions[bot]`):
        the workflow run's actor and triggering actor, and the authors of the pull requests
        of the deployed SHA. None of them may approve it."""
        logins: list[str] = [str((payload.get("deployment") or {}).get("creator", {}).get("login")
                                 or "")]  # fmt: skip
        gh_repo = self.repo(repo)
        run = gh_repo.get_workflow_run(run_id)
        logins += [u.login for u in (run.actor, run.triggering_actor) if u is not None]
        logins += [str((p.get("user") or {}).get("login") or "")
                   for p in payload.get("pull_requests") or [] if isinstance(p, dict)]  # fmt: skip
        if re.fullmatch(r"[0-9a-f]{40}", sha):
            logins += [p.user.login for p in gh_repo.get_commit(sha).get_pulls() if p.user]
        seen: dict[str, None] = {}
        for login in logins:
            if login:
                seen.setdefault(login, None)
        return tuple(("github", login) for login in seen)

    def answer_deployment(
        self, repo: str, environment: str, target: DeployTarget, approved: bool, comment: str
    ) -> tuple[int, ...]:
        """Approve or reject a workflow run waiting on our protection rule."""
        if target.kind is not DeployKind.PROTECTION_RULE or target.run_id is None:
            raise ValueError(f"GitHub cannot answer a {target.kind} deployment")
        gh_repo = self.repo(repo)
        gh_repo.requester.requestJsonAndCheck(
            "POST",
            f"{gh_repo.url}/actions/runs/{int(target.run_id)}/deployment_protection_rule",
            input={
                "environment_name": environment,
                "state": "approved" if approved else "rejected",
                "comment": comment[:1024],
            },
        )
        return ()

    # -- reading ----------------------------------------------------------------------
    def view(self, change: Change) -> GitHubView:
        return GitHubView(self, change)

    def repository_policy(self, change: Change) -> str | None:
        repo = self.repo(change.repo)
        try:
            found = repo.get_contents(REPOSITORY_POLICY)  # no ref: the default branch
        except UnknownObjectException:
            return None
        if isinstance(found, list) or found.type != "file":
            return None
        data = found.decoded_content if found.encoding == "base64" else self.blob(repo, found.sha)
        return data.decode("utf-8", "replace")

    def approvals(self, change: Change) -> list[Approval]:
        """The latest approving review of each reviewer, bound to the commit it was given on.

        A later comment does not withdraw an approval; a later change request or a dismissal
        does (GitHub's own rule).
        """
        if change.number is None:
            return []
        latest: dict[str, Any] = {}
        for review in self.repo(change.repo).get_pull(change.number).get_reviews():
            if review.user is None or review.state not in (
                "APPROVED",
                "CHANGES_REQUESTED",
                "DISMISSED",
            ):
                continue
            latest[review.user.login.lower()] = review
        return [
            Approval(
                system="github", user=r.user.login, sha=r.commit_id, via="review", at=_naive(r)
            )
            for r in latest.values()
            if r.state == "APPROVED" and r.commit_id
        ]

    def directory(self, entries: list[str]) -> Directory:
        members: dict[str, frozenset[str]] = {}
        for entry in entries:
            if entry.startswith("@") and "/" in entry:
                members[entry] = self._team_members(entry)
        return Directory(members=members)

    def _team_members(self, entry: str) -> frozenset[str]:
        now = time.monotonic()
        hit = self._teams.get(entry.lower())
        if hit is not None and hit[0] > now:
            return hit[1]
        org, slug = entry[1:].split("/", 1)
        try:
            gh = self.client(self._org_installation(org))
            team = gh.get_organization(org).get_team_by_slug(slug)
            logins = frozenset(m.login for m in team.get_members())
        except UnknownObjectException:
            log.warning("team %s not found (or the App lacks members: read)", entry)
            logins = frozenset()
        self._teams[entry.lower()] = (now + self._team_ttl, logins)
        return logins

    def blob(self, repo: Repository, sha: str) -> bytes:
        hit, data = BLOBS.get(sha)
        if hit and data is not None:
            return data
        found = repo.get_git_blob(sha)
        content = (
            base64.b64decode(found.content)
            if found.encoding == "base64"
            else found.content.encode()
        )
        BLOBS.put(sha, content, len(content))
        return content

    # -- check runs -------------------------------------------------------------------
    def start(self, change: Change, details_url: str) -> None:
        repo = self.repo(change.repo)
        key = (change.repo.lower(), change.head)
        run_id = self._runs.get(key)
        output: dict[str, Any] = {
            "title": "Checking…",
            "summary": f"Evaluating `{change.head[:12]}`.",
        }
        if run_id is not None:  # an earlier attempt died before publishing: reuse its run
            repo.get_check_run(run_id).edit(
                status="in_progress", details_url=details_url, output=output
            )
            return
        run = repo.create_check_run(
            name=CHECK_NAME,
            head_sha=change.head,
            status="in_progress",
            details_url=details_url,
            external_id=_external_id(change),
            started_at=datetime.now(UTC),
            output=output,
        )
        with self._lock:
            self._runs[key] = run.id
            while len(self._runs) > 10_000:
                self._runs.popitem(last=False)

    def publish(
        self, change: Change, verdict: Verdict, details_url: str, *, note: str | None = None
    ) -> None:
        """`note` (a rejection in Slack, a break-glass) titles the run and heads its summary."""
        repo = self.repo(change.repo)
        key = (change.repo.lower(), change.head)
        with self._lock:
            run_id = self._runs.pop(key, None)
        if run_id is None:
            run_id = self._find_open_run(repo, change.head)
        title = check_title(verdict)
        summary = summary_markdown(verdict, details_url)
        if note:
            title = note[:TITLE_LIMIT]
            summary = f"**{note}**\n\n{summary}"[:SUMMARY_LIMIT]
        batches = list(_batches([annotation(f) for f in verdict.findings if f.path]))
        first = batches[0] if batches else []
        output = {"title": title, "summary": summary, "annotations": first}
        if run_id is None:
            run = repo.create_check_run(
                name=CHECK_NAME,
                head_sha=change.head,
                status="completed",
                conclusion=_CONCLUSION[verdict.decision],
                details_url=details_url,
                external_id=_external_id(change),
                completed_at=datetime.now(UTC),
                output=output,  # type: ignore[arg-type]
            )
        else:
            run = repo.get_check_run(run_id)
            run.edit(
                status="completed",
                conclusion=_CONCLUSION[verdict.decision],
                completed_at=datetime.now(UTC),
                details_url=details_url,
                output=output,
            )
        for batch in batches[1:]:  # GitHub appends annotations of further updates
            run.edit(output={"title": title, "summary": summary, "annotations": batch})

    def _find_open_run(self, repo: Repository, head: str) -> int | None:
        """Our unfinished check run on `head`, when `start` ran in another process."""
        runs = repo.get_commit(head).get_check_runs(check_name=CHECK_NAME, status="in_progress")
        for run in runs:
            if run.app is None or run.app.id == self.app_id:
                return int(run.id)
        return None


# -- the file view -----------------------------------------------------------------------------
class GitHubView(FileView):
    """A pull request's or push's files, read through the API only when a rule asks.

    Changed files come from the pull request's file list (or compare, for pushes); head
    contents by blob SHA; base contents at the merge base (what the pull request shows).
    """

    def __init__(self, forge: GitHubForge, change: Change) -> None:
        super().__init__(change)
        self.forge = forge
        self.api = forge.api_url
        self.repo = forge.repo(change.repo)
        self._listing: _Listing | None = None
        self._by_path: dict[str, _File] = {}
        self._renamed_from: set[str] = set()
        self._lookups: dict[str, int] = {}  # commit -> path lookups without a tree
        self._tree_unlisted: str | None = None  # a tree a rule needed could not be read whole

    # -- listing ------------------------------------------------------------------------
    def _list(self) -> _Listing:
        if self._listing is not None:
            return self._listing
        c = self.change
        key = (self.api, c.repo.lower(), str(c.number or ""), c.base or "", c.head)
        hit, listing = LISTINGS.get(key)
        if not hit or listing is None:
            listing = self._fetch_listing()
            if listing.unlisted is None:  # a listing cut by the budget may finish next time
                LISTINGS.put(key, listing)
        self._listing = listing
        self._by_path = {f.path: f for f in listing.files}
        self._renamed_from = {f.old_path for f in listing.files if f.old_path}
        for f in listing.files:
            if f.status is not FileStatus.DELETED:
                PATHS.put((self.api, c.repo.lower(), c.head, f.path), f.sha)
        return listing

    def _fetch_listing(self) -> _Listing:
        c = self.change
        if c.number is not None:
            files: list[_File] = []
            for item in self.repo.get_pull(c.number).get_files():
                files.append(_file(item))
                if len(files) >= MAX_PULL_FILES:
                    break
            if len(files) < MAX_PULL_FILES:
                return _Listing(tuple(files), True)
            return self._listing_by_trees(
                files, self.merge_base, f"GitHub lists at most {MAX_PULL_FILES:,} files"
            )
        if c.base is None:  # a deploy names one commit: every file is in scope, as in a scan
            paths = self._tree(c.head)
            return _Listing(
                tuple(_File(p, FileStatus.ADDED, sha) for p, sha in sorted(paths.items())), True
            )
        comparison = self.repo.compare(c.base, c.head)
        files = [_file(item) for item in comparison.files]
        merge_base = comparison.merge_base_commit.sha
        MERGE_BASES.put((self.api, c.repo.lower(), c.base, c.head), merge_base)
        if len(files) < MAX_COMPARE_FILES:
            return _Listing(tuple(files), True, merge_base)
        return self._listing_by_trees(
            files, merge_base, f"GitHub compares at most {MAX_COMPARE_FILES} files"
        )

    def _listing_by_trees(self, listed: list[_File], merge_base: str, cap: str) -> _Listing:
        """The change by comparing the git trees of the merge base and the head, when
        GitHub's file list was cut at its cap. If even that cannot be done within the
        budget, the listing says so and the verdict fails."""
        c = self.change
        log.info("%s %s: %s; listing by git trees", c.repo, c.number or c.head[:12], cap)
        try:
            changes = diff_trees(
                _GitHubTrees(self.repo), merge_base, c.head, self.forge.listing_budget()
            )
        except ListingIncomplete as exc:
            log.warning("%s %s: change not listed whole: %s", c.repo, c.number or "", exc)
            return _Listing(
                tuple(listed),
                False,
                merge_base,
                unlisted=f"{cap}, so changegate compared the git trees of "
                f"{merge_base[:12]} and {c.head[:12]} instead, and could not finish: {exc}. "
                "Files beyond the first "
                f"{len(listed):,} were not checked.",
            )
        files = tuple(_File(ch.path, ch.status, ch.sha) for ch in changes)
        return _Listing(files, True, merge_base)

    def unlisted(self) -> str | None:
        return self._list().unlisted or self._tree_unlisted

    def shown_base(self) -> str | None:
        return self.merge_base if self.change.base is not None else None

    def changed_files(self) -> list[ChangedFile]:
        return sorted(
            (ChangedFile(f.path, f.status, f.old_path) for f in self._list().files),
            key=lambda f: f.path,
        )

    @property
    def merge_base(self) -> str:
        c = self.change
        if c.base is None:
            raise ValueError("no base revision")
        key = (self.api, c.repo.lower(), c.base, c.head)
        hit, sha = MERGE_BASES.get(key)
        if hit and sha:
            return sha
        sha = self.repo.compare(c.base, c.head).merge_base_commit.sha
        MERGE_BASES.put(key, sha)
        return sha

    # -- reading ---------------------------------------------------------------------------
    def read(self, path: str, rev: str = "head") -> bytes | None:
        sha = self._blob_sha(path, rev)
        return None if sha is None else self.forge.blob(self.repo, sha)

    def blob_id(self, path: str) -> str | None:
        """The blob SHA of `path` at the head, None where the head has no such file."""
        return self._blob_sha(path, "head")

    def _blob_sha(self, path: str, rev: str) -> str | None:
        listing = self._list()
        entry = self._by_path.get(path)
        if rev == "head":
            if entry is not None:
                return None if entry.status is FileStatus.DELETED else entry.sha
            if path in self._renamed_from:
                return None
            return self._sha_at(self.change.head, path)
        if not self.has_base:
            return None
        if entry is not None and entry.status in (FileStatus.ADDED, FileStatus.RENAMED):
            return None
        if entry is None and path not in self._renamed_from and listing.complete:
            return self._sha_at(self.change.head, path)  # unchanged: the head blob is the base blob
        return self._sha_at(self.merge_base, path)

    def _sha_at(self, commit: str, path: str) -> str | None:
        """The blob SHA of `path` at `commit`: from a cached tree, else the contents API
        (whose answer also carries the contents, saving the blob request). Rules probe for
        files that may not exist (kustomization.yaml in every parent directory...): after
        `PROBES_BEFORE_TREE` lookups at one commit, one tree request answers all the rest."""
        repo_key = self.change.repo.lower()
        key = (self.api, repo_key, commit, path)
        hit, sha = PATHS.get(key)
        if hit:
            return sha
        tree_hit, tree = TREES.get((self.api, repo_key, commit))
        if not tree_hit or tree is None:
            self._lookups[commit] = self._lookups.get(commit, 0) + 1
            if self._lookups[commit] > PROBES_BEFORE_TREE:
                tree = self._tree(commit)
        sha = tree.get(path) if tree is not None else self._contents_sha(commit, path)
        PATHS.put(key, sha)
        return sha

    def _contents_sha(self, commit: str, path: str) -> str | None:
        try:
            found = self.repo.get_contents(path, ref=commit)
        except UnknownObjectException:
            return None
        if isinstance(found, list) or found.type != "file":
            return None
        if found.encoding == "base64" and found.content is not None:
            data = found.decoded_content
            if len(data) == found.size:
                BLOBS.put(found.sha, data, len(data))
        return found.sha

    def head_paths(self) -> list[str]:
        return sorted(self._tree(self.change.head))

    def _tree(self, commit: str) -> dict[str, str]:
        key = (self.api, self.change.repo.lower(), commit)
        hit, tree = TREES.get(key)
        if hit and tree is not None:
            return tree
        found = self.repo.get_git_tree(commit, recursive=True)
        tree = {e.path: e.sha for e in found.tree if e.type == "blob"}
        if found.truncated:  # GitHub cut the listing: read it tree by tree
            try:
                tree = list_tree(_GitHubTrees(self.repo), commit, self.forge.listing_budget())
            except ListingIncomplete as exc:
                log.warning("%s@%s: tree not listed whole: %s", self.change.repo, commit[:12], exc)
                self._tree_unlisted = (
                    f"GitHub cut the file tree of {commit[:12]} short, and changegate could "
                    f"not read it tree by tree: {exc}"
                )
                return tree
        TREES.put(key, tree)
        return tree


class _GitHubTrees:
    """Git trees through the API, for `treediff` (a commit SHA names its root tree)."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    def whole(self, commit: str, budget: Budget) -> tuple[list[Entry], bool]:
        budget.charge()
        found = self.repo.get_git_tree(commit, recursive=True)
        return [Entry(e.path, e.type, e.sha) for e in found.tree], bool(found.truncated)

    def level(self, commit: str, path: str, sha: str, budget: Budget) -> list[Entry]:
        budget.charge()
        found = self.repo.get_git_tree(sha)
        if found.truncated:
            raise ListingIncomplete(
                f"GitHub cut the listing of {path or 'the root'}/ at {commit[:12]}"
            )
        prefix = f"{path}/" if path else ""
        return [Entry(prefix + e.path, e.type, e.sha) for e in found.tree]


# -- rendering ------------------------------------------------------------------------------
def check_title(verdict: Verdict) -> str:
    blocking = sum(1 for f in verdict.findings if f.action is Action.BLOCK)
    if verdict.decision is Decision.FAIL:
        return f"{blocking} blocking finding{'s' if blocking != 1 else ''}"
    if verdict.decision is Decision.APPROVAL_REQUIRED:
        missing = verdict.missing_approvals
        return f"Approval required ({', '.join(s.rule for s in missing)})"[:TITLE_LIMIT]
    warned = len(verdict.findings)
    return "Passed" + (f" with {warned} warning{'s' if warned != 1 else ''}" if warned else "")


def summary_markdown(verdict: Verdict, details_url: str) -> str:
    from bot.report import markdown_summary

    text = markdown_summary(verdict, details_url=details_url, limit=SUMMARY_LIMIT)
    if len(text) > SUMMARY_LIMIT:  # belt and braces: GitHub rejects the whole update
        note = "\n\n… summary truncated"
        text = text[: SUMMARY_LIMIT - len(note)] + note
    return text


def annotation(finding: Finding) -> dict[str, Any]:
    line = finding.line or 1
    title = f"{finding.rule}: {finding.subject}" if finding.subject else finding.rule
    return {
        "path": finding.path,
        "start_line": line,
        "end_line": line,
        "annotation_level": _LEVEL[finding.action],
        "title": title[:TITLE_LIMIT],
        "message": (BEFORE_NOTE if finding.preexisting else "")
        + (finding.message[:SUMMARY_LIMIT] or finding.rule),
    }


#: How an annotation on a line the change did not touch begins (bot/policy/preexisting.py).
BEFORE_NOTE = "Already present before this change (not judged): "


def _batches(items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(items), ANNOTATIONS_PER_REQUEST):
        yield items[i : i + ANNOTATIONS_PER_REQUEST]


def _file(item: Any) -> _File:
    status = _STATUS.get(item.status, FileStatus.MODIFIED)
    old = item.previous_filename if status is FileStatus.RENAMED else None
    return _File(item.filename, status, item.sha, old)


class GitHubSignIn:
    """ "Sign in with GitHub" for the admin pages: the GitHub App's user web flow, through
    PyGithub's `ApplicationOAuth`. The authorize and token URLs are derived from
    `CHANGEGATE_GITHUB_API_URL` the way PyGithub does it (api.github.com -> github.com,
    `https://host/api/v3` -> `https://host`), so a GitHub Enterprise server or a local
    stand-in needs nothing more. The user's token is used once, to ask who they are, and
    is not kept."""

    def __init__(self, client_id: str, client_secret: str, api_url: str, *, timeout: int = 15):
        self.api_url = api_url.rstrip("/")
        self._timeout = timeout
        app = Github(base_url=self.api_url, timeout=timeout, retry=self._retry())
        self._oauth = app.get_oauth_application(client_id, client_secret)

    @staticmethod
    def _retry() -> ForgeRetry:
        """Someone is waiting at the browser: two quick retries, then say GitHub is down."""
        return make_retry(total=2, backoff_factor=0.25, max_wait=5)

    @classmethod
    def from_settings(cls, settings: Any) -> GitHubSignIn | None:
        """None unless the App's client id and secret are set."""
        secret = settings.github_client_secret
        if not settings.github_client_id or secret is None:
            return None
        return cls(settings.github_client_id, secret.get_secret_value(), settings.github_api_url)

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        return self._oauth.get_login_url(redirect_uri=redirect_uri, state=state)

    def login_of(self, code: str) -> str | None:
        """The login of the user who authorized, or None when GitHub refuses the code
        (wrong, used already, expired: GitHub answers those 200 with an `error`)."""
        try:
            token = self._oauth.get_access_token(code)
        except GithubException as exc:
            if exc.status != 200:  # GitHub is down or refusing us: not the user's fault
                raise
            log.warning("GitHub sign-in: the code was refused (%s)", exc.data)
            return None
        user = Github(
            base_url=self.api_url,
            auth=Auth.Token(token.token),
            timeout=self._timeout,
            retry=self._retry(),
        ).get_user()
        return str(user.login)


@functools.lru_cache(maxsize=8)
def _load_key(private_key: str) -> Any:
    return load_pem_private_key(private_key.encode(), password=None)


def _jwt_signer(private_key: str) -> Callable[[dict[str, Any]], str]:
    """Parse the App key once: cryptography's RSA key checks cost ~0.1 s per parse, and
    PyGithub would parse the PEM again for every JWT it signs."""
    key = _load_key(private_key)

    def sign(claims: dict[str, Any]) -> str:
        return jwt.encode(claims, key, algorithm="RS256")

    return sign


def _naive(review: Any) -> datetime | None:
    """A review's `submitted_at` as naive UTC, as the store keeps times."""
    at = review.submitted_at
    return at.astimezone(UTC).replace(tzinfo=None) if at is not None else None


def _external_id(change: Change) -> str:
    """Lets a re-requested check run on a push find its range again."""
    return f"pr:{change.number}" if change.number is not None else f"push:{change.base or ''}"


def _repo_name(payload: dict[str, Any]) -> str:
    repo = payload.get("repository")
    name = repo.get("full_name") if isinstance(repo, dict) else None
    return name if isinstance(name, str) and "/" in name else ""


_: type[Forge] = GitHubForge  # mypy checks the forge against the protocol
