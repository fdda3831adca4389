"""Verdict and admin pages: read-only views over the store, rendered on the server.

The verdict page (`/v/{token}`, the check run's details URL) answers "why is my change
blocked, and who can unblock it"; it is reachable only through its unguessable token.
The admin pages (`/admin/...`) show open approval requests, recent verdicts, the
dead-letter queue, the audit log and the loaded policy, behind the `admin_token`
setting; without that setting they do not exist (404), they are never open.

Every page is built as one plain, JSON-ready dict (the "view") that is both rendered by a
Jinja2 template and, for `?format=json` or `Accept: application/json`, returned as is: the
JSON twin can never show something the page does not, or the other way round.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Route

from bot import audit, inbox, store
from bot.approvals.models import approval_decisions, approval_requests, audit_log
from bot.forges.github import GitHubSignIn
from bot.policy.approvers import Directory
from bot.policy.schema import Policy

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STYLESHEET = HERE / "static" / "changegate.css"

SESSION_COOKIE = "changegate_admin"
SESSION_SECONDS = 12 * 3600
SIGN_IN_COOKIE = "changegate_sign_in"
SIGN_IN_SECONDS = 600  # from "Sign in with GitHub" to the callback
MAX_FORM_BYTES = 16 * 1024
PAGE_LIMIT = 100
DECISIONS = ("fail", "approval_required", "pass")
SYSTEMS = ("github", "gitlab", "slack")

#: What to do about a finding, per rule kind: the message says what is wrong, this says
#: how to make it right (policy-bot's most common complaint is a page that only says "no").
FIXES: dict[str, str] = {
    "unpinned-image": (
        "Pin the image to a release tag that never moves (nginx:1.25.3) or to a digest "
        "(nginx@sha256:…). For a GitHub Action, use the full 40-character commit SHA."
    ),
    "yaml-version-coercion": (
        'Quote the value ("1.20") so YAML reads it as the string you wrote, not a number '
        "or a boolean."
    ),
    "shared-resource": (
        "Give each environment its own datastore instance (its own host and port). "
        "Another database number or name on the same server is still the same instance."
    ),
    "prod-only-change": (
        "Make the same change in another environment (staging) in this change, or get "
        "the approval asked for on this page."
    ),
    "migration-playbook": (
        "Link the migration playbook in the description: a URL matching the policy's "
        "pattern, or a docs/playbooks/….md file that exists at the head commit."
    ),
    "dependency-major-upgrade": (
        "Read the upgrade notes of the new major version and check every caller of what "
        "it removed, then get the approval asked for on this page."
    ),
    "env-drift": (
        "Set the key in another environment's configuration too (staging's values, manifest "
        "or .env), so the setting runs somewhere before production, or get the approval."
    ),
    "incomplete-change": (
        "changegate could not list every file of this change, so it cannot vouch for it. "
        "Split it into smaller pull/merge requests, or re-run the check (a listing that ran "
        "out of time may finish)."
    ),
}
ACTION_NOTES = {
    "block": "Blocks merging until the file is fixed.",
    "require-approval": "Needs an approval from the rule's group (see the approvals).",
    "warn": "Shown for information; it does not block.",
}
DECISION_LABELS = {
    "fail": "Blocked",
    "approval_required": "Waiting for approval",
    "pass": "Passed",
}


class PolicySource(Protocol):
    """What the pages need of bot.governor.PolicyHolder: the policy and where it came from.

    `loaded_at` (naive UTC) is read with getattr: a holder without it shows the policy
    file's modification time instead."""

    path: Path
    error: str | None

    @property
    def policy(self) -> Policy: ...


# -- small helpers ----------------------------------------------------------------------


def iso(value: dt.datetime | None) -> str | None:
    """Naive UTC (what the store holds) as ISO 8601 with a Z."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"


def _when(value: str | None) -> str:
    """Jinja filter: `2024-06-03T09:00:00Z` -> `2024-06-03 09:00 UTC`."""
    if not value:
        return ""
    return value.replace("T", " ")[:16] + " UTC"


def _short(sha: str | None) -> str:
    return (sha or "")[:7]


@contextlib.contextmanager
def _reading(engine: Engine) -> Iterator[Connection]:
    """A read-only connection: on SQLite a deferred BEGIN, so a page never takes the
    write lock that workers and webhooks need."""
    with engine.connect().execution_options(sqlite_deferred=True) as conn:
        yield conn


def _secret_value(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    return str(value) or None


# -- links to the forge ------------------------------------------------------------------


def forge_web_base(settings: Any, forge: str) -> str | None:
    """The forge's web address, derived from the API settings: api.github.com ->
    github.com, GitHub Enterprise `https://host/api/v3` -> `https://host`, GitLab's own URL."""
    if forge == "github":
        api = str(getattr(settings, "github_api_url", "") or "https://api.github.com")
        parts = urllib.parse.urlsplit(api.rstrip("/"))
        host, path = parts.netloc, parts.path
        if path.endswith("/api/v3"):
            path = path[: -len("/api/v3")]
        elif host.startswith("api.") and not path:
            host = host[len("api.") :]
        return f"{parts.scheme or 'https'}://{host}{path}".rstrip("/")
    if forge == "gitlab":
        url = getattr(settings, "gitlab_url", None)
        return str(url).rstrip("/") if url else None
    return None


