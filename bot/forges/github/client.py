"""GitHub App authentication and PyGithub clients: one `Github` per installation, retries
that honour GitHub's waits, and the API calls counted for the metrics.

Every API call is built from the configured API URL with PyGithub (a repository by its
full name, an installation by its id); no URL taken from a payload is ever followed, and
PyGithub itself refuses URLs outside its base. PyGithub refreshes an installation token
shortly before it expires.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from github import Auth, Github, GithubIntegration, GithubRetry
from github.GithubException import RateLimitExceededExceedsMaxWait
from github.Repository import Repository
from urllib3.util.retry import Retry

from bot import metrics
from bot.forges.common import retry_after, until_reset
from bot.forges.treediff import Budget


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
            wait = retry_after(response.headers.get("Retry-After"))
            if wait is not None:
                self._check_wait(response, wait)
            elif response.status == 429:
                reset = until_reset(response.headers.get("x-ratelimit-reset"))
                wait = self.secondary_rate_wait if reset is None else reset + 1.0
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


# -- the App's clients -------------------------------------------------------------------------
@dataclass(frozen=True)
class GitHubOptions:
    """How the App talks to GitHub (defaults suit production; tests turn throttling off)."""

    #: GitHub's advice: at least 1 s between mutative requests (reads are not spaced: their
    #: concurrency is bounded by max_concurrent_reads instead)
    throttle: bool = True
    backoff_factor: float = 1.0
    max_rate_limit_wait: float = 300.0  # longer waits raise: the inbox retries later
    timeout: int = 30
    listing_budget: Callable[[], Budget] = Budget  # bounds a listing by trees
    team_ttl: float = 300.0  # seconds team members are remembered
    #: file contents fetched at once when rules are about to read many (1: one at a time)
    max_concurrent_reads: int = 8


class GitHubApi:
    """The GitHub App: its installations and one PyGithub client for each."""

    def __init__(self, app_id: int, private_key: str, api_url: str, options: GitHubOptions):
        self.app_id = int(app_id)
        self.api_url = api_url.rstrip("/")
        self.listing_budget = options.listing_budget
        self.max_concurrent_reads = max(1, options.max_concurrent_reads)
        _count_api_calls()
        self._app_auth = Auth.AppAuth(self.app_id, sign_func=_jwt_signer(private_key))
        self._options: dict[str, Any] = {
            "base_url": self.api_url,
            "timeout": options.timeout,
            "per_page": 100,
            "lazy": True,
            "seconds_between_requests": None,
            "seconds_between_writes": 1.0 if options.throttle else None,
        }
        self._retry = lambda: make_retry(
            backoff_factor=options.backoff_factor, max_wait=options.max_rate_limit_wait
        )
        self._lock = threading.Lock()
        self._clients: dict[int, Github] = {}
        self._integration: GithubIntegration | None = None
        self._installations: dict[str, int] = {}  # repo full name or org (lower) -> id

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

    def forget_installation(self, installation_id: int) -> None:
        """Its token is dead (uninstalled, suspended): drop the client and every mapping."""
        with self._lock:
            self._clients.pop(installation_id, None)
            for key in [k for k, v in self._installations.items() if v == installation_id]:
                del self._installations[key]

    def installation_of(self, repo: str) -> int:
        """The installation that covers `repo` (remembered from payloads, else asked)."""
        iid = self._installations.get(repo.lower())
        if iid is None:
            owner, name = repo.split("/", 1)
            iid = self.integration().get_repo_installation(owner, name).id
            self.remember_installation(repo, iid)
        return iid

    def org_installation(self, org: str) -> int:
        iid = self._installations.get(org.lower())
        if iid is None:
            iid = self.integration().get_org_installation(org).id
            with self._lock:
                self._installations[org.lower()] = iid
        return iid

    def repo(self, full_name: str) -> Repository:
        """A lazy repository handle: building it makes no request."""
        return self.client(self.installation_of(full_name)).get_repo(full_name)


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
