"""Verdict and admin pages: read-only views over the store, rendered on the server.

The verdict page (`/v/{token}`, the check run's details URL) answers "why is my change
blocked, and who can unblock it"; it is reachable only through its unguessable token.
The admin pages (`/admin/...`) show open approval requests, recent verdicts, the
dead-letter queue, the audit log and the loaded policy, behind the `admin_token`
setting or GitHub sign-in; without either they do not exist (404), they are never open.

The package, one idea a module:
    templates.py  the one renderer (HTML page or its JSON twin), security headers
    auth.py       admin token, GitHub sign-in, session cookie, CSRF; the sign-in pages
    verdict.py    the verdict page
    admin.py      the admin pages
    queries.py    every SQL read of the pages, and the loaded policy
    advice.py     the words: per-rule fixes, action notes, summaries, audit sentences
    links.py      links into a forge's web UI
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Engine
from starlette.routing import BaseRoute

from bot.forges.github import GitHubSignIn
from bot.pages.admin import AdminPages
from bot.pages.advice import audit_sentence, summary
from bot.pages.auth import (
    SESSION_COOKIE,
    AdminAuth,
    AdminGuard,
    GitHubAdmins,
    SignInPages,
    secret_value,
)
from bot.pages.links import ForgeLinks, forge_web_base
from bot.pages.queries import PolicySource
from bot.pages.templates import (
    SECURITY_HEADERS,
    STYLESHEET_ROUTE,
    TEMPLATES,
    Renderer,
    wants_json,
)
from bot.pages.verdict import VerdictPage
from bot.settings import Settings


def routes(
    engine: Engine,
    settings: Settings,
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
    admins = github_admins(settings, (forges or {}).get("github"))
    token = admin_token or secret_value(getattr(settings, "admin_token", None))
    client_secret = getattr(settings, "github_client_secret", None)
    auth = AdminAuth(token, sign_in_secret=secret_value(client_secret) if admins else None)
    renderer = Renderer(TEMPLATES)
    guard = AdminGuard(auth, admins, renderer)
    return [
        *VerdictPage(engine, settings, policy, renderer, auth).routes(),
        STYLESHEET_ROUTE,
        *AdminPages(engine, policy, guard).routes(),
        *SignInPages(settings, guard).routes(),
    ]


def github_admins(settings: Settings, forge: Any = None) -> GitHubAdmins | None:
    """GitHub sign-in when `settings` (a `Settings`, or anything shaped like the parts the
    pages read) enables it; the GitHub forge, when given, reads the admins' teams."""
    enabled = getattr(settings, "github_sign_in_enabled", False)
    sign_in = GitHubSignIn.from_settings(settings) if enabled else None
    if sign_in is None:
        return None
    directory = getattr(forge, "directory", None)
    return GitHubAdmins(sign_in, settings.admin_github_entries, directory)


__all__ = [
    "SECURITY_HEADERS",
    "SESSION_COOKIE",
    "AdminAuth",
    "ForgeLinks",
    "GitHubAdmins",
    "PolicySource",
    "audit_sentence",
    "forge_web_base",
    "github_admins",
    "routes",
    "summary",
    "wants_json",
]