@dataclass(frozen=True)
class ForgeLinks:
    """Web links into one forge; every method returns None when the forge has no web UI."""

    forge: str
    base: str | None

    def _repo(self, repo: str) -> str | None:
        if not self.base or not repo:
            return None
        return f"{self.base}/{urllib.parse.quote(repo, safe='/')}"

    def blob(self, repo: str, sha: str, path: str, line: int | None) -> str | None:
        root = self._repo(repo)
        if root is None or not sha or not path:
            return None
        middle = "/-/blob/" if self.forge == "gitlab" else "/blob/"
        url = f"{root}{middle}{urllib.parse.quote(sha, safe='')}/{urllib.parse.quote(path)}"
        return f"{url}#L{line}" if line else url

    def change(self, repo: str, number: int | None) -> str | None:
        root = self._repo(repo)
        if root is None or number is None:
            return None
        return (
            f"{root}/-/merge_requests/{number}"
            if self.forge == "gitlab"
            else f"{root}/pull/{number}"
        )

    def commit(self, repo: str, sha: str) -> str | None:
        root = self._repo(repo)
        if root is None or not sha:
            return None
        middle = "/-/commit/" if self.forge == "gitlab" else "/commit/"
        return f"{root}{middle}{urllib.parse.quote(sha, safe='')}"


# -- admin authentication -----------------------------------------------------------------


@dataclass(frozen=True)
class AdminSession:
    """Who is asking: a browser session (cookie, needs a CSRF token to POST) or a script
    (`Authorization: Bearer`, which a cross-site form cannot send). `who` is "token" for
    the admin token, "github:LOGIN" for a GitHub sign-in."""

    via: str  # "cookie" | "bearer"
    nonce: str = ""
    who: str = "token"

    @property
    def github_login(self) -> str | None:
        return self.who.removeprefix("github:") if self.who.startswith("github:") else None


class AdminAuth:
    """The admin token, a signed session cookie, CSRF tokens and sign-in states.

    The signing key is derived from the admin token, or from the GitHub App's client
    secret when only GitHub sign-in is on: changing either signs everyone out. The cookie
    is `issued.nonce.who.signature` (HMAC-SHA256), HttpOnly, SameSite=Strict, scoped to
    /admin, valid for `SESSION_SECONDS`."""

    def __init__(
        self,
        token: str | None,
        *,
        sign_in_secret: str | None = None,
        max_age: int = SESSION_SECONDS,
    ) -> None:
        self.token = token
        self.max_age = max_age
        seed = token or sign_in_secret
        self._key = (
            hmac.new(seed.encode(), b"changegate admin session v2", hashlib.sha256).digest()
            if seed
            else b""
        )

    @property
    def enabled(self) -> bool:
        return bool(self._key)

    def _sign(self, message: str) -> str:
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def token_matches(self, given: str) -> bool:
        if not self.token:
            return False
        return hmac.compare_digest(
            hashlib.sha256(given.encode("utf-8", "replace")).digest(),
            hashlib.sha256(self.token.encode()).digest(),
        )

    def new_cookie(self, who: str = "token", now: float | None = None) -> str:
        issued = str(int(now if now is not None else time.time()))
        nonce = secrets.token_urlsafe(16)
        return f"{issued}.{nonce}.{who}.{self._sign(f'{issued}.{nonce}.{who}')}"

    def read_cookie(self, value: str, now: float | None = None) -> AdminSession | None:
        if not self.enabled:
            return None
        parts = value.split(".")
        if len(parts) != 4 or not parts[0].isdigit():
            return None
        issued, nonce, who, signature = parts
        expected = self._sign(f"{issued}.{nonce}.{who}")
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return None
        if who == "token" and not self.token:  # the token was switched off since
            return None
        age = (now if now is not None else time.time()) - int(issued)
        if age < 0 or age > self.max_age:
            return None
        return AdminSession("cookie", nonce, who)

    def csrf_token(self, session: AdminSession) -> str:
        return self._sign(f"csrf.{session.nonce}") if session.via == "cookie" else ""

    def csrf_ok(self, session: AdminSession, given: str) -> bool:
        if session.via == "bearer":
            return True
        return hmac.compare_digest(
            given.encode("utf-8", "replace"), self.csrf_token(session).encode()
        )

    def session_of(self, request: Request) -> AdminSession | None:
        if not self.enabled:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            return AdminSession("bearer") if self.token_matches(credentials.strip()) else None
        cookie = request.cookies.get(SESSION_COOKIE)
        return self.read_cookie(cookie) if cookie else None

    # -- the state of a GitHub sign-in: where to go after, bound to this browser -----------
    def new_state(self, next_path: str, now: float | None = None) -> tuple[str, str]:
        """(state for GitHub, nonce for the browser's sign-in cookie)."""
        issued = str(int(now if now is not None else time.time()))
        nonce = secrets.token_urlsafe(16)
        target = base64.urlsafe_b64encode(next_path.encode()).decode().rstrip("=")
        body = f"{issued}.{nonce}.{target}"
        return f"{body}.{self._sign('state.' + body)}", nonce

    def read_state(self, state: str, nonce: str, now: float | None = None) -> str | None:
        """The page to land on, if `state` is ours, fresh, and began in this browser."""
        parts = state.split(".")
        if len(parts) != 4 or not parts[0].isdigit() or not self.enabled:
            return None
        issued, state_nonce, target, signature = parts
        body = f"{issued}.{state_nonce}.{target}"
        if not hmac.compare_digest(signature.encode(), self._sign("state." + body).encode()):
            return None
        if not nonce or not hmac.compare_digest(state_nonce.encode(), nonce.encode()):
            return None
        age = (now if now is not None else time.time()) - int(issued)
        if age < 0 or age > SIGN_IN_SECONDS:
            return None
        try:
            return _safe_next(base64.urlsafe_b64decode(target + "=" * (-len(target) % 4)).decode())
        except (ValueError, UnicodeDecodeError):
            return None


