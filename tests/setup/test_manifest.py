"""The manifests (bot/setup/manifest.py): the GitHub App's from app.yml, where its new-app
form is, and the Slack app's."""

from __future__ import annotations

import json

import pytest
import yaml

from bot.setup import manifest
from bot.setup.manifest import GitHubTarget, ManifestError


def test_the_github_manifest_is_app_yml_with_the_public_url() -> None:
    text = "name: changegate\nurl: ${CHANGEGATE_PUBLIC_URL}\nhook_attributes:\n  url: ${CHANGEGATE_PUBLIC_URL}/webhooks/github\n"
    body = manifest.github_manifest("https://cg.example/", text=text)
    assert body["url"] == "https://cg.example"
    assert body["hook_attributes"]["url"] == "https://cg.example/webhooks/github"
    assert body["redirect_url"] == "https://cg.example/setup/github/callback"
    with pytest.raises(ManifestError):
        manifest.github_manifest("https://cg.example", text="- a list\n")
    bundled = manifest.github_manifest("https://cg.example")
    assert bundled["redirect_url"].startswith("https://cg.example")
    assert "${CHANGEGATE_PUBLIC_URL}" not in json.dumps(bundled)


@pytest.mark.parametrize(
    ("api_url", "web_url"),
    [
        ("https://api.github.com", "https://github.com"),
        ("https://api.github.com/", "https://github.com"),
        ("https://ghe.acme.com/api/v3", "https://ghe.acme.com"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
        # GitHub Enterprise Cloud with data residency: the API is api.SUBDOMAIN.ghe.com
        ("https://api.acme.ghe.com", "https://acme.ghe.com"),
    ],
)
def test_where_the_new_app_form_is(api_url: str, web_url: str) -> None:
    assert manifest.target(api_url).web_url == web_url


def test_the_target_of_the_registration_form() -> None:
    personal = manifest.target("https://api.github.com")
    assert personal == GitHubTarget("https://github.com", "https://api.github.com", "")
    assert personal.new_app_url("s 1") == "https://github.com/settings/apps/new?state=s+1"
    org = manifest.target("https://api.github.com", organization=" acme-inc ")
    assert (
        org.new_app_url("s")
        == "https://github.com/organizations/acme-inc/settings/apps/new?state=s"
    )
    ghe = manifest.target("https://api.github.com", enterprise_url="https://ghe.acme.com/")
    assert (ghe.web_url, ghe.api_url) == ("https://ghe.acme.com", "https://ghe.acme.com/api/v3")


@pytest.mark.parametrize(
    ("enterprise_url", "organization"),
    [
        ("", "acme/../evil"),
        ("", "acme inc"),
        ("javascript:alert(1)", ""),
        ("https://ghe.acme.com/?next=evil", ""),
        ("ghe.acme.com", ""),
    ],
)
def test_the_form_refuses_what_is_not_a_name_or_a_url(
    enterprise_url: str, organization: str
) -> None:
    with pytest.raises(ManifestError):
        manifest.target(
            "https://api.github.com", enterprise_url=enterprise_url, organization=organization
        )


def test_the_slack_manifest_asks_for_the_email_scope_only_when_matching_by_email() -> None:
    plain = manifest.slack_manifest("https://cg.example/")
    scopes = plain["oauth_config"]["scopes"]["bot"]
    assert scopes == list(manifest.SLACK_BOT_SCOPES)
    assert plain["settings"]["interactivity"]["request_url"] == (
        "https://cg.example/slack/interactions"
    )
    by_email = manifest.slack_manifest("https://cg.example", match_email=True)
    assert manifest.SLACK_EMAIL_SCOPE in by_email["oauth_config"]["scopes"]["bot"]
    assert yaml.safe_load(manifest.dump(plain)) == plain
    assert json.loads(manifest.dump(plain, "json")) == plain
