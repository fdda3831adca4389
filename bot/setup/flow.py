"""`/`, the start page, and the GitHub App manifest flow behind it.

Who may register the App: whoever holds the one-time setup token that the server prints
in its start-up log (`/setup?token=...`). Opening that URL puts the token in an HttpOnly,
SameSite=Lax cookie and lands on `/`, which then offers the registration form; every
later step checks the cookie. The form posts here first (personal account or
organization, github.com or a GitHub Enterprise URL); the answer is a page whose only
form posts the manifest to GitHub's new-app form with a fresh `state`. GitHub sends the
browser back to `/setup/github/callback?code&state`; the state is used once, the code is
converted once (`POST /app-manifests/{code}/conversions`, unauthenticated), the App is
kept (`bot.setup.stored`) and laid under the settings, and the token is gone: the setup
routes answer 404 from then on. No restart: the ingress reads the current webhook
secret, the pending forge becomes the App's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.forges.github.manifest import ConversionRefused, convert_manifest_code
from bot.pages.links import github_web_url
from bot.pages.templates import SECURITY_HEADERS, TEMPLATES, Renderer
from bot.settings import Settings
from bot.setup import manifest, stored
from bot.setup.manifest import GitHubTarget, ManifestError

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
COOKIE = "changegate_setup"
COOKIE_SECONDS = 12 * 3600
STATE_SECONDS = 3600  # GitHub's manifest codes live one hour too
MAX_FORM_BYTES = 16 * 1024
CODE = re.compile(r"[A-Za-z0-9_-]{1,200}")
DOCS = {
    "Registering a GitHub App from a manifest (GitHub)": "https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest",
    "Creating a Slack app from a manifest (Slack)": "https://api.slack.com/reference/manifests",
    "Readiness: database and policy": "/readyz",
    "Prometheus metrics": "/metrics",
}


@dataclass(frozen=True)
class _Pending:
    target: GitHubTarget
    expires: float


class SetupFlow:
    """The start page and the setup routes of one server."""

    def __init__(self, settings: Settings, policy: Any = None) -> None:
        self.settings = settings
        self.policy = policy
        # only on a clean slate: a half-configured GitHub (say, a webhook secret from the
        # environment, which would win over the new App's) is finished by hand
        self.token: str | None = None if partly_configured(settings) else secrets.token_urlsafe(24)
        self.registered: stored.StoredApp | None = None
        self._states: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self.renderer = Renderer(HERE / "templates", TEMPLATES)

    # -- start-up --------------------------------------------------------------------
    @property
    def setup_url(self) -> str | None:
        if self.token is None:
            return None
        return f"{self.settings.public_url.rstrip('/')}/setup?token={self.token}"

    def announce(self) -> None:
        """The start-up log line that only the person who started the server sees."""
        if self.setup_url is not None:
            log.warning(
                "GitHub is not configured. To register the GitHub App, open %s "
                "(one-time setup link; it works until the App exists)",
                self.setup_url,
            )

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.start, methods=["GET"], name="start"),
            Route("/setup", self.enter, methods=["GET"]),
            Route("/setup/github", self.begin, methods=["POST"]),
            Route("/setup/github/callback", self.callback, methods=["GET"]),
        ]

    # -- helpers ---------------------------------------------------------------------
    def _open(self) -> bool:
        if self.token is not None and self.settings.github_enabled:
            self.token = None  # configured meanwhile (environment, another process)
        return self.token is not None

    def _holds_token(self, request: Request) -> bool:
        given = request.cookies.get(COOKIE, "")
        token = self.token
        return token is not None and hmac.compare_digest(given.encode(), token.encode())

    def _csrf(self) -> str:
        token = self.token or ""
        return hmac.new(token.encode(), b"setup-form", hashlib.sha256).hexdigest()

    # -- the start page --------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """What is on and off, where the policy came from, and what to do next."""
        s = self.settings
        summary = s.summary()
        app = stored.load(stored.app_file(s)) if s.github_enabled else None
        kept = app if app is not None and str(s.github_app_id) == app.app_id else None
        github = summary["github"]
        if kept is not None:
            github += f", App {kept.slug or kept.app_id} kept in {stored.app_file(s)}"
        policy = self._policy_status()
        systems = [
            {"name": "GitHub", "state": github, "on": s.github_enabled},
            {"name": "GitLab", "state": summary["gitlab"], "on": s.gitlab_enabled},
            {"name": "Slack", "state": summary["slack"], "on": s.slack_enabled},
            {
                "name": "Admin pages",
                "state": summary["admin pages"],
                "on": summary["admin pages"] != "off",
            },
            {"name": "Database", "state": summary["database"], "on": True},
        ]
        return {
            "systems": systems,
            "policy": policy,
            "public_url": s.public_url,
            "next": next_steps(s, summary, kept, policy["path"]),
            "docs": [{"title": t, "url": u} for t, u in DOCS.items()],
            "slack_manifest": manifest.dump(
                manifest.slack_manifest(s.public_url, match_email=bool(s.slack_match_email))
            ),
        }

    def _policy_status(self) -> dict[str, Any]:
        """Which policy file, whether it is the bundled one, and what it holds (or its error)."""
        s = self.settings
        own = "policy" in s.model_fields_set and str(s.policy) != "policies/default.yml"
        policy: dict[str, Any] = {
            "path": str(getattr(self.policy, "path", s.policy)),
            "source": "the CHANGEGATE_POLICY file"
            if own
            else "the default policy: set CHANGEGATE_POLICY to use yours",
        }
        if self.policy is not None:
            policy["error"] = getattr(self.policy, "error", None)
            try:
                loaded = self.policy.policy
                policy["rules"] = len(loaded.rules)
                policy["deploy_gates"] = len(loaded.deploys.items())
            except Exception as exc:  # noqa: BLE001 - shown, never fatal on the start page
                policy["error"] = str(exc)
        return policy

    async def start(self, request: Request) -> Response:
        view = self.status()
        open_ = self._open()
        view["setup"] = {
            "open": open_,
            "allowed": open_ and self._holds_token(request),
            "csrf": self._csrf() if open_ and self._holds_token(request) else "",
            "github_url": github_web_url(self.settings.github_api_url),
        }
        if self.registered is not None:
            view["registered"] = {
                "slug": self.registered.slug,
                "html_url": self.registered.html_url,
            }
        return self.renderer.render(request, "start.html", view)

    # -- the manifest flow -----------------------------------------------------------
    async def enter(self, request: Request) -> Response:
        """`/setup?token=...`: keep the token in a cookie and go to the start page."""
        if not self._open():
            return self.renderer.error(
                request, 404, "Not found: setup is over, the GitHub App exists"
            )
        given = request.query_params.get("token", "")
        token = self.token or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            return self.renderer.error(
                request, 403, "Wrong setup token: use the URL of the start-up log"
            )
        response = RedirectResponse("/", status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(
            COOKIE,
            token,
            max_age=COOKIE_SECONDS,
            httponly=True,
            samesite="lax",  # it must come back with GitHub's top-level redirect
            secure=self.settings.public_url.startswith("https://"),
        )
        return response

    async def begin(self, request: Request) -> Response:
        """The registration form: a state for this attempt, and the page that posts the
        manifest to GitHub."""
        if not self._open():
            return self.renderer.error(
                request, 404, "Not found: setup is over, the GitHub App exists"
            )
        if not self._holds_token(request):
            return self.renderer.error(request, 403, "Open the setup URL of the start-up log first")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return self.renderer.error(request, 413, "Form too large")
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}
        if not hmac.compare_digest(form.get("csrf", "").encode(), self._csrf().encode()):
            return self.renderer.error(request, 403, "Stale form: reload the start page")
        org = form.get("organization", "") if form.get("owner") == "organization" else ""
        if form.get("owner") == "organization" and not org.strip():
            return self.renderer.error(request, 400, "Name the organization that will own the App")
        try:
            target = manifest.target(
                self.settings.github_api_url,
                enterprise_url=form.get("enterprise_url", ""),
                organization=org,
            )
            body_manifest = manifest.github_manifest(self.settings.public_url)
        except ManifestError as exc:
            return self.renderer.error(request, 400, str(exc))
        state = secrets.token_urlsafe(24)
        now = time.time()
        with self._lock:
            for old in [k for k, v in self._states.items() if v.expires < now]:
                del self._states[old]
            self._states[state] = _Pending(target, now + STATE_SECONDS)
        view = {
            "action": target.new_app_url(state),
            "manifest": json.dumps(body_manifest),
            "manifest_pretty": json.dumps(body_manifest, indent=2),
            "owner": org or "your personal account",
            "web_url": target.web_url,
        }
        csp = SECURITY_HEADERS["Content-Security-Policy"].replace(
            "form-action 'self'", f"form-action 'self' {target.web_url}"
        )
        return self.renderer.render(
            request, "setup_github.html", view, headers={"Content-Security-Policy": csp}
        )

    async def callback(self, request: Request) -> Response:
        """GitHub sends the browser back with a code: convert it, keep the App."""
        if not self._open():
            return self.renderer.error(
                request, 404, "Not found: setup is over, the GitHub App exists"
            )
        if not self._holds_token(request):
            return self.renderer.error(
                request, 403, "Open the setup URL of the start-up log first, in this browser"
            )
        q = request.query_params
        with self._lock:
            pending = self._states.pop(q.get("state", ""), None)
        if pending is None or pending.expires < time.time():
            return self.renderer.error(
                request, 400, "Unknown, used or expired state: register again from the start page"
            )
        code = q.get("code", "")
        if not CODE.fullmatch(code):
            return self.renderer.error(request, 400, "GitHub sent no usable code: register again")
        return await run_in_threadpool(self._finish, request, pending.target, code)

    def _finish(self, request: Request, target: GitHubTarget, code: str) -> Response:
        with self._lock:
            if self.token is None:
                return self.renderer.error(
                    request, 404, "Not found: setup is over, the GitHub App exists"
                )
            try:
                data = convert_manifest_code(target.api_url, code)
            except ConversionRefused as exc:
                log.warning("GitHub refused the manifest code: %s %s", exc.status, exc.data)
                if exc.status in (404, 422):
                    return self.renderer.error(
                        request,
                        400,
                        "GitHub did not accept the code (used already, or older than an hour): "
                        "register again from the start page",
                    )
                return self.renderer.error(request, 502, f"GitHub answered {exc.status}: try again")
            except Exception as exc:  # noqa: BLE001 - GitHub unreachable
                log.warning("cannot convert the manifest code: %s", exc)
                return self.renderer.error(request, 502, "Cannot reach GitHub to finish: try again")
            try:
                app = stored.StoredApp.from_conversion(data, target.api_url, target.web_url)
                pem = str(data["pem"])
            except (KeyError, TypeError, ValueError):
                return self.renderer.error(
                    request, 502, "GitHub's answer lacks the App's credentials"
                )
            path = stored.app_file(self.settings)
            app = stored.save(path, app, pem)
            stored.apply(self.settings, app)
            self.registered, self.token = app, None
        log.info("GitHub App %s (%s) registered; kept in %s", app.app_id, app.slug, path)
        view = {
            "app_id": app.app_id,
            "slug": app.slug,
            "owner": app.owner,
            "html_url": app.html_url,
            "install_url": f"{app.html_url}/installations/new" if app.html_url else "",
            "kept_in": str(path),
            "key_path": app.key_path,
        }
        return self.renderer.render(request, "setup_done.html", view)


def next_steps(
    settings: Settings, summary: dict[str, str], kept: stored.StoredApp | None, policy_path: str
) -> list[str]:
    """What a newcomer does next, in order; `kept` is the App registered from this page."""
    s = settings
    steps = []
    if not s.github_enabled and partly_configured(s):
        steps.append(
            "GitHub is partly configured: set all of CHANGEGATE_GITHUB_APP_ID, "
            "CHANGEGATE_GITHUB_PRIVATE_KEY_PATH and CHANGEGATE_GITHUB_WEBHOOK_SECRET, "
            "or none of them to register the App from this page."
        )
    elif not s.github_enabled:
        steps.append(
            "Register the GitHub App (below), or set CHANGEGATE_GITHUB_APP_ID, "
            "CHANGEGATE_GITHUB_PRIVATE_KEY_PATH and CHANGEGATE_GITHUB_WEBHOOK_SECRET."
        )
    elif kept is not None and kept.html_url:
        steps.append(f"Install the App on your repositories: {kept.html_url}/installations/new")
    if not s.slack_enabled:
        steps.append(
            "Slack approvals: create a Slack app from the manifest below, then set "
            "CHANGEGATE_SLACK_BOT_TOKEN and CHANGEGATE_SLACK_SIGNING_SECRET."
        )
    if summary["admin pages"] == "off":
        steps.append(
            "Admin pages: set CHANGEGATE_ADMIN_TOKEN (or sign-in with GitHub: "
            "CHANGEGATE_ADMIN_GITHUB)."
        )
    steps.append(f"Edit the policy ({policy_path}); it reloads without a restart.")
    return steps


def partly_configured(settings: Settings) -> bool:
    """Any of the App's own settings is set (the environment, or a kept App)."""
    return bool(
        settings.github_app_id or settings.github_private_key_path or settings.github_webhook_secret
    )