@dataclass(frozen=True)
class GitHubAdmins:
    """Who may sign in with GitHub: the logins and `@org/team` slugs of `admin_github`.
    Teams are read through the GitHub App (`members: read`), cached by the forge, and
    checked again on every admin request: leaving the team ends the session within the
    cache's lifetime."""

    sign_in: GitHubSignIn
    entries: tuple[str, ...]
    directory: Callable[[list[str]], Directory] | None = None

    def includes(self, login: str) -> bool:
        login = login.lower()
        if login in {e.lower() for e in self.entries if not e.startswith("@")}:
            return True
        teams = [e for e in self.entries if e.startswith("@") and "/" in e]
        if not teams or self.directory is None:
            return False
        try:
            found = self.directory(teams)
        except Exception as exc:  # noqa: BLE001 - GitHub unreachable: nobody gets in by team
            log.warning("admin sign-in: could not read the teams %s: %s", teams, exc)
            return False
        return any(login in found.expand(team) for team in teams)


# -- content negotiation and responses -------------------------------------------------------


def wants_json(request: Request) -> bool:
    """`?format=json`, or an Accept header that asks for JSON and not HTML."""
    fmt = request.query_params.get("format", "").lower()
    if fmt in ("json", "html"):
        return fmt == "json"
    accept = request.headers.get("accept", "").lower()
    return "application/json" in accept and "text/html" not in accept


SECURITY_HEADERS = {
    # The verdict URL is a capability: never leak it to the forge through Referer.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
}


def _form(body: bytes) -> dict[str, str]:
    """An urlencoded form (python-multipart is not a dependency; forms here are tiny)."""
    try:
        parsed = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return {}
    return {k: v[0] for k, v in parsed.items() if v}


def _safe_next(target: str | None) -> str:
    """Only admin paths on this server: never an open redirect."""
    if target and target.startswith("/admin") and "//" not in target and "\\" not in target:
        return target
    return "/admin"


# -- the pages ----------------------------------------------------------------------------


