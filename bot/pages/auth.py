"""Who may see the admin pages, and signing in: the admin token, GitHub sign-in (OAuth),
the signed session cookie, CSRF tokens for the forms.

Without an admin token and without GitHub sign-in the admin pages do not exist (404);
they are never open. A browser holds a signed cookie (and needs a CSRF token to POST); a
script sends `Authorization: Bearer <admin token>`, which a cross-site form cannot.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.pages.templates import SECURITY_HEADERS, Renderer, wants_json
from bot.policy.approvers import Directory
from bot.settings import Settings

log = logging.getLogger(__name__)

SESSION_COOKIE = "changegate_admin"
SESSION_SECONDS = 12 * 3600
SIGN_IN_COOKIE = "changegate_sign_in"
SIGN_IN_SECONDS = 600  # from "Sign in with GitHub" to the callback
MAX_FORM_BYTES = 16 * 1024


class SignIn(Protocol):
    """The OAuth web flow of a forge (bot.forges.github.GitHubSignIn)."""

    def authorize_url(self, redirect_uri: str, state: str) -> str: ...

    def login_of(self, code: str) -> str | None: ...


def secret_value(value: Any) -> str | None:
    """A setting that may be a pydantic SecretStr, as a plain string (None when empty)."""
    if value is None:
        return None
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    return str(value) or None


def safe_next(target: str | None) -> str:
    """Only admin paths on this server: never an open redirect."""
    if target and target.startswith("/admin") and "//" not in target and "\\" not in target:
        return target
    return "/admin"


def read_form(body: bytes) -> dict[str, str]:
    """An urlencoded form (python-multipart is not a dependency; forms here are tiny)."""
    try:
        parsed = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return {}
    return {k: v[0] for k, v in parsed.items() if v}


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

    def page_context(self, session: AdminSession | None) -> dict[str, Any]:
        """What a page shows of the session: the admin menu and the sign-out form's token."""
        return {"admin": session is not None, "csrf": self.csrf_token(session) if session else ""}

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
            return safe_next(base64.urlsafe_b64decode(target + "=" * (-len(target) % 4)).decode())
        except (ValueError, UnicodeDecodeError):
            return None


@dataclass(frozen=True)
class GitHubAdmins:
    """Who may sign in with GitHub: the logins and `@org/team` slugs of `admin_github`.
    Teams are read through the GitHub App (`members: read`), cached by the forge, and
    checked again on every admin request: leaving the team ends the session within the
    cache's lifetime."""

    sign_in: SignIn
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


class AdminGuard:
    """Lets admin requests through: a valid session of someone who is still an admin.
    Everything else gets its refusal: 404 when the admin pages are off, a sign-in
    redirect for a browser, 401 for a script or a JSON twin."""

    def __init__(
        self, auth: AdminAuth, github_admins: GitHubAdmins | None, renderer: Renderer
    ) -> None:
        self.auth = auth
        self.github_admins = github_admins
        self.renderer = renderer

    async def admit(self, request: Request) -> AdminSession | Response:
        """The admin session, or the refusal to answer with."""
        if not self.auth.enabled:
            return self.renderer.error(request, 404, "Not found")
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
        target = urllib.parse.quote(safe_next(back))
        return RedirectResponse(f"/admin/login?next={target}", status_code=303)

    async def _still_admin(self, session: AdminSession) -> bool:
        login = session.github_login
        if login is None:
            return True
        if self.github_admins is None:  # GitHub sign-in was switched off since
            return False
        return await run_in_threadpool(self.github_admins.includes, login)

    def render(
        self,
        request: Request,
        template: str,
        view: dict[str, Any],
        *,
        status: int = 200,
        session: AdminSession | None = None,
    ) -> Response:
        """A page as `session` sees it (None: signed out)."""
        context = self.auth.page_context(session)
        return self.renderer.render(request, template, view, status=status, context=context)

    def error(self, request: Request, status: int, message: str) -> Response:
        return self.renderer.error(request, status, message)


