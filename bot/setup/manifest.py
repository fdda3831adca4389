"""The manifests a newcomer pastes or posts: the GitHub App's (from `app.yml`) and the
Slack app's.

`app.yml` at the repository root is the one description of the App (the README's manual
way substitutes it with `envsubst`); the wheel carries a copy as `bot/setup/app.yml`.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.pages.links import github_web_url

HERE = Path(__file__).resolve().parent
APP_YML_PLACES = (HERE / "app.yml", HERE.parents[1] / "app.yml")
PLACEHOLDER = "${CHANGEGATE_PUBLIC_URL}"
CALLBACK_PATH = "/setup/github/callback"


class ManifestError(ValueError):
    pass


def app_yml() -> str:
    for place in APP_YML_PLACES:
        if place.is_file():
            return place.read_text(encoding="utf-8")
    raise ManifestError("app.yml not found (looked in " + ", ".join(map(str, APP_YML_PLACES)) + ")")


def github_manifest(public_url: str, *, text: str | None = None) -> dict[str, Any]:
    """`app.yml` with the public URL filled in, and GitHub sending the browser back to
    changegate's callback (`redirect_url`) once the App exists."""
    base = public_url.rstrip("/")
    source = app_yml() if text is None else text
    manifest = yaml.safe_load(source.replace(PLACEHOLDER, base))
    if not isinstance(manifest, dict):
        raise ManifestError("app.yml is not a mapping")
    manifest["redirect_url"] = base + CALLBACK_PATH
    return manifest


@dataclass(frozen=True)
class GitHubTarget:
    """Where the new-app form is (`web_url`) and the API that converts the code."""

    web_url: str
    api_url: str
    organization: str = ""

    def new_app_url(self, state: str) -> str:
        org = urllib.parse.quote(self.organization, safe="")
        path = f"/organizations/{org}/settings/apps/new" if org else "/settings/apps/new"
        return f"{self.web_url}{path}?{urllib.parse.urlencode({'state': state})}"


def target(api_url: str, *, enterprise_url: str = "", organization: str = "") -> GitHubTarget:
    """The form's choices: an organization (or the signed-in personal account) on
    github.com, or on the GitHub Enterprise Server at `enterprise_url`."""
    org = organization.strip()
    if org and not all(c.isalnum() or c in "-_." for c in org):
        raise ManifestError(f"not an organization name: {org!r}")
    ghe = enterprise_url.strip().rstrip("/")
    if ghe:
        parts = urllib.parse.urlsplit(ghe)
        if parts.scheme not in ("https", "http") or not parts.netloc or parts.query:
            raise ManifestError(
                f"not a GitHub Enterprise URL: {ghe!r} (e.g. https://github.acme.com)"
            )
        web = f"{parts.scheme}://{parts.netloc}"
        return GitHubTarget(web, web + "/api/v3", org)
    return GitHubTarget(github_web_url(api_url), api_url.rstrip("/"), org)


# -- Slack ----------------------------------------------------------------------------------

#: The bot token scopes of the Slack calls changegate makes (bot/slack/client.py):
#: chat.postMessage / chat.update (chat:write), views.open (none beyond the bot),
#: users.info (users:read; its profile e-mail: users:read.email, for slack_match_email),
#: usergroups.users.list (usergroups:read).
SLACK_BOT_SCOPES = ("chat:write", "users:read", "usergroups:read")
SLACK_EMAIL_SCOPE = "users:read.email"


def slack_manifest(
    public_url: str, *, match_email: bool = False, name: str = "changegate"
) -> dict[str, Any]:
    """The app manifest for Slack's "Create an app → From a manifest": a bot user, the
    scopes above (with `match_email`, the profile
    e-mail's too), and interactivity (the Approve/Deny buttons) sent to changegate."""
    base = public_url.rstrip("/")
    return {
        "display_information": {
            "name": name,
            "description": "Approve or deny changes and deploys that changegate holds.",
            "background_color": "#24292f",
        },
        "features": {"bot_user": {"display_name": name, "always_online": True}},
        "oauth_config": {
            "scopes": {"bot": [*SLACK_BOT_SCOPES, *([SLACK_EMAIL_SCOPE] if match_email else [])]}
        },
        "settings": {
            "interactivity": {"is_enabled": True, "request_url": base + "/slack/interactions"},
            "org_deploy_enabled": False,
            "socket_mode_enabled": False,
            "token_rotation_enabled": False,
        },
    }


def dump(manifest: dict[str, Any], fmt: str = "yaml") -> str:
    if fmt == "json":
        return json.dumps(manifest, indent=2) + "\n"
    return yaml.safe_dump(manifest, sort_keys=False)