class Pages:
    """The pages of one app: its engine, settings, policy and admin credentials."""

    def __init__(
        self,
        engine: Engine,
        settings: Any,
        policy: PolicySource,
        *,
        admin_token: str | None = None,
        github_admins: GitHubAdmins | None = None,
        requeue: Callable[[Engine, str], int] = inbox.requeue_dead,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.policy_source = policy
        token = admin_token or _secret_value(getattr(settings, "admin_token", None))
        self.github_admins = github_admins
        self.auth = AdminAuth(
            token,
            sign_in_secret=_secret_value(getattr(settings, "github_client_secret", None))
            if github_admins
            else None,
        )
        self.requeue = requeue
        self.env = Environment(
            loader=FileSystemLoader(str(TEMPLATES)),
            autoescape=select_autoescape(("html",)),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["when"] = _when
        self.env.filters["short"] = _short

    # -- plumbing ------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v/{token}", self.verdict, methods=["GET"], name="verdict"),
            Route("/static/changegate.css", self.stylesheet, methods=["GET"]),
            Route("/admin", self.admin_home, methods=["GET"], name="admin"),
            Route("/admin/login", self.login, methods=["GET", "POST"], name="admin-login"),
            Route("/admin/login/github", self.login_github, methods=["GET"]),
            Route("/admin/login/github/callback", self.login_github_callback, methods=["GET"]),
            Route("/admin/logout", self.logout, methods=["POST"], name="admin-logout"),
            Route("/admin/requests", self.admin_requests, methods=["GET"]),
            Route("/admin/verdicts", self.admin_verdicts, methods=["GET"]),
            Route("/admin/dead", self.admin_dead, methods=["GET"]),
            Route("/admin/dead/requeue", self.admin_requeue, methods=["POST"]),
            Route("/admin/audit", self.admin_audit, methods=["GET"]),
            Route("/admin/policy", self.admin_policy, methods=["GET"]),
        ]

    def render(
        self,
        request: Request,
        template: str,
        view: Mapping[str, Any],
        *,
        status: int = 200,
        session: AdminSession | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """The JSON twin or the HTML page of one view."""
        all_headers = {**SECURITY_HEADERS, **(headers or {})}
        if wants_json(request):
            return JSONResponse(dict(view), status_code=status, headers=all_headers)
        html = self.env.get_template(template).render(
            view=view,
            admin=session is not None,
            csrf=self.auth.csrf_token(session) if session else "",
            path=request.url.path,
        )
        return HTMLResponse(html, status_code=status, headers=all_headers)

    def error(self, request: Request, status: int, message: str) -> Response:
        view = {"error": message, "status": status}
        return self.render(request, "error.html", view, status=status)

    async def _guard(self, request: Request) -> AdminSession | Response:
        """The admin session, or the refusal: 404 when admin pages are off, else a login
        redirect (pages) or 401 (JSON twins)."""
        if not self.auth.enabled:
            return self.error(request, 404, "Not found")
        session = self.auth.session_of(request)
        if session is not None and await self._still_admin(session):
            return session
        if wants_json(request) or request.headers.get("authorization"):
            return JSONResponse(
                {"error": "admin token required", "status": 401},
                status_code=401,
                headers={**SECURITY_HEADERS, "WWW-Authenticate": 'Bearer realm="changegate"'},
            )
        if request.method == "GET":
            back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        else:  # after signing in, land on the page that held the form, not on its action
            back = request.url.path.rsplit("/", 1)[0] or "/admin"
        target = urllib.parse.quote(_safe_next(back))
        return RedirectResponse(f"/admin/login?next={target}", status_code=303)

    async def _still_admin(self, session: AdminSession) -> bool:
        login = session.github_login
        if login is None:
            return True
        if self.github_admins is None:  # GitHub sign-in was switched off since
            return False
        return await run_in_threadpool(self.github_admins.includes, login)

    async def _page(
        self,
        request: Request,
        template: str,
        build: Callable[[], Mapping[str, Any]],
    ) -> Response:
        guard = await self._guard(request)
        if isinstance(guard, Response):
            return guard
        try:
            view = await run_in_threadpool(build)
        except SQLAlchemyError as exc:
            log.warning("admin page %s: database unavailable: %s", request.url.path, exc)
            return self.error(request, 503, "The database is unavailable; try again shortly.")
        return self.render(request, template, view, session=guard)

    # -- endpoints -----------------------------------------------------------------------
    async def stylesheet(self, _request: Request) -> Response:
        return Response(
            STYLESHEET.read_bytes(),
            media_type="text/css",
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    async def verdict(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            view = await run_in_threadpool(self.verdict_view, token)
        except SQLAlchemyError as exc:
            log.warning("verdict page: database unavailable: %s", exc)
            return self.error(request, 503, "The database is unavailable; try again shortly.")
        if view is None:
            return self.error(request, 404, "No such verdict. The link may be mistyped.")
        session = self.auth.session_of(request) if self.auth.enabled else None
        return self.render(request, "verdict.html", view, session=session)

    async def login(self, request: Request) -> Response:
        if not self.auth.enabled:
            return self.error(request, 404, "Not found")
        next_path = _safe_next(request.query_params.get("next"))
        if request.method == "GET":
            return self.render(request, "login.html", self._login_view(next_path), session=None)
        form = _form((await request.body())[:MAX_FORM_BYTES])
        next_path = _safe_next(form.get("next") or next_path)
        if not self.auth.token_matches(form.get("token", "")):
            log.warning("admin sign-in refused: wrong token")
            view = self._login_view(next_path, "That token is not right.")
            return self.render(request, "login.html", view, status=401)
        response = RedirectResponse(next_path, status_code=303)
        self._start_session(request, response, "token")
        return response

    def _login_view(self, next_path: str, error: str | None = None) -> dict[str, Any]:
        return {
            "next": next_path,
            "error": error,
            "token_sign_in": bool(self.auth.token),
            "github_sign_in": self.github_admins is not None,
        }

    def _start_session(self, request: Request, response: Response, who: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            self.auth.new_cookie(who),
            max_age=self.auth.max_age,
            path="/admin",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    async def login_github(self, request: Request) -> Response:
        """Off to GitHub, with a state that says where to land and a cookie that binds
        the state to this browser (a sign-in started elsewhere cannot be finished here)."""
        if self.github_admins is None:
            return self.error(request, 404, "Not found")
        state, nonce = self.auth.new_state(_safe_next(request.query_params.get("next")))
        callback = f"{str(self.settings.public_url).rstrip('/')}/admin/login/github/callback"
        response = RedirectResponse(
            self.github_admins.sign_in.authorize_url(callback, state), status_code=303
        )
        response.set_cookie(
            SIGN_IN_COOKIE,
            nonce,
            max_age=SIGN_IN_SECONDS,
            path="/admin/login/github",
            httponly=True,
            samesite="lax",  # sent on GitHub's redirect back (a top-level GET)
            secure=request.url.scheme == "https",
        )
        return response

    async def login_github_callback(self, request: Request) -> Response:
        admins = self.github_admins
        if admins is None:
            return self.error(request, 404, "Not found")
        q = request.query_params
        next_path = self.auth.read_state(
            q.get("state", ""), request.cookies.get(SIGN_IN_COOKIE, "")
        )
        if next_path is None:
            log.warning("GitHub sign-in refused: state missing, forged, stale or from elsewhere")
            view = self._login_view(
                "/admin", "That sign-in expired or did not start here. Try again."
            )
            return self.render(request, "login.html", view, status=400)
        if q.get("error") or not q.get("code"):  # the user said no on GitHub
            view = self._login_view(next_path, "GitHub sign-in was cancelled.")
            return self.render(request, "login.html", view, status=401)
        try:
            login = await run_in_threadpool(admins.sign_in.login_of, q["code"])
        except Exception as exc:  # noqa: BLE001 - GitHub down: say so, sign nobody in
            log.warning("GitHub sign-in failed: %s", exc)
            view = self._login_view(next_path, "GitHub could not be reached. Try again shortly.")
            return self.render(request, "login.html", view, status=502)
        if login is None:
            view = self._login_view(next_path, "GitHub did not accept that sign-in. Try again.")
            return self.render(request, "login.html", view, status=401)
        if not await run_in_threadpool(admins.includes, login):
            log.warning("GitHub sign-in refused: %s is not an admin", login)
            view = self._login_view(
                next_path, f"{login} is not a changegate admin (see CHANGEGATE_ADMIN_GITHUB)."
            )
            return self.render(request, "login.html", view, status=403)
        log.info("admin signed in with GitHub", extra={"who": f"github:{login}"})
        # a page, not a redirect: browsers that count a whole redirect chain begun on
        # github.com as cross-site would not send the SameSite=Strict cookie on its next hop
        view = {"next": next_path, "login": login}
        response = self.render(request, "signed_in.html", view)
        self._start_session(request, response, f"github:{login}")
        response.delete_cookie(SIGN_IN_COOKIE, path="/admin/login/github")
        return response

    async def logout(self, request: Request) -> Response:
        guard = await self._guard(request)
        if isinstance(guard, Response):
            return guard
        form = _form((await request.body())[:MAX_FORM_BYTES])
        if not self.auth.csrf_ok(guard, form.get("csrf", "")):
            return self.error(request, 403, "The form has expired; reload the page and retry.")
        response = RedirectResponse("/admin/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/admin")
        return response

    async def admin_home(self, request: Request) -> Response:
        return await self._page(request, "admin_home.html", self.home_view)

    async def admin_requests(self, request: Request) -> Response:
        return await self._page(request, "admin_requests.html", self.requests_view)

    async def admin_verdicts(self, request: Request) -> Response:
        q = request.query_params
        return await self._page(
            request,
            "admin_verdicts.html",
            lambda: self.verdicts_view(
                repo=q.get("repo", ""),
                rule=q.get("rule", ""),
                decision=q.get("decision", ""),
                limit=_limit(q.get("limit")),
            ),
        )

    async def admin_dead(self, request: Request) -> Response:
        requeued = request.query_params.get("requeued")
        return await self._page(
            request, "admin_dead.html", lambda: self.dead_view(requeued=requeued)
        )

    async def admin_requeue(self, request: Request) -> Response:
        guard = await self._guard(request)
        if isinstance(guard, Response):
            return guard
        body = (await request.body())[:MAX_FORM_BYTES]
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                raw = json.loads(body or b"{}")
            except ValueError:
                raw = None
            if not isinstance(raw, dict):
                return self.error(request, 400, "Send a JSON object with `delivery`.")
            form = {k: str(v) for k, v in raw.items()}
        else:
            form = _form(body)
        if not self.auth.csrf_ok(guard, form.get("csrf", "")):
            return self.error(request, 403, "The form has expired; reload the page and retry.")
        key = form.get("delivery", "").strip()
        if not key:
            return self.error(request, 400, "Name the delivery to re-queue.")
        try:
            count = await run_in_threadpool(self.requeue, self.engine, key)
        except SQLAlchemyError as exc:
            log.warning("re-queue failed: %s", exc)
            return self.error(request, 503, "The database is unavailable; try again shortly.")
        log.info(
            "admin re-queued dead delivery %s (%d)",
            key,
            count,
            extra={"via": guard.via, "who": guard.who},
        )
        if wants_json(request) or guard.via == "bearer":
            status = 200 if count else 404
            return JSONResponse(
                {"delivery": key, "requeued": count}, status_code=status, headers=SECURITY_HEADERS
            )
        if not count:
            return self.error(request, 404, f"No dead delivery {key!r} (re-queued already?).")
        return RedirectResponse(f"/admin/dead?requeued={urllib.parse.quote(key)}", status_code=303)

    async def admin_audit(self, request: Request) -> Response:
        q = request.query_params
        return await self._page(
            request,
            "admin_audit.html",
            lambda: self.audit_view(subject=q.get("subject", ""), limit=_limit(q.get("limit"))),
        )

    async def admin_policy(self, request: Request) -> Response:
        return await self._page(request, "admin_policy.html", self.policy_view)

    # -- views: plain data, shared by HTML and JSON -----------------------------------------
    def links(self, forge: str) -> ForgeLinks:
        return ForgeLinks(forge, forge_web_base(self.settings, forge))

    def _policy(self) -> Policy | None:
        try:
            return self.policy_source.policy
        except Exception:  # noqa: BLE001 - a page still shows the verdict without it
            log.exception("policy unavailable to the pages")
            return None

    def verdict_view(self, token: str) -> dict[str, Any] | None:
        if not token or len(token) > 64:
            return None
        row = store.evaluation_by_token(self.engine, token)
        if row is None:
            return None
        links = self.links(row["forge"])
        stored = row["verdict"] if isinstance(row["verdict"], dict) else {}
        repo, head = row["repo"], row["head_sha"]
        with _reading(self.engine) as conn:
            timeline = self._timeline(conn, row)
            requests = conn.execute(
                sa.select(approval_requests.c.title, approval_requests.c.url)
                .where(approval_requests.c.subject == row["subject"])
                .order_by(approval_requests.c.created_at.desc())
            ).all()
        raw_change = stored.get("change")
        change: dict[str, Any] = raw_change if isinstance(raw_change, dict) else {}
        title = str(change.get("title") or next((r.title for r in requests if r.title), ""))
        findings = [self._finding(f, links, repo, head) for f in stored.get("findings", [])]
        policy = self._policy()
        approvals = [self._approval(a, policy) for a in stored.get("approvals", [])]
        newest = next((e for e in reversed(timeline) if e["kind"] == "evaluation"), None)
        return {
            "repo": repo,
            "forge": row["forge"],
            "subject": row["subject"],
            "number": row["number"],
            "title": title,
            "author": change.get("author"),
            "change_url": change.get("url") or links.change(repo, row["number"]),
            "head": head,
            "head_url": links.commit(repo, head),
            "base": row["base_sha"],
            "decision": row["decision"],
            "decision_label": DECISION_LABELS.get(row["decision"], row["decision"]),
            "created_at": iso(row["created_at"]),
            "findings": findings,
            "new_findings": [f for f in findings if not f["preexisting"]],
            "preexisting": [f for f in findings if f["preexisting"]],
            "approvals": approvals,
            "missing_approvals": [a for a in approvals if not a["satisfied"]],
            "summary": summary(findings, approvals),
            "timeline": timeline,
            "conditions": _conditions(stored.get("conditions")),
            "newer": newest["url"] if newest and newest.get("token") != token else None,
            # what scripts read from the first, minimal version of this endpoint
            "verdict": stored,
        }

    @staticmethod
    def _finding(raw: Mapping[str, Any], links: ForgeLinks, repo: str, head: str) -> dict[str, Any]:
        action = str(raw.get("action", ""))
        line = raw.get("line") if isinstance(raw.get("line"), int) else None
        path = str(raw.get("path", ""))
        return {
            "rule": raw.get("rule"),
            "kind": raw.get("kind"),
            "action": action,
            "path": path,
            "line": line,
            "subject": raw.get("subject"),
            "message": raw.get("message"),
            "url": links.blob(repo, head, path, line),
            "fix": FIXES.get(str(raw.get("kind")), ""),
            "effect": ACTION_NOTES.get(action, ""),
            "preexisting": bool(raw.get("preexisting")),
        }

    @staticmethod
    def _approval(raw: Mapping[str, Any], policy: Policy | None) -> dict[str, Any]:
        group_name = str(raw.get("group", ""))
        group = policy.groups.get(group_name) if policy is not None else None
        members = (
            {system: group.members(system) for system in SYSTEMS if group.members(system)}
            if group is not None
            else {}
        )
        required = int(raw.get("required") or 0)
        granted = int(raw.get("granted") or 0)
        approvers = raw.get("approvers")
        ignored = raw.get("ignored")
        return {
            "rule": raw.get("rule"),
            "group": group_name,
            "required": required,
            "granted": granted,
            "still_needed": max(0, required - granted),
            "satisfied": granted >= required,
            "members": members,
            "group_known": group is not None,
            # None: this verdict was stored without the names (an older server)
            "approvers": list(approvers) if isinstance(approvers, list) else None,
            "ignored": [_ignored(i) for i in ignored] if isinstance(ignored, list) else None,
        }

    def _timeline(self, conn: Connection, row: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Evaluations of the subject, and its approval requests and decisions as the audit
        log recorded them (with the refusals, which only the audit log keeps)."""
        subject = row["subject"]
        events: list[dict[str, Any]] = []
        ev = store.evaluations
        for e in conn.execute(
            sa.select(ev.c.token, ev.c.head_sha, ev.c.decision, ev.c.created_at, ev.c.id)
            .where(ev.c.subject == subject)
            .order_by(ev.c.created_at, ev.c.id)
        ):
            events.append(
                {
                    "at": iso(e.created_at),
                    "kind": "evaluation",
                    "sha": e.head_sha,
                    "text": f"Evaluated {_short(e.head_sha)}: "
                    f"{DECISION_LABELS.get(e.decision, e.decision).lower()}",
                    "decision": e.decision,
                    "url": f"/v/{e.token}",
                    "token": e.token,
                    "current": e.token == row["token"],
                }
            )
        audited_requests: set[str] = set()
        audited_decisions: set[tuple[str, str, str]] = set()
        for a in conn.execute(
            sa.select(audit_log).where(audit_log.c.subject == subject).order_by(audit_log.c.seq)
        ):
            detail = a.detail if isinstance(a.detail, dict) else {}
            request_id = str(detail.get("request", ""))
            if a.action == "approval.requested":
                audited_requests.add(request_id)
            if a.action in ("approval.approve", "approval.reject"):
                audited_decisions.add((request_id, a.actor_system, a.actor))
            events.append(
                {
                    "at": iso(a.at),
                    "kind": "audit",
                    "action": a.action,
                    "sha": a.sha,
                    "text": audit_sentence(a.action, a.actor_system, a.actor, a.sha, detail),
                    "seq": a.seq,
                }
            )
        requests = conn.execute(
            sa.select(approval_requests).where(approval_requests.c.subject == subject)
        ).all()
        for r in requests:
            if r.id not in audited_requests:
                events.append(
                    {
                        "at": iso(r.created_at),
                        "kind": "request",
                        "sha": r.sha,
                        "text": f"Approval requested from {r.group_name} for {_short(r.sha)}"
                        f" (now {r.state})",
                    }
                )
        if requests:
            for d in conn.execute(
                sa.select(approval_decisions).where(
                    approval_decisions.c.request_id.in_([r.id for r in requests])
                )
            ):
                if (d.request_id, d.actor_system, d.actor) in audited_decisions:
                    continue
                verb = "approved" if d.decision == "approve" else "rejected"
                reason = f": {d.reason}" if d.reason else ""
                events.append(
                    {
                        "at": iso(d.created_at),
                        "kind": "decision",
                        "sha": d.sha,
                        "text": f"{d.actor} ({d.actor_system}) {verb} {_short(d.sha)}{reason}",
                    }
                )
        events.sort(key=lambda e: e["at"] or "")
        return events

    def home_view(self) -> dict[str, Any]:
        stats = inbox.stats(self.engine)
        with _reading(self.engine) as conn:
            open_count = conn.execute(
                sa.select(sa.func.count()).where(approval_requests.c.state == "pending")
            ).scalar_one()
            evaluated = conn.execute(
                sa.select(sa.func.count()).select_from(store.evaluations)
            ).scalar_one()
            with Session(bind=conn) as session:
                problems = audit.verify(session)
                seq, _ = audit.head(session)
        return {
            "queue": stats.by_state,
            "oldest_waiting_seconds": round(stats.oldest_queued_age, 1),
            "open_requests": int(open_count),
            "evaluations": int(evaluated),
            "audit": {"rows": seq, "intact": not problems, "problems": problems},
            "policy": self._policy_source_info(),
        }

    def requests_view(self) -> dict[str, Any]:
        r, d, ev = approval_requests, approval_decisions, store.evaluations
        approvals = (
            sa.select(sa.func.count())
            .where(d.c.request_id == r.c.id, d.c.decision == "approve")
            .scalar_subquery()
        )
        newest = (
            sa.select(ev.c.token)
            .where(ev.c.subject == r.c.subject)
            .order_by(ev.c.created_at.desc(), ev.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        with _reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(r, approvals.label("approved"), newest.label("token"))
                .where(r.c.state == "pending")
                .order_by(r.c.created_at.desc())
                .limit(500)
            ).all()
        return {
            "requests": [
                {
                    "id": x.id,
                    "kind": x.kind,
                    "subject": x.subject,
                    "repo": x.repo,
                    "number": x.number,
                    "title": x.title,
                    "environment": x.environment,
                    "sha": x.sha,
                    "group": x.group_name,
                    "rules": list(x.rules or []),
                    "required": x.min_approvals,
                    "approved": int(x.approved or 0),
                    "author": f"{x.author} ({x.author_system})" if x.author else None,
                    "created_at": iso(x.created_at),
                    "expires_at": iso(x.expires_at),
                    "verdict_url": f"/v/{x.token}" if x.token else None,
                }
                for x in rows
            ]
        }

    def verdicts_view(
        self, *, repo: str = "", rule: str = "", decision: str = "", limit: int = PAGE_LIMIT
    ) -> dict[str, Any]:
        ev = store.evaluations
        query = sa.select(ev).order_by(ev.c.created_at.desc(), ev.c.id.desc())
        if repo:
            query = query.where(sa.func.lower(ev.c.repo).contains(repo.lower(), autoescape=True))
        if decision:
            query = query.where(ev.c.decision == decision)
        # the rule lives inside the verdict JSON: filter in Python over a bounded window
        window = limit if not rule else max(limit * 20, 2000)
        with _reading(self.engine) as conn:
            rows = conn.execute(query.limit(window)).all()
            repos = [
                x
                for (x,) in conn.execute(
                    sa.select(ev.c.repo).distinct().order_by(ev.c.repo).limit(200)
                )
            ]
        out: list[dict[str, Any]] = []
        for x in rows:
            stored = x.verdict if isinstance(x.verdict, dict) else {}
            rules = sorted(
                {str(f.get("rule")) for f in stored.get("findings", []) if isinstance(f, dict)}
                | {str(a.get("rule")) for a in stored.get("approvals", []) if isinstance(a, dict)}
            )
            if rule and rule not in rules:
                continue
            out.append(
                {
                    "repo": x.repo,
                    "forge": x.forge,
                    "number": x.number,
                    "head": x.head_sha,
                    "decision": x.decision,
                    "findings": len(stored.get("findings", [])),
                    "rules": rules,
                    "created_at": iso(x.created_at),
                    "url": f"/v/{x.token}",
                }
            )
            if len(out) >= limit:
                break
        policy = self._policy()
        return {
            "filters": {"repo": repo, "rule": rule, "decision": decision, "limit": limit},
            "choices": {
                "decisions": list(DECISIONS),
                "rules": [r.id for r in policy.rules] if policy else [],
                "repos": repos,
            },
            "verdicts": out,
        }

    def dead_view(self, *, requeued: str | None = None) -> dict[str, Any]:
        t = store.deliveries
        with _reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(
                    t.c.id,
                    t.c.forge,
                    t.c.delivery_id,
                    t.c.event,
                    t.c.subject,
                    t.c.attempts,
                    t.c.last_error,
                    t.c.received_at,
                    t.c.processed_at,
                )
                .where(t.c.state == inbox.DEAD)
                .order_by(t.c.processed_at.desc(), t.c.received_at.desc())
                .limit(500)
            ).all()
        return {
            "requeued": requeued,
            "dead": [
                {
                    "key": x.id,
                    "forge": x.forge,
                    "delivery_id": x.delivery_id,
                    "event": x.event,
                    "subject": x.subject,
                    "attempts": x.attempts,
                    "error": (x.last_error or "").strip().splitlines()[0][:300]
                    if x.last_error
                    else "",
                    "error_detail": x.last_error or "",
                    "received_at": iso(x.received_at),
                    "died_at": iso(x.processed_at),
                }
                for x in rows
            ],
        }

    def audit_view(self, *, subject: str = "", limit: int = PAGE_LIMIT) -> dict[str, Any]:
        with _reading(self.engine) as conn:
            with Session(bind=conn) as session:
                problems = audit.verify(session)
                seq, head_hash = audit.head(session)
            query = sa.select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
            if subject:
                query = query.where(audit_log.c.subject == subject)
            rows = conn.execute(query).all()
        return {
            "chain": {
                "intact": not problems,
                "problems": problems,
                "rows": seq,
                "head": {"seq": seq, "hash": head_hash},
            },
            "filters": {"subject": subject, "limit": limit},
            "entries": [
                {
                    "seq": a.seq,
                    "at": iso(a.at),
                    "action": a.action,
                    "actor": f"{a.actor} ({a.actor_system})" if a.actor else "",
                    "subject": a.subject,
                    "sha": a.sha,
                    "rules": list(a.rules or []),
                    "channel": a.channel,
                    "decision": a.decision,
                    "text": audit_sentence(
                        a.action,
                        a.actor_system,
                        a.actor,
                        a.sha,
                        a.detail if isinstance(a.detail, dict) else {},
                    ),
                    "hash": a.hash,
                }
                for a in rows
            ],
        }

    def _policy_source_info(self) -> dict[str, Any]:
        source = self.policy_source
        loaded_at = getattr(source, "loaded_at", None)
        modified: str | None = None
        with contextlib.suppress(OSError, TypeError):
            stamp = Path(source.path).stat().st_mtime
            modified = iso(dt.datetime.fromtimestamp(stamp, dt.UTC))
        return {
            "source": str(source.path),
            "loaded_at": iso(loaded_at) if isinstance(loaded_at, dt.datetime) else None,
            "file_modified_at": modified,
            "reload_error": source.error,
        }

    def policy_view(self) -> dict[str, Any]:
        policy = self._policy()
        info = self._policy_source_info()
        if policy is None:
            return {**info, "loaded": False}
        dumped = policy.model_dump(mode="json")
        rules = []
        for rule in dumped.get("rules", []):
            rule = dict(rule)
            rules.append(
                {
                    "id": rule.pop("id"),
                    "kind": rule.pop("kind"),
                    "action": rule.pop("action"),
                    "paths": rule.pop("paths", []),
                    "approvers": rule.pop("approvers", None),
                    "min_approvals": rule.pop("min_approvals", 1),
                    "slack_channel": rule.pop("slack_channel", None),
                    "options": {k: v for k, v in rule.pop("options", {}).items()},
                    "other": rule,
                }
            )
        return {
            **info,
            "loaded": True,
            "environments": [
                {"name": name, "paths": env["paths"]}
                for name, env in dumped.get("environments", {}).items()
            ],
            "groups": [
                {
                    "name": name,
                    "members": {s: group.get(s, []) for s in SYSTEMS if group.get(s)},
                    "slack_channel": group.get("slack_channel"),
                }
                for name, group in dumped.get("groups", {}).items()
            ],
            "people": dumped.get("people", []),
            "rules": rules,
            "deploys": [
                {"environment": name, **gate}
                for name, gate in dumped.get("deploys", {}).items()
                if isinstance(gate, dict)  # `default` is a setting, not an environment
            ],
            "break_glass": dumped.get("break_glass", {}),
        }


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def summary(findings: list[dict[str, Any]], approvals: list[dict[str, Any]]) -> str:
    """The verdict in one sentence: what blocks, what is missing, what is only a warning."""
    blocking = sum(1 for f in findings if f["action"] == "block")
    missing = sum(a["still_needed"] for a in approvals if not a["satisfied"])
    warnings = sum(1 for f in findings if f["action"] == "warn" and not f.get("preexisting"))
    before = sum(1 for f in findings if f.get("preexisting"))
    parts = []
    if blocking:
        parts.append(_plural(blocking, "finding blocks merging", "findings block merging"))
    if missing:
        parts.append(_plural(missing, "approval is missing", "approvals are missing"))
    if not parts:
        parts.append("nothing blocks this change")
    if warnings:
        parts.append(_plural(warnings, "warning", "warnings"))
    if before:
        parts.append(f"{before} already present before this change")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _ignored(item: Any) -> dict[str, str]:
    """An approval that did not count: stored as {"who", "why"} or as a [who, why] pair."""
    if isinstance(item, dict):
        return {"who": str(item.get("who", "")), "why": str(item.get("why", ""))}
    if isinstance(item, list | tuple) and len(item) == 2:
        return {"who": str(item[0]), "why": str(item[1])}
    return {"who": str(item), "why": ""}


def _limit(raw: str | None) -> int:
    try:
        value = int(raw) if raw else PAGE_LIMIT
    except ValueError:
        return PAGE_LIMIT
    return min(max(value, 1), 500)


def audit_sentence(
    action: str, system: str, actor: str, sha: str, detail: Mapping[str, Any]
) -> str:
    """One audit row as a sentence a person reads in a timeline."""
    who = f"{actor} ({system})" if actor else "changegate"
    group = detail.get("group", "")
    reason = detail.get("reason") or ""
    at = _short(sha)
    if action == "approval.requested":
        return f"Approval requested from {group} for {at}"
    if action == "approval.approve":
        return f"{who} approved {at}" + (f": {reason}" if reason else "")
    if action == "approval.reject":
        return f"{who} rejected {at}" + (f": {reason}" if reason else "")
    if action == "approval.refused":
        clicked = detail.get("clicked", "decision")
        return f"{who} tried to {clicked} {at}; it did not count: {detail.get('why', '')}"
    if action == "approval.reopened":
        return f"Request for {group} at {at} reopened (the head is {at} again)"
    if action.startswith("approval."):
        state = action.split(".", 1)[1]
        return f"Request for {group} at {at} {state}" + (f": {reason}" if reason else "")
    if action == "break_glass":
        return f"{who} broke glass on {at}: {reason}"
    if action == "break_glass.refused":
        return f"{who} tried to break glass on {at}: {detail.get('why', '')}"
    if action == "deploy.gate":
        return f"Deploy gate for {at}: {detail.get('comment', '')}".rstrip(": ")
    return f"{action} by {who} on {at}".rstrip()


def routes(
    engine: Engine,
    settings: Any,
    policy: PolicySource,
    *,
    admin_token: str | None = None,
    forges: Mapping[str, Any] | None = None,
) -> list[BaseRoute]:
    """The verdict page and the admin pages, to mount in `create_app`:
    `*pages.routes(engine, settings, holder, forges=forges)`. The admin token comes from
    `settings.admin_token` unless given here; GitHub sign-in is on with the App's client
    id and secret and `admin_github`; with neither the admin pages answer 404. The GitHub
    forge, when there is one, reads the `@org/team` entries of `admin_github`."""
    return Pages(
        engine,
        settings,
        policy,
        admin_token=admin_token,
        github_admins=github_admins(settings, (forges or {}).get("github")),
    ).routes()


def github_admins(settings: Any, forge: Any = None) -> GitHubAdmins | None:
    """GitHub sign-in when `settings` (a `Settings`, or anything shaped like the parts the
    pages read) enables it."""
    enabled = getattr(settings, "github_sign_in_enabled", False)
    sign_in = GitHubSignIn.from_settings(settings) if enabled else None
    if sign_in is None:
        return None
    directory = getattr(forge, "directory", None)
    return GitHubAdmins(sign_in, settings.admin_github_entries, directory)


__all__ = [
    "AdminAuth",
    "ForgeLinks",
    "GitHubAdmins",
    "Pages",
    "PolicySource",
    "audit_sentence",
    "forge_web_base",
    "github_admins",
    "routes",
    "wants_json",
]


def _conditions(raw: Any) -> list[dict[str, Any]]:
    """Rules with `if:` / `unless:`: whether each ran, and what each predicate saw."""
    out = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict):
            checks = item.get("checks")
            out.append(
                {
                    "rule": str(item.get("rule", "")),
                    "applies": bool(item.get("applies")),
                    "checks": [str(c) for c in checks] if isinstance(checks, list) else [],
                }
            )
    return out