class SignInPages:
    """`/admin/login` (the admin token), `/admin/login/github` and its callback (GitHub
    sign-in), `/admin/logout`."""

    def __init__(self, settings: Settings, guard: AdminGuard) -> None:
        self.settings = settings
        self.guard = guard
        self.auth = guard.auth

    @property
    def github_admins(self) -> GitHubAdmins | None:
        return self.guard.github_admins

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/admin/login", self.login, methods=["GET", "POST"], name="admin-login"),
            Route("/admin/login/github", self.login_github, methods=["GET"]),
            Route("/admin/login/github/callback", self.login_github_callback, methods=["GET"]),
            Route("/admin/logout", self.logout, methods=["POST"], name="admin-logout"),
        ]

    async def login(self, request: Request) -> Response:
        if not self.auth.enabled:
            return self.guard.error(request, 404, "Not found")
        next_path = safe_next(request.query_params.get("next"))
        if request.method == "GET":
            return self.guard.render(request, "login.html", self._login_view(next_path))
        form = read_form((await request.body())[:MAX_FORM_BYTES])
        next_path = safe_next(form.get("next") or next_path)
        if not self.auth.token_matches(form.get("token", "")):
            log.warning("admin sign-in refused: wrong token")
            view = self._login_view(next_path, "That token is not right.")
            return self.guard.render(request, "login.html", view, status=401)
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

    def _refused(self, request: Request, next_path: str, message: str, status: int) -> Response:
        view = self._login_view(next_path, message)
        return self.guard.render(request, "login.html", view, status=status)

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
            return self.guard.error(request, 404, "Not found")
        state, nonce = self.auth.new_state(safe_next(request.query_params.get("next")))
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
            return self.guard.error(request, 404, "Not found")
        q = request.query_params
        next_path = self.auth.read_state(
            q.get("state", ""), request.cookies.get(SIGN_IN_COOKIE, "")
        )
        if next_path is None:
            log.warning("GitHub sign-in refused: state missing, forged, stale or from elsewhere")
            message = "That sign-in expired or did not start here. Try again."
            return self._refused(request, "/admin", message, 400)
        if q.get("error") or not q.get("code"):  # the user said no on GitHub
            return self._refused(request, next_path, "GitHub sign-in was cancelled.", 401)
        try:
            login = await run_in_threadpool(admins.sign_in.login_of, q["code"])
        except Exception as exc:  # noqa: BLE001 - GitHub down: say so, sign nobody in
            log.warning("GitHub sign-in failed: %s", exc)
            message = "GitHub could not be reached. Try again shortly."
            return self._refused(request, next_path, message, 502)
        if login is None:
            message = "GitHub did not accept that sign-in. Try again."
            return self._refused(request, next_path, message, 401)
        if not await run_in_threadpool(admins.includes, login):
            log.warning("GitHub sign-in refused: %s is not an admin", login)
            message = f"{login} is not a changegate admin (see CHANGEGATE_ADMIN_GITHUB)."
            return self._refused(request, next_path, message, 403)
        log.info("admin signed in with GitHub", extra={"who": f"github:{login}"})
        # a page, not a redirect: browsers that count a whole redirect chain begun on
        # github.com as cross-site would not send the SameSite=Strict cookie on its next hop
        response = self.guard.render(request, "signed_in.html", {"next": next_path, "login": login})
        self._start_session(request, response, f"github:{login}")
        response.delete_cookie(SIGN_IN_COOKIE, path="/admin/login/github")
        return response

    async def logout(self, request: Request) -> Response:
        guard = await self.guard.admit(request)
        if isinstance(guard, Response):
            return guard
        form = read_form((await request.body())[:MAX_FORM_BYTES])
        if not self.auth.csrf_ok(guard, form.get("csrf", "")):
            return self.guard.error(
                request, 403, "The form has expired; reload the page and retry."
            )
        response = RedirectResponse("/admin/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/admin")
        return response
