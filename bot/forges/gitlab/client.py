"""python-gitlab for one bot user's token: bounded retries, rate-limit waits, API calls
counted for the metrics, and projects addressed by their stable numeric id.

Every API call goes to the configured URL (`CHANGEGATE_GITLAB_URL`, self-managed or not):
projects are addressed by the numeric id from the payload or by their full path, subgroups
included; no URL inside a payload (`web_url`, `deployable_url`, ...) is ever followed, and
python-gitlab is told to keep its base URL even when a server's pagination links name
another host.

Retries: python-gitlab retries 5xx (and 409 "Resource lock") with a short exponential
backoff when `retry_transient_errors` is on, and waits out a 429 for `Retry-After` seconds.
Here 5xx are retried at most `max_retries` times (about 1.5 s in all by default: a longer
outage is the inbox's job, which retries the delivery later), and a 429 asking for more than
`max_rate_limit_wait` seconds raises `GitLabRateLimited` instead of blocking a worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import gitlab
import requests

from bot import metrics
from bot.forges.cache import LRU
from bot.forges.common import retry_after, until_reset
from bot.forges.treediff import Budget


class GitLabRateLimited(Exception):
    """GitLab asked to wait longer than a worker should block; the inbox retries later."""

    def __init__(self, wait: float, url: str) -> None:
        super().__init__(f"GitLab rate limit: retry after {wait:.0f}s ({url})")
        self.retry_after = wait


class GitLabNotReady(Exception):
    """The merge request's diff is still being computed; the inbox retries later."""


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


def _wait_asked(headers: Any) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or an HTTP date) or `RateLimit-Reset`."""
    wait = retry_after(headers.get("Retry-After"))
    return wait if wait is not None else until_reset(headers.get("RateLimit-Reset"))


@dataclass(frozen=True)
class _Project:
    id: int
    path: str
    default_branch: str | None
    fetched: float


@dataclass(frozen=True)
class GitLabOptions:
    """How changegate talks to GitLab (defaults suit production)."""

    max_retries: int = 4  # transient errors (5xx, 409 "Resource lock") retried per request
    max_rate_limit_wait: float = 120.0  # a 429 asking longer raises: the inbox retries later
    timeout: float = 30.0
    project_ttl: float = 300.0  # seconds a project's path and default branch are remembered
    group_ttl: float = 300.0  # seconds group members are remembered
    listing_budget: Callable[[], Budget] = Budget  # bounds a listing by trees


class GitLabApi:
    """A GitLab instance through python-gitlab, with the projects it has seen."""

    def __init__(self, url: str, token: str, options: GitLabOptions) -> None:
        self.url = url.rstrip("/")
        self.listing_budget = options.listing_budget
        self.max_rate_limit_wait = options.max_rate_limit_wait
        session = requests.Session()
        session.hooks["response"].append(self._on_response)
        self.gl = _Client(
            self.url,
            private_token=token,
            retry_transient_errors=True,
            keep_base_url=True,
            timeout=options.timeout,
            per_page=100,
            session=session,
        )
        self.gl.max_retries = options.max_retries
        self._lock = threading.Lock()
        self._project_ttl = options.project_ttl
        self._projects: dict[str, _Project] = {}  # str(id) and lower-cased path -> project
        self.refs: LRU[tuple[str, str], str] = LRU(max_entries=4096)  # (repo, sha) -> branch
        self._bot: str | None = None

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Normalise a 429's wait for python-gitlab (it only reads integer `Retry-After`),
        and refuse waits longer than a worker should block."""
        if response.status_code != 429:
            return
        wait = _wait_asked(response.headers)
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

    def encoded(self, key: str | int) -> str:
        known = self._projects.get(str(key).lower())
        return str(known.id) if known else quote(str(key), safe="")

    def bot_username(self) -> str:
        if self._bot is None:
            self.gl.auth()
            assert self.gl.user is not None
            self._bot = str(self.gl.user.username)
        return self._bot
