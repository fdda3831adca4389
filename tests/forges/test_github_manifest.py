"""bot/forges/github/manifest.py: the manifest flow's conversion, against the stand-in."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bot.forges.github.manifest import ConversionRefused, convert_manifest_code

from standins.github import GitHubStandIn


@pytest.fixture
def github(app_key: tuple[str, str]) -> Iterator[GitHubStandIn]:
    """A stand-in of its own: a conversion makes the new App the one whose key it trusts,
    which the session's shared stand-in must not learn."""
    with GitHubStandIn(4242, app_key[1]) as standin:
        yield standin


def test_a_code_converts_once_into_the_apps_credentials(github: GitHubStandIn) -> None:
    manifest = {"name": "changegate", "url": "http://127.0.0.1:8000"}
    github.manifest_codes["c0de"] = (manifest, "octo-org", time.time() + 3600)

    data = convert_manifest_code(github.url, "c0de")

    assert data["slug"] == "changegate"
    assert "BEGIN RSA PRIVATE KEY" in data["pem"]
    assert data["webhook_secret"] and data["client_secret"]
    with pytest.raises(ConversionRefused) as refused:  # a code works once
        convert_manifest_code(github.url, "c0de")
    assert refused.value.status == 404


def test_an_unreachable_github_is_not_a_refusal() -> None:
    with pytest.raises(Exception) as caught:
        convert_manifest_code("http://127.0.0.1:9", "c0de")
    assert not isinstance(caught.value, ConversionRefused)
